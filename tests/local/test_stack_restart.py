"""A second local stack in the same process starts its functions in fresh execution environments."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from posting_cli import operations
from posting_cli.demo import Book, Traffic
from posting_cli.local.run import Line, Pace, drain
from posting_cli.local.stack import LocalStack
from posting_cli.local.template import Template
from posting_cli.results import ResultCollector

pytestmark = pytest.mark.local_stack


def _post_fundings(tmp_path: Path, dynamodb_local: object, run: int) -> dict[str, int]:
    rng = random.Random(7)
    book = Book.seed(rng)
    fundings = Traffic(book, rng).funding()[:10]
    stack = LocalStack(
        Template.load(overrides={"VisibilityTimeoutSeconds": 20}),
        state_dir=tmp_path / f"run-{run}",
        dynamodb=dynamodb_local,  # type: ignore[arg-type]
        fresh_books=True,
    )
    with stack:
        assert stack.target is not None
        operations.open_accounts(stack.target, book.accounts)
        with ResultCollector(stack.target) as collector:
            lines = [Line(number, body) for number, body in enumerate(fundings, 1)]
            pace = Pace(stall_seconds=60, deadline=time.monotonic() + 120, in_flight=10, poll_seconds=0.1)
            outcomes = drain(stack.target, collector, lines, pace)
        log = (tmp_path / f"run-{run}" / "logs" / "lambda.log").read_text()
    statuses: dict[str, int] = {}
    for outcome in outcomes:
        statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
    assert "batch decided" in log  # the handlers log into this stack's own log
    return statuses


def test_a_second_stack_in_one_process_posts_like_the_first(tmp_path, dynamodb_local, capsys):
    # Handlers cache their clients per execution environment; a new stack is a new deployment, with
    # new endpoints: nothing cached by the first may reach the second (or every posting dead-letters).
    assert _post_fundings(tmp_path, dynamodb_local, 1) == {"POSTED": 10}
    assert _post_fundings(tmp_path, dynamodb_local, 2) == {"POSTED": 10}
    assert "I/O operation on closed file" not in capsys.readouterr().err


def test_a_stopped_stack_leaves_the_process_environment_as_it_found_it(tmp_path, dynamodb_local, monkeypatch):
    # The handlers read their configuration and endpoints from os.environ while the stack runs; once
    # it stops, code that builds its own clients afterwards (a test's moto mock) must not be sent to
    # the stopped stack's endpoints.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    before = dict(os.environ)
    stack = LocalStack(Template.load(), state_dir=tmp_path / "env", dynamodb=dynamodb_local, fresh_books=True)
    with stack:
        assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert os.environ["AWS_REGION"] != "eu-west-3"
    assert dict(os.environ) == before
