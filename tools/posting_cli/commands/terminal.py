"""The terminal every verb writes to, and the failure it reports without a traceback."""

from __future__ import annotations

import sys

from rich.console import Console

# The terminal, captured before the local stack sends the Lambda functions' stdout to a log file.
# Handlers look them up here when they print (`terminal.console`), so a test can swap them.
console = Console(file=sys.stdout, highlight=False)
errors = Console(file=sys.stderr, highlight=False)


class CliError(Exception):
    """A failure with a message meant for the user (no traceback)."""
