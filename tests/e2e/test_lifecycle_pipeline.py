"""The lifecycle end to end: every kind through the whole pipeline, the expiry sweeper on its local
schedule, and `posting local run` on a file mixing every kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from posting.domain.requests import expiry_posting_id
from posting_cli import operations
from tests.builders import account, leg, request
from tests.e2e.test_pipeline import open_accounts, post_all

pytestmark = pytest.mark.local_stack
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ids() -> str:
    return uuid.uuid4().hex[:8]


def instant(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def hold(posting_id: str, source: str, target: str, amount: int, **fields: Any) -> dict[str, Any]:
    return {
        **request(posting_id, leg(source, "debit", amount), leg(target, "credit", amount)),
        "kind": "hold",
        **fields,
    }


def settle(kind: str, posting_id: str, hold_id: str, *legs: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "posting_id": posting_id, "hold_id": hold_id}
    return body | ({"legs": list(legs)} if legs else {})


def test_an_expiring_hold_is_released_by_the_local_sweeper_with_its_event(local_stack, ids):
    target = local_stack.target
    alice, shop = f"alice-{ids}", f"shop-{ids}"
    open_accounts(target, account(f"fund-{ids}", overdraft_limit=None), account(alice), account(shop))
    fund = request(f"fund-{ids}-1", leg(f"fund-{ids}", "debit", 1000), leg(alice, "credit", 1000))
    # Long enough to be decided before it expires on a busy machine, short enough for the sweeper to find.
    auth = hold(f"auth-{ids}", alice, shop, 400, expires_at=instant(8))
    results = post_all(target, [json.dumps(fund)])
    results += post_all(target, [json.dumps(auth)])
    assert [r.status for r in results] == ["POSTED", "POSTED"]
    ledger = operations.ledger(target)
    assert ledger.books.get_account(alice).available == 600

    deadline = time.monotonic() + 40
    while ledger.get_decision(f"auth-{ids}").hold_state != "expired":
        assert time.monotonic() < deadline, "the sweeper did not expire the hold"
        time.sleep(0.5)

    expiry = ledger.get_decision(expiry_posting_id(f"auth-{ids}"))
    assert (expiry.status, expiry.kind) == ("POSTED", "expiry")
    state = ledger.books.get_account(alice)
    assert (state.balance, state.pending_debits, state.available) == (1000, 0, 1000)

    # The event follows the decision (the emit step runs after the post step): wait for it, reading
    # every page of the results log group.
    def announced() -> bool:
        pages = target.client("logs").get_paginator("filter_log_events")
        return any(
            json.loads(e["message"])["detail-type"] == "Posting Hold Expired"
            and json.loads(e["message"])["detail"]["posting_id"] == expiry_posting_id(f"auth-{ids}")
            for page in pages.paginate(logGroupName=target.results_log_group)
            for e in page["events"]
        )

    while not announced():
        assert time.monotonic() < deadline, "the hold's expiry was decided but never announced"
        time.sleep(0.5)


def test_local_run_on_a_file_of_every_kind(tmp_path):
    accounts = [
        account("funding", normal_balance="debit", overdraft_limit=None),
        account("alice"),
        account("merchant"),
        {**account("settlement", normal_balance="debit", overdraft_limit=None), "balance_shards": 8},
    ]
    (tmp_path / "accounts.json").write_text(json.dumps(accounts))
    files = [
        [  # 1: money in
            request("fund-1", leg("funding", "debit", 10_000), leg("alice", "credit", 10_000)),
        ],
        [  # 2: holds and a posting through the hot account; a malformed request that reuses an id
            hold("h-capture", "alice", "merchant", 3000),
            hold("h-void", "alice", "merchant", 1000),
            hold("h-over", "alice", "merchant", 800),
            hold("h-late", "alice", "merchant", 500, expires_at=instant(-60)),
            hold("h-big", "alice", "merchant", 99_999),
            request("pay-1", leg("settlement", "debit", 2000), leg("alice", "credit", 2000)),
            request("reuse-1", leg("alice", "debit", 5), leg("merchant", "credit", 4)),
        ],
        [  # 3: settle them
            settle("capture", "c-1", "h-capture", leg("alice", "debit", 2500), leg("merchant", "credit", 2500)),
            settle("void", "v-1", "h-void"),
            settle("capture", "c-over", "h-over", leg("alice", "debit", 900), leg("merchant", "credit", 900)),
            settle("capture", "c-late", "h-late"),
            settle("capture", "c-big", "h-big"),
            {
                "kind": "reversal",
                "posting_id": "r-1",
                "reverses": "pay-1",
                "legs": [leg("alice", "debit", 500), leg("settlement", "credit", 500)],
            },
            request("reuse-1", leg("alice", "debit", 5), leg("merchant", "credit", 5)),
        ],
        [  # 4: what can no longer happen
            settle("capture", "c-2", "h-capture"),
            settle("void", "v-2", "h-capture"),
            {
                "kind": "reversal",
                "posting_id": "r-2",
                "reverses": "pay-1",
                "legs": [leg("alice", "debit", 1600), leg("settlement", "credit", 1600)],
            },
            {"kind": "reversal", "posting_id": "r-3", "reverses": "c-1"},
            {"kind": "reversal", "posting_id": "r-4", "reverses": "h-void"},
        ],
    ]
    arguments = []
    for number, bodies in enumerate(files, start=1):
        path = tmp_path / f"file-{number}.jsonl"
        path.write_text("".join(json.dumps(body) + "\n" for body in bodies))
        arguments += ["--requests", str(path)]
    results, balances = tmp_path / "results.jsonl", tmp_path / "balances.json"
    env = {k: v for k, v in os.environ.items() if v}
    completed = subprocess.run(
        [sys.executable, "-m", "posting_cli.cli", "local", "run", "--accounts", str(tmp_path / "accounts.json"),
         *arguments, "--results", str(results), "--balances", str(balances),
         "--parameter", "VisibilityTimeoutSeconds=5", "--timeout", "240"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr

    outcome = {}
    for line in results.read_text().splitlines():
        answer = json.loads(line)
        outcome.setdefault(answer["posting_id"], []).append((answer["status"], answer["reason"]))
    assert outcome == {
        "fund-1": [("POSTED", None)],
        "h-capture": [("POSTED", None)],
        "h-void": [("POSTED", None)],
        "h-over": [("POSTED", None)],
        "h-late": [("REJECTED", "HOLD_EXPIRED")],
        "h-big": [("REJECTED", "INSUFFICIENT_FUNDS")],
        "pay-1": [("POSTED", None)],
        "reuse-1": [("REJECTED", "UNBALANCED"), ("POSTED", None)],  # a content refusal frees its id
        "c-1": [("POSTED", None)],
        "v-1": [("POSTED", None)],
        "c-over": [("REJECTED", "EXCEEDS_HOLD")],
        "c-late": [("REJECTED", "HOLD_NOT_FOUND")],
        "c-big": [("REJECTED", "HOLD_NOT_FOUND")],
        "r-1": [("POSTED", None)],
        "c-2": [("REJECTED", "HOLD_ALREADY_CAPTURED")],
        "v-2": [("REJECTED", "HOLD_ALREADY_CAPTURED")],
        "r-2": [("REJECTED", "EXCEEDS_ORIGINAL")],
        "r-3": [("POSTED", None)],
        "r-4": [("REJECTED", "NOT_REVERSIBLE")],
    }
    # Recomputed by hand: alice 10,000 + 2,000 (pay-1) - 2,500 (c-1) - 500 (r-1) - 5 (reuse-1)
    # + 2,500 (r-3); pending: h-over's 800 is still open.
    expected = {
        "alice": (11_495, 800, 0, 10_695),
        "merchant": (5, 0, 800, 5),
        "funding": (10_000, 0, 0, 10_000),
        "settlement": (1_500, 0, 0, 1_500),
    }
    figures = json.loads(balances.read_text())
    assert {
        a: (f["balance"], f["pending_debits"], f["pending_credits"], f["available"]) for a, f in figures.items()
    } == expected
    assert all(f["posted"] == f["balance"] for f in figures.values())


def test_chains_through_the_pipeline_are_all_or_nothing(local_stack, ids):
    target = local_stack.target
    alice, shop, bank, funding = f"alice-{ids}", f"shop-{ids}", f"bank-{ids}", f"funding-{ids}"
    open_accounts(
        target,
        account(alice),
        account(shop),
        account(bank, overdraft_limit=None),
        account(funding, normal_balance="debit", overdraft_limit=None),
    )
    fund = request(f"fund-{ids}", leg(funding, "debit", 1000), leg(alice, "credit", 1000))
    assert [r.status for r in post_all(target, [json.dumps(fund)])] == ["POSTED"]

    def chain(posting_id: str, payout: int) -> dict[str, Any]:
        return {
            "kind": "chain",
            "posting_id": posting_id,
            "requests": [
                hold(f"{posting_id}-auth", alice, shop, 800),
                {"kind": "capture", "posting_id": f"{posting_id}-cap", "hold_id": f"{posting_id}-auth"},
                request(f"{posting_id}-payout", leg(shop, "debit", payout), leg(bank, "credit", payout)),
            ],
        }

    # The last member asks for more than the capture left the shop: nothing of the chain happens.
    refused = post_all(target, [json.dumps(chain(f"c1-{ids}", 900))])[0]
    assert (refused.status, refused.reason) == ("REJECTED", "INSUFFICIENT_FUNDS")
    assert refused.detail.startswith(f"requests[2] (c1-{ids}-payout):")
    books = operations.books(target)
    assert {a: s.balance for a, s in books.get_accounts([alice, shop, bank]).items()} == {alice: 1000, shop: 0, bank: 0}
    assert books.get_account(alice).pending_debits == 0
    assert operations.ledger(target).get_decisions([f"c1-{ids}-auth", f"c1-{ids}-cap", f"c1-{ids}-payout"]) == {}

    posted, again = post_all(target, [json.dumps(chain(f"c2-{ids}", 800)), json.dumps(chain(f"c2-{ids}", 800))])
    assert sorted([posted.status, again.status]) == ["DUPLICATE", "POSTED"]
    assert {a: s.balance for a, s in books.get_accounts([alice, shop, bank]).items()} == {
        alice: 200,
        shop: 0,
        bank: 800,
    }
    members = operations.ledger(target).get_decisions([f"c2-{ids}-auth", f"c2-{ids}-cap", f"c2-{ids}-payout"])
    assert {m.chain_id for m in members.values()} == {f"c2-{ids}"} and len(members) == 3
    assert members[f"c2-{ids}-auth"].hold_state == "captured"
    assert operations.reconcile(target).ok
