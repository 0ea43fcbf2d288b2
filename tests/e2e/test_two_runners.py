"""Two `posting local run` processes, one DynamoDB Local, overlapping request files, at the same time.

Books survive and are shared: each posting is applied once, and each id both files carry gets one
POSTED (in whichever run won) and one DUPLICATE (in the other).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest

from posting.adapters.ledger_table import LedgerTable
from posting_cli.local.stack import CREDENTIALS
from tests.builders import account, leg, request

pytestmark = pytest.mark.local_stack


def _run(workdir: Path, accounts: Path, requests: Path, endpoint: str) -> subprocess.Popen[str]:
    env = {**os.environ, "DYNAMODB_ENDPOINT": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    command = [sys.executable, "-m", "posting_cli.cli", "local", "run", "--accounts", str(accounts)]
    command += ["--requests", str(requests), "--results", "results.jsonl", "--balances", "balances.json"]
    command += ["--parameter", "VisibilityTimeoutSeconds=5", "--timeout", "240"]
    workdir.mkdir()
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_runs_share_one_ledger_and_apply_each_posting_once(tmp_path, dynamodb_local, template):
    run_id = uuid.uuid4().hex[:8]
    funding, customers = f"funding-{run_id}", [f"cust-{run_id}-{i}" for i in range(6)]
    accounts = tmp_path / "accounts.json"
    accounts.write_text(
        json.dumps([account(funding, normal_balance="debit", overdraft_limit=None), *map(account, customers)])
    )

    def body(n: int) -> str:
        payee = customers[n % len(customers)]
        return json.dumps(request(f"p-{run_id}-{n}", leg(funding, "debit", 100 + n), leg(payee, "credit", 100 + n)))

    shared, only_a, only_b = range(0, 30), range(30, 45), range(45, 60)
    file_a, file_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    file_a.write_text("".join(body(n) + "\n" for n in [*shared, *only_a]))
    file_b.write_text("".join(body(n) + "\n" for n in [*shared, *only_b]))

    runs = [
        _run(tmp_path / name, accounts, file, dynamodb_local.endpoint_url)
        for name, file in (("a", file_a), ("b", file_b))
    ]
    for run in runs:
        output, _ = run.communicate(timeout=300)
        assert run.returncode == 0, output

    results = {
        name: [json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()]
        for name in ("a", "b")
    }
    by_id: dict[str, Counter[str]] = {}
    for lines in results.values():
        for line in lines:
            by_id.setdefault(line["posting_id"], Counter())[line["status"]] += 1
    for n in shared:
        assert by_id[f"p-{run_id}-{n}"] == Counter({"POSTED": 1, "DUPLICATE": 1}), n
    for n in [*only_a, *only_b]:
        assert by_id[f"p-{run_id}-{n}"] == Counter({"POSTED": 1}), n

    # Balances: each of the 60 postings applied exactly once, whichever run applied it.
    expected = Counter()
    for n in range(60):
        expected[customers[n % len(customers)]] += 100 + n
    client = boto3.client("dynamodb", endpoint_url=dynamodb_local.endpoint_url, region_name="us-east-1", **CREDENTIALS)
    states = LedgerTable(client, f"{template.stack_name}-LedgerTable").books.get_accounts([funding, *customers])
    assert {c: states[c].balance for c in customers} == dict(expected)
    assert states[funding].balance == sum(expected.values())
    assert {c: states[c].version for c in customers} == {c: 10 for c in customers}
    # The run that finished last reports every posting of both: neither wiped the other's books.
    reported = [json.loads((tmp_path / name / "balances.json").read_text()) for name in ("a", "b")]
    assert max(balances[funding]["balance"] for balances in reported) == sum(expected.values())
