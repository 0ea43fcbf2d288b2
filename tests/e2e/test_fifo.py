"""Ordered lanes, end to end on the local stack: a FIFO posting queue (PostingQueueType=fifo) decides
the requests of one message group in the order they were sent, a request not decided holds back the
rest of its group (and only its group), and dead letters keep their group, through a redrive too.
(tests/e2e/test_pipeline.py shows the standard queue promises no such order: the same file, with the
same fault, comes out otherwise.) This module runs its own stacks only: starting one resets moto's
process-global state, so it runs before the session's shared stack is first used (test_incomplete_run
sorts after it)."""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from posting.adapters.ledger_table import LedgerTable
from posting.domain.outcomes import TransientPostingError
from posting.steps.sequencing import HELD_BACK
from posting_cli import cli, operations
from posting_cli.local.stack import LocalStack
from posting_cli.local.template import Template
from tests.builders import account, leg, request
from tests.e2e.test_pipeline import card_payment, fail_first_delivery_of, open_accounts, post_all

pytestmark = pytest.mark.local_stack
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fifo_stack(tmp_path_factory, dynamodb_local):
    template = Template.load(
        ROOT / "template.yaml",
        stack_name="posting-fifo",
        overrides={
            "PostingQueueType": "fifo",
            "VisibilityTimeoutSeconds": 8,
            "MaxReceiveCount": 3,
            "LogLevel": "WARNING",
        },
    )
    with LocalStack(
        template, state_dir=tmp_path_factory.mktemp("fifo"), retry_sleep=lambda _: None, dynamodb=dynamodb_local
    ) as stack:
        yield stack


@contextmanager
def pipes_stopped(stack: LocalStack):
    """The pipe polls nothing meanwhile: what is sent in here is in the queue, whole, at its first
    receive (else a receive between two sends of one batch takes a group's first line alone, and the
    receive counts of one group differ)."""
    for pipe in stack.pipes:
        pipe.stop()
    try:
        yield
    finally:
        for pipe in stack.pipes:
            pipe.start()


def submitted_whole(stack: LocalStack, monkeypatch, groups: list[str] | None = None) -> None:
    """operations.submit, sending every line before the pipe polls again."""

    def submit(target, texts, group_ids=None, submit=operations.submit):
        with pipes_stopped(stack):
            return submit(target, texts, groups or group_ids)

    monkeypatch.setattr(operations, "submit", submit)


@pytest.fixture
def ids() -> str:
    return uuid.uuid4().hex[:8]


def decided_at(target, posting_id: str) -> str:
    decision = operations.ledger(target).get_decision(posting_id)
    assert decision is not None, posting_id
    return decision.decided_at


def test_local_run_fifo_decides_a_hold_its_capture_and_a_payout_in_the_files_order(
    dynamodb_local, tmp_path, monkeypatch, ids
):
    accounts, lines = card_payment(ids)
    (tmp_path / "accounts.json").write_text(json.dumps(accounts))
    (tmp_path / "requests.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("DYNAMODB_ENDPOINT", dynamodb_local.endpoint_url)
    monkeypatch.chdir(tmp_path)

    code = cli.main(
        [
            *("local", "run", "--fifo", "--stack-name", f"fifo-run-{ids}", "--accounts", "accounts.json"),
            *("--requests", "requests.jsonl", "--results", "results.jsonl", "--balances", "balances.json"),
        ]
    )

    assert code == 0
    results = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert [(r["posting_id"], r["status"], r["reason"]) for r in results] == [
        (f"fund-{ids}", "POSTED", None),
        (f"hold-{ids}", "POSTED", None),
        (f"capture-{ids}", "POSTED", None),
        (f"payout-{ids}", "POSTED", None),
    ]
    balances = json.loads((tmp_path / "balances.json").read_text())
    assert (balances[f"alice-{ids}"]["posted"], balances[f"merchant-{ids}"]["posted"]) == (4000, 0)


def test_on_a_fifo_queue_a_hold_not_decided_holds_back_its_group_while_another_group_goes_on(
    fifo_stack, monkeypatch, ids
):
    target = fifo_stack.target
    accounts, lines = card_payment(ids)
    open_accounts(target, *accounts, account(f"carol-{ids}"))
    elsewhere = json.dumps(request(f"other-{ids}", leg(f"funding-{ids}", "debit", 7), leg(f"carol-{ids}", "credit", 7)))
    attempts = fail_first_delivery_of(f"hold-{ids}", monkeypatch)
    # The file's card payment is one group (its lines share accounts); the other transfer is its own.
    groups = [f"alice-{ids}"] * 4 + [f"carol-{ids}"]

    submitted_whole(fifo_stack, monkeypatch, groups)
    results = post_all(target, [*lines, elsewhere])

    assert [(r.status, r.reason) for r in results] == [("POSTED", None)] * 5
    assert len(attempts) == 13  # twelve attempts in its first delivery, one in its second
    hold, capture, payout = (decided_at(target, f"{kind}-{ids}") for kind in ("hold", "capture", "payout"))
    assert hold < capture < payout
    # The other group was decided while the hold waited to come back.
    assert decided_at(target, f"other-{ids}") < hold


def test_a_group_on_its_last_delivery_is_dead_lettered_in_order_and_redriven_in_order(fifo_stack, monkeypatch, ids):
    target = fifo_stack.target
    accounts, lines = card_payment(ids)
    open_accounts(target, *accounts)
    [funded] = post_all(target, lines[:1])
    assert funded.status == "POSTED"
    original = LedgerTable.record_posting

    def record_posting(self, plan, request_hash, message_id):
        if plan.request.posting_id == f"hold-{ids}":
            raise TransientPostingError("transaction cancelled: ThrottlingException (injected)")
        return original(self, plan, request_hash, message_id)

    monkeypatch.setattr(LedgerTable, "record_posting", record_posting)
    submitted_whole(fifo_stack, monkeypatch)

    results = post_all(target, lines[1:])

    assert [(r.status, r.reason) for r in results] == [
        ("DEAD_LETTERED", "TransientPostingError"),
        ("DEAD_LETTERED", HELD_BACK),
        ("DEAD_LETTERED", HELD_BACK),
    ]
    letters = [letter for letter in operations.dead_letters(target) if ids in letter.body]
    assert [json.loads(letter.body)["posting_id"] for letter in letters] == [
        f"hold-{ids}",
        f"capture-{ids}",
        f"payout-{ids}",
    ]
    assert {letter.group_id for letter in letters} == {f"alice-{ids}"}  # the group `linked` gave them
    assert operations.ledger(target).get_decision(f"capture-{ids}") is None  # held back, never decided

    monkeypatch.setattr(LedgerTable, "record_posting", original)
    report = operations.redrive(target, message_ids=[letter.message_id for letter in letters])

    assert [json.loads(letter.body)["posting_id"] for letter, _ in report.plan.moves] == [
        f"hold-{ids}",
        f"capture-{ids}",
        f"payout-{ids}",
    ]
    deadline = time.monotonic() + 30
    while operations.ledger(target).get_decision(f"payout-{ids}") is None:
        assert time.monotonic() < deadline, "the redriven group was not decided"
        time.sleep(0.2)
    hold, capture, payout = (
        operations.ledger(target).get_decision(f"{k}-{ids}") for k in ("hold", "capture", "payout")
    )
    assert [(d.status, d.reason) for d in (hold, capture, payout)] == [("POSTED", None)] * 3
    assert hold.decided_at < capture.decided_at < payout.decided_at
