"""`posting smoke` against a running `posting local up`, both as real processes, as an operator runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from posting.domain.model import AccountStatus
from posting_cli import operations
from posting_cli.target import LOCAL_STATE_FILE

pytestmark = pytest.mark.local_stack

ROOT = Path(__file__).resolve().parents[2]


def posting(*args: str, cwd: Path, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "posting_cli.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


@pytest.fixture
def local_up(tmp_path, dynamodb_local):
    """`posting local up` in its own process (on the session's DynamoDB Local), until the test ends."""
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT": dynamodb_local.endpoint_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tools")]),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    up = posting("local", "up", cwd=tmp_path, env=env)
    state = tmp_path / LOCAL_STATE_FILE
    deadline = time.monotonic() + 120
    while not state.exists():
        if up.poll() is not None or time.monotonic() > deadline:
            up.kill()
            pytest.fail(f"posting local up did not come up:\n{up.communicate()[0]}")
        time.sleep(0.2)
    yield env
    up.send_signal(signal.SIGTERM)
    try:
        up.wait(timeout=60)
    except subprocess.TimeoutExpired:
        up.kill()
        up.wait()


def test_posting_smoke_passes_against_posting_local_up(local_up, tmp_path):
    smoke = posting("smoke", "--timeout", "90", cwd=tmp_path, env=local_up)
    output, _ = smoke.communicate(timeout=180)

    assert smoke.returncode == 0, output
    assert "smoke test OK" in output
    for probe in ("posting", "duplicate", "malformed"):
        assert f"{probe}: enqueue -> result event in the log group" in output


@pytest.fixture
def smoke_in_process(posting_in_process):
    return lambda *args: posting_in_process("smoke", *args)


def test_a_smoke_run_that_sees_no_events_fails_clearly_and_still_closes_its_accounts(local_stack, smoke_in_process):
    code, output = smoke_in_process("--timeout", "0")

    assert code == 1
    assert "smoke test FAILED" in output
    assert "posting: no result event in" in output and local_stack.target.results_log_group in output
    accounts = json.loads(json.dumps([line for line in output.split() if line.startswith("smoke-")]))
    run_accounts = sorted({a.rstrip(",:") for a in accounts if a.rstrip(",:").endswith(("-payer", "-payee"))})
    assert len(run_accounts) == 2
    for account_id in run_accounts:
        state = operations.balance(local_stack.target, account_id)
        assert state is not None and state.account.status == AccountStatus.CLOSED


def test_the_local_stack_skips_the_nested_applications_and_still_resolves_their_outputs(local_stack):
    """The schema registry, the alarms and the dashboard have no local meaning (tests/template/
    test_skipped_resources.py checks every resource type in them): each application is skipped whole."""
    assert "EventSchemas (AWS::Serverless::Application)" in local_stack.skipped
    assert "Monitoring (AWS::Serverless::Application)" in local_stack.skipped
    assert local_stack.target.outputs["EventSchemaRegistryName"] == "local-EventSchemas-Outputs.RegistryName"
    assert local_stack.target.outputs["DashboardName"] == "local-Monitoring-Outputs.DashboardName"
