"""The CI job's check passes on what the same handlers answer locally, as `posting local invoke` prints it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from posting_cli import operations
from posting_cli.sam_local_invoke import SAMPLE_EVENTS, check_response

pytestmark = pytest.mark.local_stack

ROOT = Path(__file__).resolve().parents[2]
CASES = [(function, name) for function, names in SAMPLE_EVENTS.items() for name in names]


@pytest.mark.parametrize(("function", "event_file"), CASES)
def test_the_check_accepts_the_local_answers_to_every_sample_event(local_stack, function, event_file):
    target = local_stack.target
    operations.open_accounts(target, operations.parse_accounts((ROOT / "events" / "accounts.json").read_text()))
    event = json.loads((ROOT / "events" / event_file).read_text())
    [fn] = [f for f in local_stack.functions if f.logical_id == function]

    response = local_stack.runtime.invoke(fn.function_name, event)
    printed = io.StringIO()
    printed.write('{"level":"INFO","message":"a log line before the response"}\n')
    Console(file=printed, width=120).print_json(json.dumps(response))  # as `posting local invoke` prints it

    assert check_response(function, event, printed.getvalue()) == []


def test_the_check_accepts_what_posting_local_invoke_prints(dynamodb_local, tmp_path):
    env = {
        **os.environ,
        "DYNAMODB_ENDPOINT": dynamodb_local.endpoint_url,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tools")]),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    event_file = ROOT / "events" / "validate.json"
    completed = subprocess.run(
        [sys.executable, "-m", "posting_cli.cli", "local", "invoke", "validate", "--event", str(event_file),
         "--accounts", str(ROOT / "events" / "accounts.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert check_response("ValidateFunction", json.loads(event_file.read_text()), completed.stdout) == []
