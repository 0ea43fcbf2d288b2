"""`posting local run` as a user runs it: a subprocess that starts its own stack, on files full of garbage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.builders import account, leg, request

pytestmark = pytest.mark.local_stack
ROOT = Path(__file__).resolve().parents[2]


def test_local_run_answers_every_line_of_every_file(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(
        json.dumps(
            [
                account("funding", normal_balance="debit", overdraft_limit=None),
                account("alice"),
                account("bob"),
            ]
        )
    )
    fund = json.dumps(request("fund-1", leg("funding", "debit", 10_000), leg("alice", "credit", 10_000)))
    first = tmp_path / "first.jsonl"
    first.write_text(fund + "\n")
    pay = json.dumps(request("pay-1", leg("alice", "debit", 2_500), leg("bob", "credit", 2_500)))
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_bytes(
        b"\n".join(
            [
                pay.encode(),  # 2: posted
                pay.encode(),  # 3: duplicate
                b"",  # 4: empty line: SQS cannot carry it
                b"\xff\xfe not utf-8",  # 5: not text
                b"{" * 9000,  # 6: larger than the queue's 8 KB limit
                b"null",  # 7
                b'{"posting_id": "x"}',  # 8: invalid, but its id is recorded
                b"\x01\x02 control characters",  # 9: SQS refuses these characters
                json.dumps(request("over-1", leg("bob", "debit", 99_999), leg("alice", "credit", 99_999))).encode(),
                ("é" * 4200).encode(),  # 11: 4,200 characters but 8,400 bytes: over the limit as SQS counts
                json.dumps(request("nonchar-1", description="\ufffe"), ensure_ascii=False).encode(),  # 12: U+FFFE
            ]
        )  # no newline at the end: the last line still counts
    )
    results, balances = tmp_path / "results.jsonl", tmp_path / "balances.json"
    env = {**os.environ, "POSTING_CACHE_DIR": os.environ.get("POSTING_CACHE_DIR", "")}
    # Its own DynamoDB Local: these fixed ids must meet empty books (an attached one keeps them).
    env = {k: v for k, v in env.items() if v and k != "DYNAMODB_ENDPOINT"}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "posting_cli.cli",
            "local",
            "run",
            "--accounts",
            str(accounts),
            "--requests",
            str(first),
            "--requests",
            str(garbage),
            "--results",
            str(results),
            "--balances",
            str(balances),
            "--parameter",
            "VisibilityTimeoutSeconds=5",
            "--timeout",
            "240",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["line"] for line in lines] == list(range(1, 13))
    status = {line["line"]: (line["status"], line["reason"]) for line in lines}
    # Lines 2 and 3 are the same request; within a file the queue does not keep order, so either
    # may be the one that posts.
    assert sorted([status.pop(2), status.pop(3)]) == [("DUPLICATE", None), ("POSTED", None)]
    assert status == {
        1: ("POSTED", None),
        4: ("REJECTED", "INVALID_REQUEST"),
        5: ("REJECTED", "INVALID_REQUEST"),
        6: ("REJECTED", "INVALID_REQUEST"),
        7: ("REJECTED", "INVALID_REQUEST"),
        8: ("REJECTED", "INVALID_REQUEST"),
        9: ("REJECTED", "INVALID_REQUEST"),
        10: ("REJECTED", "INSUFFICIENT_FUNDS"),
        11: ("REJECTED", "INVALID_REQUEST"),
        12: ("REJECTED", "INVALID_REQUEST"),
    }
    # The queue itself refused these, and its reason is the detail (as SQS words it).
    assert lines[8]["detail"].startswith("the queue refused it: InvalidMessageContents")
    assert lines[10]["detail"].startswith("the queue refused it: InvalidParameterValue")
    assert "8192 bytes" in lines[10]["detail"]
    assert "#xFFFE" in lines[11]["detail"]
    assert lines[8]["message_id"] is None and lines[10]["message_id"] is None and lines[11]["message_id"] is None
    assert [line["posting_id"] for line in lines[:3]] == ["fund-1", "pay-1", "pay-1"]
    assert lines[3]["posting_id"] is None and lines[7]["posting_id"] == "x"

    def figures(posted: int) -> dict[str, Any]:
        return {
            "currency": "EUR",
            "balance": posted,
            "posted": posted,
            "pending_debits": 0,
            "pending_credits": 0,
            "available": posted,
        }

    assert json.loads(balances.read_text()) == {
        "alice": figures(7_500),
        "bob": figures(2_500),
        "funding": figures(10_000),
    }
