"""Fixtures shared by the end-to-end suites."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from rich.console import Console

from posting_cli import cli
from posting_cli.commands import terminal
from posting_cli.target import LOCAL_STATE_FILE


@pytest.fixture
def posting_in_process(local_stack, tmp_path, monkeypatch) -> Callable[..., tuple[int, str]]:
    """Run `posting <args>` in this process against the session's stack; returns (exit code, output)."""
    monkeypatch.chdir(tmp_path)
    local_stack.target.to_file(tmp_path / LOCAL_STATE_FILE)

    def run(*args: str) -> tuple[int, str]:
        output = io.StringIO()
        # Wide enough that rich never wraps a line the tests look for.
        monkeypatch.setattr(terminal, "console", Console(file=output, width=300))
        monkeypatch.setattr(terminal, "errors", Console(file=output, width=300))
        return cli.main(list(args)), output.getvalue()

    return run
