"""The `posting` verbs, one module per family. Each module's `register(verbs)` adds its verbs, their
options and their handlers; `posting_cli.cli` calls them in the order `posting --help` lists them.
Options more than one family takes live in `options`, the terminal every verb writes to in `terminal`.
"""
