"""Real `sam local invoke` of every function with each of its sample events, and a check of what it printed.

Run by the CI job on GitHub's arm64 runners (which have Docker); see docs/operate.md. SAM exits 0 even
when the function raised or its container timed out, so the exit code proves nothing: the printed
response is parsed and checked per function.

    python -m posting_cli.sam_local_invoke prepare   # tables, bus and queue in the engines, env.json, template
    python -m posting_cli.sam_local_invoke run       # sam local invoke of every (function, event), checked

Networking: the engines (DynamoDB Local, moto) run as containers on a user-defined Docker network,
and `sam local invoke --docker-network NET` puts each Lambda container on it, so a function
reaches them by container name. `--docker-network host` is not used: SAM CLI does not attach its
containers to the host network (aws-sam-cli issues 3609 and 4236; SAM CLI 1.170's
samcli/local/docker/container.py connects to any network but "host"). The host reaches the same
engines through their published ports to prepare them.

`--env-vars` only overrides variables the template declares (aws-sam-cli issue 6145; SAM CLI 1.170's
samcli/local/lambdafn/env_vars.py resolves the declared variables only), and the
endpoint variables are deliberately not in template.yaml (deployed functions use the real
endpoints). So `prepare` writes a copy of the *built* template, next to it, in which each function
also declares AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_DYNAMODB (empty); code, handlers, runtime and
architecture are the build's own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / ".aws-sam" / "build"
LOCAL_TEMPLATE = BUILD_DIR / "template.local-invoke.json"
ENV_FILE = BUILD_DIR / "env.local-invoke.json"

# Each function and the sample events it is invoked with (events/ doubles as the test fixtures).
SAMPLE_EVENTS: dict[str, tuple[str, ...]] = {
    "ValidateFunction": ("validate.json", "workflow.json"),
    "PostFunction": ("post.json",),
    "EmitFunction": ("emit.json",),
    "SweepFunction": ("sweep.json",),
}
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB")
# Names of what `prepare` creates in the engines (the functions get them through env.json).
LEDGER_TABLE = "posting-sam-local-ledger"
EVENT_BUS = "posting-sam-local-results"
DEAD_LETTER_QUEUE = "posting-sam-local-dlq"
POSTING_QUEUE = "posting-sam-local-postings"


@dataclass(frozen=True)
class Engines:
    """Endpoints of the engines as the host sees them and as the Lambda containers see them."""

    dynamodb_from_host: str = "http://127.0.0.1:8000"
    moto_from_host: str = "http://127.0.0.1:5000"
    dynamodb_from_container: str = "http://dynamodb:8000"
    moto_from_container: str = "http://moto:5000"


# -- checking what SAM printed --------------------------------------------------------------------


def last_json_object(printed: str) -> Any:
    """The last top-level JSON object in the output: it starts a line (SAM prints the response last, on one
    line; `posting local invoke` pretty-prints it), and logs may come before it."""
    lines = printed.splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if not lines[index].startswith("{"):
            continue
        candidate = "\n".join(lines[index:]).strip()
        try:
            return json.loads(candidate)
        except ValueError:
            try:
                return json.loads(lines[index].strip())
            except ValueError:
                continue
    return None


def check_response(function: str, event: Any, printed: str) -> list[str]:
    """Problems with what `sam local invoke FUNCTION -e EVENT` printed; empty when it is right."""
    response = last_json_object(printed)
    if not isinstance(response, dict):
        return [f"{function}: no JSON response in the output (did the container time out?)"]
    if "errorType" in response or "errorMessage" in response:
        return [f"{function}: the function failed: {response.get('errorType')}: {response.get('errorMessage')}"]
    if function == "SweepFunction":
        # It answers what it found and sent, the checkpoints it wrote and the events it announced
        # (any numbers), without failing.
        expected = {"found", "sent", "checkpoints", "lines_checkpointed", "announced"}
        return [] if set(response) == expected else [f"{function}: expected {sorted(expected)}, got {response}"]
    if function == "EmitFunction":
        return (
            []
            if response == {"batchItemFailures": []}
            else [f"{function}: expected {{'batchItemFailures': []}}, got {response}"]
        )
    return _check_items(function, event, response)


def _check_items(function: str, event: Any, response: dict[str, Any]) -> list[str]:
    records = event if isinstance(event, list) else event.get("items", [])
    wanted_ids = [record.get("messageId") or record.get("message_id") for record in records]
    items = response.get("items")
    if not isinstance(items, list):
        return [f"{function}: expected {{'items': [...]}}, got {sorted(response)}"]
    got_ids = [item.get("message_id") for item in items]
    if got_ids != wanted_ids:
        return [f"{function}: items answer {got_ids}, expected one per record in order {wanted_ids}"]
    if function == "PostFunction":
        return _check_posted(function, items)
    return [
        f"{function}: item {item.get('message_id')} is neither rejected nor ready to post"
        for item in items
        if "outcome" not in item and "request_hash" not in item
    ]


def _check_posted(function: str, items: list[dict[str, Any]]) -> list[str]:
    problems = []
    for item in items:
        if "failure" in item:
            failure = item["failure"]
            problems.append(
                f"{function}: item {item.get('message_id')} undecided: {failure.get('error')}: "
                f"{failure.get('message')} (is DynamoDB Local reachable from the container?)"
            )
        elif "outcome" not in item:
            problems.append(f"{function}: item {item.get('message_id')} has no outcome")
    if problems:
        return problems
    statuses = [item["outcome"]["status"] for item in items]
    if statuses not in (["POSTED", "DUPLICATE", "REJECTED"], ["DUPLICATE", "DUPLICATE", "DUPLICATE"]):
        return [f"{function}: outcomes {statuses}, expected POSTED, DUPLICATE, REJECTED (or a rerun's)"]
    return []


# -- preparing the engines, the env file and the template -----------------------------------------


def env_vars(engines: Engines, dead_letter_queue_url: str) -> dict[str, dict[str, str]]:
    """--env-vars content: per function, the names `prepare` created and the engines' endpoints."""
    endpoints = {
        "AWS_ENDPOINT_URL": engines.moto_from_container,
        "AWS_ENDPOINT_URL_DYNAMODB": engines.dynamodb_from_container,
    }
    return {
        "ValidateFunction": dict(endpoints),
        "PostFunction": {**endpoints, "LEDGER_TABLE_NAME": LEDGER_TABLE},
        "EmitFunction": {**endpoints, "EVENT_BUS_NAME": EVENT_BUS, "DEAD_LETTER_QUEUE_URL": dead_letter_queue_url},
        # The expiry sweeper: its queue is the DLQ's sibling that `prepare` creates.
        "SweepFunction": {
            **endpoints,
            "LEDGER_TABLE_NAME": LEDGER_TABLE,
            "POSTING_QUEUE_URL": dead_letter_queue_url.rsplit("/", 1)[0] + "/" + POSTING_QUEUE,
        },
    }


def with_endpoint_variables(built_template: dict[str, Any]) -> dict[str, Any]:
    """The built template, with every function also declaring the endpoint variables (empty)."""
    template = json.loads(json.dumps(built_template))
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        variables = resource.setdefault("Properties", {}).setdefault("Environment", {}).setdefault("Variables", {})
        for name in ENDPOINT_VARIABLES:
            variables.setdefault(name, "")
    return template


def prepare(engines: Engines) -> None:
    import boto3

    from posting.adapters.ledger_table import LedgerTable
    from posting.domain.outcomes import AccountAlreadyExists
    from posting_cli import operations
    from posting_cli.local.tables import create_table
    from posting_cli.local.template import Template, load_template

    credentials = {"region_name": "us-east-1", "aws_access_key_id": "local", "aws_secret_access_key": "local"}
    dynamodb = boto3.client("dynamodb", endpoint_url=engines.dynamodb_from_host, **credentials)
    if LEDGER_TABLE not in dynamodb.list_tables()["TableNames"]:
        create_table(dynamodb, LEDGER_TABLE, Template.load().table_definition("LedgerTable"))
    table = LedgerTable(dynamodb, LEDGER_TABLE)
    for account in operations.parse_accounts((ROOT / "events" / "accounts.json").read_text()):
        with contextlib.suppress(AccountAlreadyExists):  # a rerun on the same engines
            table.open_account(account, "2026-11-27T09:00:00.000Z")
    events = boto3.client("events", endpoint_url=engines.moto_from_host, **credentials)
    if EVENT_BUS not in [bus["Name"] for bus in events.list_event_buses()["EventBuses"]]:
        events.create_event_bus(Name=EVENT_BUS)
    sqs = boto3.client("sqs", endpoint_url=engines.moto_from_host, **credentials)
    queue_url = sqs.create_queue(QueueName=DEAD_LETTER_QUEUE)["QueueUrl"]
    sqs.create_queue(QueueName=POSTING_QUEUE)
    # The URL as the containers must use it (same path, the container-side host).
    container_queue_url = engines.moto_from_container + "/" + queue_url.split("/", 3)[3]
    built = BUILD_DIR / "template.yaml"
    if not built.exists():
        raise SystemExit(f"{built} does not exist: run `sam build` (make build) first")
    LOCAL_TEMPLATE.write_text(json.dumps(with_endpoint_variables(load_template(built)), indent=2))
    ENV_FILE.write_text(json.dumps(env_vars(engines, container_queue_url), indent=2))
    print(f"wrote {LOCAL_TEMPLATE.relative_to(ROOT)} and {ENV_FILE.relative_to(ROOT)}")


def run(docker_network: str, sam: str) -> int:
    failures = 0
    for function, event_files in SAMPLE_EVENTS.items():
        for event_file in event_files:
            event_path = ROOT / "events" / event_file
            command = [
                sam, "local", "invoke", function,
                "--template", str(LOCAL_TEMPLATE),
                "--event", str(event_path),
                "--env-vars", str(ENV_FILE),
                "--docker-network", docker_network,
            ]  # fmt: skip
            print("$ " + " ".join(command), flush=True)
            completed = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
            sys.stderr.write(completed.stderr)
            print(completed.stdout)
            problems = check_response(function, json.loads(event_path.read_text()), completed.stdout)
            if completed.returncode != 0:
                problems.insert(0, f"{function}: sam exited {completed.returncode}")
            for problem in problems:
                print(f"FAILED {event_file}: {problem}", flush=True)
            print(f"{'ok' if not problems else 'FAILED'}: {function} with events/{event_file}", flush=True)
            failures += bool(problems)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posting_cli.sam_local_invoke", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    prep = verbs.add_parser("prepare", help="create the ledger table, accounts, bus and DLQ; write env and template")
    for field in Engines.__dataclass_fields__:
        prep.add_argument(f"--{field.replace('_', '-')}", default=getattr(Engines(), field))
    go = verbs.add_parser("run", help="sam local invoke every function with each sample event, and check")
    go.add_argument("--docker-network", default="posting-ci")
    go.add_argument("--sam", default=str(ROOT / "tools" / "sam.sh"))
    args = parser.parse_args(argv)
    if args.verb == "prepare":
        prepare(Engines(**{field: getattr(args, field) for field in Engines.__dataclass_fields__}))
        return 0
    return run(args.docker_network, args.sam)


if __name__ == "__main__":
    sys.exit(main())
