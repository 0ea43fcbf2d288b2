"""Lambda entry points. `Handler: posting.handlers.<step>.handler` in template.yaml."""
