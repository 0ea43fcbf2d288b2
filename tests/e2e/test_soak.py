"""A short seeded soak under every fault (the process kill included), and proof that its checks bite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from posting.adapters.ledger_keys import account_key
from posting.adapters.ledger_table import LedgerTable
from posting_cli.soak import STACK_NAME, SoakSettings, prove

pytestmark = pytest.mark.local_stack

SEED = 11


def test_a_short_soak_under_every_fault_proves_every_invariant(tmp_path, dynamodb_local, dynamodb_client):
    workdir = tmp_path / "soak"
    env = {**os.environ, "DYNAMODB_ENDPOINT": dynamodb_local.endpoint_url, "AWS_EC2_METADATA_DISABLED": "true"}
    command = [sys.executable, "-m", "posting_cli.cli", "local", "soak", "--postings", "160", "--seed", str(SEED)]
    command += ["--faults", "all", "--fault-probability", "0.03", "--workdir", str(workdir)]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "OK: every line accounted for" in output
    assert "faults fired by kind:" in output and "process_kill 1" in output
    assert "drain race: 10 of its debits posted" in output
    # The faults injected on the handlers' own clients fire dozens of times in this run: if the handlers
    # ever stopped getting their clients where the injector attaches, the soak would prove nothing.
    fired = Counter(json.loads(line)["kind"] for line in (workdir / "faults.jsonl").read_text().splitlines() if line)
    assert {"dynamodb_throttle", "transaction_conflict_storm", "put_events_partial_failure"} <= {
        kind for kind, count in fired.items() if count > 0
    }, fired

    # The same proof, run again here, passes; then each kind of damage is caught.
    table = LedgerTable(dynamodb_client, f"{STACK_NAME}-LedgerTable")
    settings = SoakSettings(postings=160, seed=SEED, faults="all", probability=0.03, workdir=workdir)
    results = max(workdir.glob("results-*.jsonl"))
    assert prove(settings, table, dynamodb_local.endpoint_url, results).violations == []

    dynamodb_client.update_item(
        TableName=table.table_name, Key=account_key("merchant-001"), UpdateExpression="ADD balance :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )  # fmt: skip
    violations = prove(settings, table, dynamodb_local.endpoint_url, results).violations
    assert any("merchant-001: balance" in v and "independent recomputation" in v for v in violations)

    events = workdir / "events.jsonl"
    lines = events.read_text().splitlines()
    silenced = json.loads(next(line for line in lines if json.loads(line)["detail"].get("status") == "POSTED"))
    posting_id = silenced["detail"]["posting_id"]
    events.write_text(
        "".join(line + "\n" for line in lines if json.loads(line)["detail"].get("posting_id") != posting_id)
    )
    violations = prove(settings, table, dynamodb_local.endpoint_url, results).violations
    assert any(v.startswith(f"{posting_id} is POSTED in the ledger but no event announced it") for v in violations)
