"""`make bench`: how fast, how big and how costly the posting pipeline is, measured on this machine.

    .venv/bin/python -m posting_cli.bench [--postings 600]

Six measurements, each printed as it finishes and written together as JSON to
bench-results/<UTC timestamp>.json, with the machine and the method behind every number:

1. domain      the pure functions per posting (parse, content hash, plan), timeit, 2 and 10 legs
2. ledger      post_item on DynamoDB Local: 1 and 4 threads on distinct accounts, 4 threads on one
               hot account (conflicts and retries counted), latency per posting
3. pipeline    the whole local stack (template.yaml on DynamoDB Local + moto, handlers in-process):
               throughput at saturation, latency enqueue -> result event at a small in-flight window
4. cold start  a fresh interpreter per handler module: import time and peak RSS
5. memory      peak RSS of post_batch over 1,000 postings, in a fresh process
6. cost        dollars per million postings on AWS, from DESIGN.md's prices and the item and payload
               sizes measured above (pure arithmetic, unit-tested in tests/unit/test_bench_cost_model.py)

Speed targets live here, never in unit tests: this machine is shared and noisy, so every number is
a measurement of this run, not a property of the code. Sections 2 to 5 say nothing about latency on
AWS; section 6 is a model, not a bill.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import timeit
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

from posting.adapters.ledger_table import ConcurrentUpdate, LedgerTable, account_key, entry_key, posting_key
from posting.domain.ledger import plan_posting
from posting.domain.model import Account, AccountState, Side, parse_posting_request
from posting.handlers.config import AWS_CLIENT_CONFIG
from posting.steps.emit import EVENT_SOURCE, result_event
from posting.steps.post import MAX_ATTEMPTS, post_batch, post_item
from posting.steps.validate import validate_batch, validate_record
from posting_cli.local.template import Template

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "bench-results"
SEED = 7

# Prices, us-east-1, as DESIGN.md states them ("as researched in 2026"; verify on the pricing pages).
PRICES_SOURCE = "DESIGN.md, 'Facts that bound the design': us-east-1 list prices as researched in 2026"
# The AWS guidance's published production estimate: about $1,811 per month for about 20 million requests.
GUIDANCE_USD_PER_MONTH = 1811.0
GUIDANCE_REQUESTS_PER_MONTH = 20_000_000


# =================================================================================================
# 6. The cost model: pure arithmetic, kept first because everything else feeds it
# =================================================================================================

KB = 1024
CHUNK_64KB = 64 * KB  # SQS, Pipes and EventBridge bill each 64 KB chunk of a payload as one request/event
WRITE_UNIT_BYTES = 1 * KB  # one write request unit: a standard write of up to 1 KB
READ_UNIT_BYTES = 4 * KB  # one read request unit: a strongly consistent read of up to 4 KB
SFN_BILLING_STEP_MS = 100  # Step Functions Express: duration rounded up to 100 ms...
SFN_MEMORY_CHUNK_MB = 64  # ...and memory to 64 MB chunks


@dataclass(frozen=True)
class Prices:
    """USD list prices (us-east-1) the model uses; they are written into the JSON as inputs."""

    sqs_per_million_requests: float = 0.40
    pipes_per_million_requests: float = 0.40
    sfn_express_per_million_requests: float = 1.00
    sfn_express_per_gb_second: float = 0.00001667
    lambda_arm_per_million_requests: float = 0.20
    lambda_arm_per_gb_second: float = 0.0000133334
    dynamodb_per_million_write_units: float = 0.625
    dynamodb_per_million_read_units: float = 0.125
    eventbridge_per_million_events: float = 1.00


def number_size(text: str) -> int:
    """Bytes DynamoDB uses for a number: 1 per two significant digits, plus 1 (leading/trailing zeros trimmed)."""
    digits = text.lstrip("+-").replace(".", "").lstrip("0").rstrip("0")
    return math.ceil(len(digits) / 2) + 1


_SCALAR_SIZE: dict[str, Callable[[Any], int]] = {
    "S": lambda text: len(text.encode()),
    "N": number_size,
    "B": len,  # boto3 hands binaries over as raw bytes
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
}


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB AttributeValue (`{"S": ...}`, `{"N": ...}`, `{"M": ...}`...) without its name.

    The rules of the DynamoDB Developer Guide, "Item sizes and formats": strings and binaries by
    their UTF-8 / raw bytes, numbers by significant digits, null and booleans 1 byte, a list or map
    3 bytes plus 1 byte per element plus its elements (map keys count as attribute names).
    """
    ((kind, content),) = value.items()
    if kind in _SCALAR_SIZE:
        return _SCALAR_SIZE[kind](content)
    if kind in ("SS", "NS", "BS"):  # sets: the sum of their members
        return sum(_SCALAR_SIZE[kind[0]](member) for member in content)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_value_size(element) for name, element in content.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of a DynamoDB item: the sum of its attribute names and values (keys included)."""
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def write_units(item_bytes: int, *, transactional: bool) -> int:
    """Write request units for one item: per started KB, doubled inside a transaction."""
    units = max(1, math.ceil(item_bytes / WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


def read_units(item_bytes: int, *, consistent: bool) -> float:
    """Read request units for one item (BatchGetItem rounds each item separately): per started 4 KB."""
    units = max(1, math.ceil(item_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def chunks_64kb(payload_bytes: int) -> int:
    """How many billed requests (SQS, Pipes) or events (EventBridge) a payload counts as."""
    return max(1, math.ceil(payload_bytes / CHUNK_64KB))


def sfn_express_gb_seconds(duration_ms: float, memory_mb: float) -> float:
    """Billed GB-seconds of one Express execution: duration up to 100 ms steps, memory up to 64 MB chunks."""
    billed_ms = max(1, math.ceil(duration_ms / SFN_BILLING_STEP_MS)) * SFN_BILLING_STEP_MS
    billed_mb = max(1, math.ceil(memory_mb / SFN_MEMORY_CHUNK_MB)) * SFN_MEMORY_CHUNK_MB
    return (billed_ms / 1000) * (billed_mb / 1024)


def lambda_gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """Billed GB-seconds of one Lambda invocation: duration rounded up to the millisecond."""
    return (math.ceil(duration_ms) / 1000) * (memory_mb / 1024)


@dataclass(frozen=True)
class CostInputs:
    """What one batch of B postings does on AWS; every field is measured or a stated assumption."""

    batch_size: int
    message_bytes: int  # one SQS message body (a posting request)
    pipe_batch_bytes: int  # the JSON array of SQS records the pipe hands to the workflow
    lambda_memory_mb: int
    lambda_ms: Mapping[str, float]  # per invocation for a full batch, by function
    sfn_overhead_ms: float  # what the workflow adds to the Lambda durations (invokes, transitions)
    sfn_memory_mb: float
    write_item_bytes: Sequence[int]  # the items of one posting's TransactWriteItems
    read_item_bytes: Sequence[int]  # the items of one posting's consistent BatchGetItem
    event_bytes: int  # one result event as PutEvents bills it
    # Per batch: the producer's SendMessageBatch and the pipe's ReceiveMessage carry the payload (billed
    # per 64 KB chunk); the pipe's DeleteMessageBatch does not. Steady load: no empty receives.
    sqs_payload_requests: int = 2
    sqs_other_requests: int = 1


@dataclass(frozen=True)
class CostLine:
    component: str
    usage_per_posting: float
    unit: str
    usd_per_million_postings: float


def cost_breakdown(inputs: CostInputs, prices: Prices) -> list[CostLine]:
    """Dollars per million postings, by component, for batches of `inputs.batch_size` postings."""
    b = inputs.batch_size
    per_million = 1_000_000
    lines: list[CostLine] = []

    def add(component: str, per_posting: float, unit: str, price_per_unit: float) -> None:
        lines.append(CostLine(component, per_posting, unit, per_posting * price_per_unit * per_million))

    sqs = inputs.sqs_payload_requests * chunks_64kb(b * inputs.message_bytes) + inputs.sqs_other_requests
    add("SQS requests", sqs / b, "requests", prices.sqs_per_million_requests / per_million)
    add(
        "EventBridge Pipes",
        chunks_64kb(inputs.pipe_batch_bytes) / b,
        "requests",
        prices.pipes_per_million_requests / per_million,
    )
    add("Step Functions requests", 1 / b, "executions", prices.sfn_express_per_million_requests / per_million)
    workflow_ms = sum(inputs.lambda_ms.values()) + inputs.sfn_overhead_ms
    add(
        "Step Functions duration",
        sfn_express_gb_seconds(workflow_ms, inputs.sfn_memory_mb) / b,
        "GB-s",
        prices.sfn_express_per_gb_second,
    )
    add(
        "Lambda requests",
        len(inputs.lambda_ms) / b,
        "invocations",
        prices.lambda_arm_per_million_requests / per_million,
    )
    gb_seconds = sum(lambda_gb_seconds(ms, inputs.lambda_memory_mb) for ms in inputs.lambda_ms.values())
    add("Lambda duration", gb_seconds / b, "GB-s", prices.lambda_arm_per_gb_second)
    wcu = sum(write_units(size, transactional=True) for size in inputs.write_item_bytes)
    add("DynamoDB writes", wcu, "write units", prices.dynamodb_per_million_write_units / per_million)
    rcu = sum(read_units(size, consistent=True) for size in inputs.read_item_bytes)
    add("DynamoDB reads", rcu, "read units", prices.dynamodb_per_million_read_units / per_million)
    add(
        "EventBridge events",
        chunks_64kb(inputs.event_bytes),
        "events",
        prices.eventbridge_per_million_events / per_million,
    )
    return lines


# =================================================================================================
# Small helpers: statistics, requests, report sections
# =================================================================================================


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 = the middle value); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def leg(account_id: str, side: str, amount: int) -> dict[str, Any]:
    return {"account_id": account_id, "side": side, "amount": amount, "currency": "EUR"}


def request_body(posting_id: str, legs: list[dict[str, Any]]) -> str:
    """A request shaped like the demo's traffic: description and one metadata key."""
    return json.dumps(
        {
            "posting_id": posting_id,
            "legs": legs,
            "effective_at": "2026-11-27T10:00:00Z",
            "description": "card payment",
            "metadata": {"channel": "card"},
        }
    )


def two_leg_body(posting_id: str, payer: str, payee: str, amount: int = 1250) -> str:
    return request_body(posting_id, [leg(payer, "debit", amount), leg(payee, "credit", amount)])


def ten_leg_body(posting_id: str, accounts: Sequence[str], amount: int = 1000) -> str:
    """Five debits and five credits on ten distinct accounts."""
    legs = [leg(a, "debit", amount) for a in accounts[:5]] + [leg(a, "credit", amount) for a in accounts[5:10]]
    return request_body(posting_id, legs)


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    """An SQS record as the pipe hands it to the workflow (AWS's shape; receipt handle of a typical length)."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + "x" * 196,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764237600000",
            "SenderId": "AROAEXAMPLEEXAMPLE:posting-producer",
            "ApproximateFirstReceiveTimestamp": "1764237600001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:posting-stack-PostingQueue-AbCdEfGhIjKl",
        "awsRegion": "us-east-1",
    }


def posting_id() -> str:
    return f"pay-{uuid.uuid4()}"


@dataclass
class Section:
    """One measurement: its JSON (with how it was measured) and its lines of the printed report."""

    key: str
    title: str
    method: str
    data: dict[str, Any]
    lines: list[str]

    def print(self) -> None:
        print(f"\n{self.title}", flush=True)
        for line in self.lines:
            print(f"  {line}", flush=True)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "method": self.method, **self.data}


def progress(message: str) -> None:
    """Progress goes to stderr: stdout is the report (and belongs to the handlers while the stack runs)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fmt_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned first column, right-aligned others."""
    cells = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in cells
    ]


# =================================================================================================
# 1. Domain: pure functions per posting
# =================================================================================================

DOMAIN_REPEATS = 9
DOMAIN_SECONDS_PER_REPEAT = 0.05


def microseconds_per_call(function: Callable[[], object]) -> dict[str, float]:
    """timeit: calibrate a loop of about 50 ms, run it DOMAIN_REPEATS times; median and min per call."""
    timer = timeit.Timer(function)
    once = timer.timeit(number=10) / 10
    number = max(10, int(DOMAIN_SECONDS_PER_REPEAT / max(once, 1e-9)))
    per_call = [total / number * 1e6 for total in timer.repeat(repeat=DOMAIN_REPEATS, number=number)]
    return {"median_us": round(statistics.median(per_call), 2), "min_us": round(min(per_call), 2), "loops": number}


def bench_domain() -> Section:
    def open_book(ids: Sequence[str]) -> dict[str, AccountState]:
        return {
            account_id: AccountState(
                account=Account(
                    account_id=account_id, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None
                ),
                balance=10_000,
                version=3,
            )
            for account_id in ids
        }

    ids = [f"acc-{n:08d}" for n in range(10)]
    cases = {"2-leg": two_leg_body(posting_id(), ids[0], ids[1]), "10-leg": ten_leg_body(posting_id(), ids)}
    results: dict[str, dict[str, Any]] = {}
    for case, body in cases.items():
        request = parse_posting_request(body)
        accounts = open_book(ids)
        record = sqs_record(body)

        def all_three(body: str = body, accounts: dict[str, AccountState] = accounts) -> object:
            parsed = parse_posting_request(body)
            parsed.content_hash()
            return plan_posting(parsed, accounts)

        operations: dict[str, Callable[[], object]] = {
            "parse_posting_request": partial(parse_posting_request, body),
            "content_hash": request.content_hash,
            "plan_posting": partial(plan_posting, request, accounts),
            "parse + hash + plan": all_three,
            "validate_record (validate step)": partial(validate_record, record),
        }
        results[case] = {"body_bytes": len(body.encode())} | {
            name: microseconds_per_call(operation) for name, operation in operations.items()
        }

    names = [name for name in results["2-leg"] if name != "body_bytes"]
    rows = [
        [name] + [f"{results[case][name]['median_us']:,.1f} ({results[case][name]['min_us']:,.1f})" for case in cases]
        for name in names
    ]
    parse_2 = results["2-leg"]["parse_posting_request"]["median_us"]
    lines = [
        *fmt_table(["µs per call, median (min)", *[f"{case} request" for case in cases]], rows),
        f"request bodies: {results['2-leg']['body_bytes']} and {results['10-leg']['body_bytes']} bytes of JSON",
        "note: the pipeline parses each body three times (validate; post_batch's lock keys; post_item), so",
        f"      parsing costs about {3 * parse_2:,.0f} µs per 2-leg posting in all, still far below one DynamoDB call.",
    ]
    return Section(
        key="domain",
        title=f"1. Domain, pure Python (timeit, median of {DOMAIN_REPEATS} repeats of about 50 ms each)",
        method=(
            "timeit.Timer per operation; loop count calibrated to ~50 ms; "
            f"{DOMAIN_REPEATS} repeats; median and min of the per-call time. Accounts are in memory."
        ),
        data={"results": results},
        lines=lines,
    )


# =================================================================================================
# 4. Cold start proxies: a fresh interpreter imports a handler module
# =================================================================================================

COLD_START_RUNS = 5
HANDLER_MODULES = ("posting.handlers.validate", "posting.handlers.post", "posting.handlers.emit")
# Runs in the child: time the import alone, then the first AWS client the handler creates on its first call.
COLD_START_CHILD = """
import importlib, json, resource, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
imported = time.perf_counter()
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
client_ms = None
if len(sys.argv) > 2:
    from posting.handlers.config import aws_client
    before = time.perf_counter()
    for service in sys.argv[2:]:
        aws_client(service)
    client_ms = (time.perf_counter() - before) * 1000
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "rss_after_import_kb": rss_import,
    "first_clients_ms": client_ms,
    "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""
EMPTY_CHILD = (
    "import json, resource; print(json.dumps({'peak_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
)
CLIENTS_ON_FIRST_CALL = {"posting.handlers.post": ["dynamodb"], "posting.handlers.emit": ["events", "sqs"]}


def lambda_like_environment() -> dict[str, str]:
    """What a Lambda function of this template sees: its Globals and variables, a task root, dummy keys.

    LAMBDA_TASK_ROOT matters: with it Powertools' Tracer is enabled (Tracing: Active) and the X-Ray SDK
    runs in its Lambda mode; without it the SDK sets up its own sampling and imports much more.
    """
    template = Template.load()

    def value(setting: Any) -> str:
        # A parameter's value; any other reference (a table name, a queue URL) gets a placeholder: the
        # handlers read their configuration on the first call, not at import.
        if isinstance(setting, dict):
            return template.parameters.get(str(setting.get("Ref")), "placeholder")
        return str(setting)

    variables = {
        name: value(setting)
        for logical_id in ("ValidateFunction", "PostFunction", "EmitFunction")
        for name, setting in template.function_setting(logical_id, "Environment")["Variables"].items()
    }
    return {
        "PATH": os.environ.get("PATH", ""),
        "LAMBDA_TASK_ROOT": str(ROOT / "src"),
        "AWS_LAMBDA_FUNCTION_NAME": "posting-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template.function_globals().get("MemorySize", 128)),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_EC2_METADATA_DISABLED": "true",
        **variables,
    }


def bench_cold_start() -> Section:
    environment = lambda_like_environment()
    python = sys.executable
    results: dict[str, dict[str, Any]] = {}

    def run(arguments: list[str]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        done = subprocess.run([python, *arguments], env=environment, capture_output=True, text=True, check=True)
        wall_ms = (time.perf_counter() - started) * 1000
        last_line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
        return wall_ms, json.loads(last_line)

    baseline = [run(["-c", EMPTY_CHILD]) for _ in range(COLD_START_RUNS)]
    results["python -c (empty)"] = {
        "process_wall_ms": round(statistics.median(w for w, _ in baseline), 1),
        "peak_rss_mb": round(statistics.median(r["peak_rss_kb"] for _, r in baseline) / 1024, 1),
    }
    for module in HANDLER_MODULES:
        progress(f"cold start: {module} x{COLD_START_RUNS}")
        runs = [
            run(["-c", COLD_START_CHILD, module, *CLIENTS_ON_FIRST_CALL.get(module, [])])
            for _ in range(COLD_START_RUNS)
        ]
        clients = [r["first_clients_ms"] for _, r in runs if r["first_clients_ms"] is not None]
        results[module] = {
            "import_ms": round(statistics.median(r["import_ms"] for _, r in runs), 1),
            "import_ms_min_max": [
                round(min(r["import_ms"] for _, r in runs), 1),
                round(max(r["import_ms"] for _, r in runs), 1),
            ],
            "rss_after_import_mb": round(statistics.median(r["rss_after_import_kb"] for _, r in runs) / 1024, 1),
            "first_clients": CLIENTS_ON_FIRST_CALL.get(module, []),
            "first_clients_ms": round(statistics.median(clients), 1) if clients else None,
            "peak_rss_mb": round(statistics.median(r["peak_rss_kb"] for _, r in runs) / 1024, 1),
            "process_wall_ms": round(statistics.median(w for w, _ in runs), 1),
        }
    rows = []
    for name, r in results.items():
        first = r.get("first_clients_ms")
        client_cell = f"{first:,.0f} ({'+'.join(r['first_clients'])})" if first else "-"
        rows.append(
            [
                name,
                f"{r['import_ms']:,.0f}" if "import_ms" in r else "-",
                f"{r['rss_after_import_mb']:.0f}" if "rss_after_import_mb" in r else "-",
                client_cell,
                f"{r['peak_rss_mb']:.0f}",
                f"{r['process_wall_ms']:,.0f}",
            ]
        )
    lines = [
        *fmt_table(["module", "import ms", "RSS MB", "first client(s) ms", "peak RSS MB", "process wall ms"], rows),
        "environment: the template's variables, LAMBDA_TASK_ROOT set (X-Ray in Lambda mode), dummy credentials;",
        "x86 here, arm64 on AWS; the Lambda runtime's own start-up is not included.",
    ]
    return Section(
        key="cold_start",
        title=f"4. Cold start proxies (fresh interpreter per run, median of {COLD_START_RUNS})",
        method=(
            "subprocess per run: perf_counter around importlib.import_module(handler module), then (post, emit) "
            "around creating the boto3 clients the handler builds on its first call; ru_maxrss after each; "
            "process wall time measured by the parent. Lambda-like environment (LAMBDA_TASK_ROOT, template variables)."
        ),
        data={"runs": COLD_START_RUNS, "results": results},
        lines=lines,
    )


# =================================================================================================
# 2. Ledger on DynamoDB Local: post_item, with and without contention
# =================================================================================================

LEDGER_REPEATS = 3
LEDGER_WARMUP_POSTINGS = 60
LEDGER_ACCOUNTS_PER_THREAD = 20
LEDGER_SCENARIOS = (
    # name, threads, postings per thread per repeat, all credits on one hot account?
    ("distinct accounts", 1, 150, False),
    ("distinct accounts", 4, 75, False),
    ("one hot account", 4, 50, True),
)
HOT_ACCOUNT = "acc-hot-settlement"


class CountingClient:
    """A boto3 client that counts the API calls made through it (thread-safe); everything else passes through."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


class CountingLedger(LedgerTable):
    """The real LedgerTable, counting what became of each transaction: committed, ConcurrentUpdate, ..."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.counting_client = CountingClient(client)
        super().__init__(self.counting_client, table_name)
        self.outcomes: Counter[str] = Counter()
        self.cancellations: Counter[str] = Counter()  # ConcurrentUpdate by cancellation reason codes
        self._count_lock = threading.Lock()

    def record_posting(self, *args: Any, **kwargs: Any) -> Any:
        try:
            decision = super().record_posting(*args, **kwargs)
        except Exception as error:
            with self._count_lock:
                self.outcomes[type(error).__name__] += 1
                if isinstance(error, ConcurrentUpdate):
                    self.cancellations[str(error)] += 1
            raise
        with self._count_lock:
            self.outcomes["committed"] += 1
        return decision

    def reset_counts(self) -> None:
        self.outcomes.clear()
        self.cancellations.clear()
        self.counting_client.calls.clear()


def create_ledger_table(client: Any) -> str:
    """A fresh table with the template's key schema (the same as the deployed LedgerTable)."""
    from posting_cli.local.stack import create_table

    name = f"bench-{uuid.uuid4().hex[:10]}"
    create_table(client, name, Template.load().properties("LedgerTable"))
    return name


def open_unlimited_accounts(ledger: Any, account_ids: Sequence[str]) -> None:
    """Accounts with no overdraft limit, so that no funding is needed before posting."""
    for account_id in account_ids:
        account = Account(account_id=account_id, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None)
        ledger.open_account(account, "2026-11-27T09:00:00.000Z")


def thread_accounts(thread: int) -> list[str]:
    return [f"acc-t{thread}-{n:04d}" for n in range(LEDGER_ACCOUNTS_PER_THREAD)]


def scenario_bodies(threads: int, per_thread: int, hot: bool) -> list[list[str]]:
    """Per thread, its postings: between its own accounts, or from its own accounts to the hot one."""
    work = []
    for thread in range(threads):
        own = thread_accounts(thread)
        bodies = []
        for n in range(per_thread):
            payee = HOT_ACCOUNT if hot else own[(n + 1) % len(own)]
            bodies.append(two_leg_body(posting_id(), own[n % len(own)], payee))
        work.append(bodies)
    return work


def run_postings(ledger: Any, work: list[list[str]]) -> dict[str, Any]:
    """Each thread posts its own list in order; returns the wall time, latencies and outcomes."""
    items = [[validate_record(sqs_record(body)) for body in bodies] for bodies in work]  # validation is not timed
    latencies_ms: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(items) + 1)

    def worker(mine: list[Any]) -> None:
        start.wait()
        for item in mine:
            began = time.perf_counter()
            result = post_item(item, ledger)
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                latencies_ms.append(elapsed)
                if result.outcome is not None:
                    statuses[str(result.outcome.status)] += 1
                else:
                    statuses[f"undecided ({result.failure.error if result.failure else '?'})"] += 1

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures = [pool.submit(worker, mine) for mine in items]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - began
    return {"wall_s": wall, "latencies_ms": latencies_ms, "statuses": statuses}


def bench_ledger(endpoint: Any) -> tuple[Section, dict[str, Any]]:
    """Returns the section, and the stored sizes of real postings for the cost model."""
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    scenarios: list[dict[str, Any]] = []
    sizes: dict[str, Any] = {}
    for name, threads, per_thread, hot in LEDGER_SCENARIOS:
        progress(f"ledger: {name}, {threads} thread(s)")
        table = create_ledger_table(client)
        try:
            ledger = CountingLedger(client, table)
            open_unlimited_accounts(ledger, [a for t in range(threads) for a in thread_accounts(t)])
            if hot:
                open_unlimited_accounts(ledger, [HOT_ACCOUNT])
            # Warm-up: the JVM's JIT and the connection pool, not measured.
            run_postings(ledger, scenario_bodies(threads, max(1, LEDGER_WARMUP_POSTINGS // threads), hot))
            ledger.reset_counts()
            runs = [run_postings(ledger, scenario_bodies(threads, per_thread, hot)) for _ in range(LEDGER_REPEATS)]
            if not hot and threads == 1:
                sizes = measure_stored_sizes(ledger, client, table)
        finally:
            client.delete_table(TableName=table)
        postings = threads * per_thread
        statuses: Counter[str] = sum((run["statuses"] for run in runs), Counter())
        decided = statuses["POSTED"]
        rates = [run["statuses"]["POSTED"] / run["wall_s"] for run in runs]
        latencies = [latency for run in runs for latency in run["latencies_ms"]]
        attempts = sum(ledger.outcomes.values())
        scenarios.append(
            {
                "scenario": name,
                "threads": threads,
                "postings_per_repeat": postings,
                "repeats": LEDGER_REPEATS,
                "postings_per_s_median": round(statistics.median(rates), 1),
                "postings_per_s_repeats": [round(rate, 1) for rate in rates],
                "latency_ms_p50": round(percentile(latencies, 0.50), 1),
                "latency_ms_p95": round(percentile(latencies, 0.95), 1),
                "latency_ms_max": round(max(latencies), 1),
                "statuses": dict(statuses),
                "record_posting_outcomes": dict(ledger.outcomes),
                "concurrent_update_cancellation_codes": dict(ledger.cancellations),
                "transaction_attempts_per_posted": round(attempts / decided, 3) if decided else None,
                "dynamodb_calls": dict(ledger.counting_client.calls),
                "dynamodb_calls_per_posted": (
                    round(sum(ledger.counting_client.calls.values()) / decided, 2) if decided else None
                ),
            }
        )
    rows = []
    for s in scenarios:
        rates = s["postings_per_s_repeats"]
        undecided = sum(n for status, n in s["statuses"].items() if status.startswith("undecided"))
        rows.append(
            [
                s["scenario"],
                s["threads"],
                f"{s['postings_per_s_median']:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})",
                f"{s['latency_ms_p50']:.1f}",
                f"{s['latency_ms_p95']:.1f}",
                f"{s['transaction_attempts_per_posted']:.2f}",
                f"{s['dynamodb_calls_per_posted']:.2f}",
                undecided,
            ]
        )
    contended = scenarios[-1]
    conflicts = {k: v for k, v in contended["record_posting_outcomes"].items() if k != "committed"}
    lines = [
        *fmt_table(
            [
                "scenario",
                "threads",
                "postings/s (min-max)",
                "p50 ms",
                "p95 ms",
                "txn tries/posting",
                "DDB calls/posting",
                "undecided",
            ],
            rows,
        ),
        f"hot account: {contended['record_posting_outcomes'].get('committed', 0)} transactions committed, "
        + (", ".join(f"{n} {kind}" for kind, n in sorted(conflicts.items())) or "no conflicts")
        + " (each one re-read and re-planned by post_item, with jittered backoff);",
        "distinct cancellation reason codes per cancelled transaction: "
        + (
            ", ".join(f"[{codes}] x{n}" for codes, n in contended["concurrent_update_cancellation_codes"].items())
            or "none"
        )
        + ". Here a lost race shows as",
        "a failed version condition; DynamoDB itself may also answer TransactionConflict (retried the same way).",
        f"undecided = still failing after post_item's {MAX_ATTEMPTS} attempts: on AWS such a record goes back to "
        "the queue.",
    ]
    section = Section(
        key="ledger",
        title=(
            "2. Ledger on DynamoDB Local: post_item (BatchGetItem + TransactWriteItems), "
            f"median of {LEDGER_REPEATS} repeats"
        ),
        method=(
            "post_item on validated items against DynamoDB Local on loopback (boto3 client with the handlers' "
            "config), each thread posting its own list in order; postings/s = POSTED / wall time per repeat "
            f"(median of {LEDGER_REPEATS}); latency = wall time of each post_item call (retries and backoff "
            f"included), pooled over repeats, nearest rank. {LEDGER_WARMUP_POSTINGS} warm-up postings first. "
            "Conflicts counted by a LedgerTable subclass around record_posting; calls by a client wrapper. "
            "Accounts have no overdraft limit; each table is fresh and dropped afterwards."
        ),
        data={"scenarios": scenarios},
        lines=lines,
    )
    return section, sizes


def measure_stored_sizes(ledger: Any, client: Any, table: str) -> dict[str, Any]:
    """Post one 2-leg and one 10-leg request for real, read every item back, and size them by DynamoDB's rules."""

    def stored(key: dict[str, Any]) -> dict[str, Any]:
        return client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]

    accounts = [f"acc-size-{n:04d}" for n in range(10)]
    open_unlimited_accounts(ledger, accounts)
    sizes: dict[str, Any] = {}
    for case, body in (
        ("2-leg", two_leg_body(posting_id(), accounts[0], accounts[1])),
        ("10-leg", ten_leg_body(posting_id(), accounts)),
    ):
        item = post_item(validate_record(sqs_record(body)), ledger)
        assert item.outcome is not None and item.posting_id is not None, item.failure
        balances = item.outcome.balances
        decision = item_size(stored(posting_key(item.posting_id)))
        account_items = [item_size(stored(account_key(b.account_id))) for b in balances]
        entry_items = [item_size(stored(entry_key(b.account_id, b.version))) for b in balances]
        event = result_event(item, item.outcome)
        # PutEvents bills an entry by Source + DetailType + Detail (+ Resources, Time: not set here).
        event_bytes = len(EVENT_SOURCE) + len(event.detail_type) + len(json.dumps(event.detail, separators=(",", ":")))
        write_items = [decision, *account_items, *entry_items]
        sizes[case] = {
            "message_bytes": len(body.encode()),
            "posting_item_bytes": decision,
            "account_item_bytes": account_items,
            "entry_item_bytes": entry_items,
            "transaction_items": len(write_items),
            "transaction_write_units": sum(write_units(size, transactional=True) for size in write_items),
            "read_item_bytes": account_items,
            "read_units": sum(read_units(size, consistent=True) for size in account_items),
            "event_bytes": event_bytes,
        }
    return sizes


# =================================================================================================
# 5. Memory: post_batch over 1,000 postings in a fresh process
# =================================================================================================

MEMORY_BATCHES = 100
MEMORY_BATCH_SIZE = 10
MEMORY_ACCOUNTS = 100


def bench_memory(endpoint: Any) -> Section:
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    table = create_ledger_table(client)
    progress(f"memory: post_batch over {MEMORY_BATCHES * MEMORY_BATCH_SIZE} postings in a child process")
    try:
        environment = os.environ | {
            "BENCH_DYNAMODB_ENDPOINT": endpoint.endpoint_url,
            "BENCH_TABLE": table,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        done = subprocess.run(
            [sys.executable, "-m", "posting_cli.bench", "--memory-child"],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        client.delete_table(TableName=table)
    mb = 1024
    lines = [
        f"peak RSS after importing the post handler (and this module), opening the client and one warm-up batch: "
        f"{result['baseline_peak_rss_kb'] / mb:.0f} MB",
        f"peak RSS after {result['postings']} postings ({MEMORY_BATCHES} batches of {MEMORY_BATCH_SIZE}, "
        f"{result['workers']} workers): {result['peak_rss_kb'] / mb:.0f} MB "
        f"(+{(result['peak_rss_kb'] - result['baseline_peak_rss_kb']) / mb:.1f} MB; current RSS "
        f"{result['current_rss_kb'] / mb:.0f} MB)",
        f"tracemalloc peak of one more batch of {MEMORY_BATCH_SIZE}: {result['tracemalloc_batch_peak_kb']:,.0f} KB "
        f"(Python allocations only); {result['postings_per_s']:,.0f} postings/s in the child",
        f"the post function has MemorySize {result_memory_size()} MB: memory is not the constraint (single run).",
    ]
    return Section(
        key="memory",
        title=f"5. Memory of post_batch over {MEMORY_BATCHES * MEMORY_BATCH_SIZE:,} postings (single run)",
        method=(
            "child process: import posting.handlers.post, open a client and the accounts, post one warm-up batch, "
            f"read ru_maxrss; then {MEMORY_BATCHES} x post_batch(validate_batch(10 records), workers=PostWorkers) on "
            "DynamoDB Local; ru_maxrss (peak) and /proc VmRSS (current) after; tracemalloc peak over one extra batch."
        ),
        data={"result": result},
        lines=lines,
    )


def result_memory_size() -> int:
    return int(Template.load().function_setting("PostFunction", "MemorySize"))


def memory_child() -> int:
    """Runs in the child process of bench_memory; prints one JSON line."""
    import tracemalloc

    import boto3

    import posting.handlers.post  # noqa: F401 - the post function's imports are part of its memory

    workers = int(Template.load().parameters["PostWorkers"])
    client = boto3.client(
        "dynamodb",
        endpoint_url=os.environ["BENCH_DYNAMODB_ENDPOINT"],
        region_name="us-east-1",
        config=AWS_CLIENT_CONFIG,
    )
    ledger = LedgerTable(client, os.environ["BENCH_TABLE"])
    accounts = [f"acc-m-{n:04d}" for n in range(MEMORY_ACCOUNTS)]
    open_unlimited_accounts(ledger, accounts)
    rng = random.Random(SEED)

    def batch() -> list[dict[str, Any]]:
        pairs = [rng.sample(accounts, 2) for _ in range(MEMORY_BATCH_SIZE)]
        return [sqs_record(two_leg_body(posting_id(), payer, payee)) for payer, payee in pairs]

    post_batch(validate_batch(batch()), ledger, workers=workers)  # warm-up: connection pool, lazy imports
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    posted = 0
    for _ in range(MEMORY_BATCHES):
        result = post_batch(validate_batch(batch()), ledger, workers=workers)
        posted += sum(1 for item in result.items if item.outcome is not None)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    post_batch(validate_batch(batch()), ledger, workers=workers)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "postings": MEMORY_BATCHES * MEMORY_BATCH_SIZE,
                "decided": posted,
                "workers": workers,
                "baseline_peak_rss_kb": baseline,
                "peak_rss_kb": peak,
                "current_rss_kb": current_rss_kb(),
                "tracemalloc_batch_peak_kb": traced_peak / 1024,
                "postings_per_s": posted / elapsed,
            }
        )
    )
    return 0


def current_rss_kb() -> int | None:
    """Resident set size now (Linux /proc); ru_maxrss only knows the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# =================================================================================================
# 3. The whole local pipeline
# =================================================================================================

PIPELINE_POLLERS = 4  # as `posting local demo`
SATURATION_IN_FLIGHT = 400  # as `posting local run`: large enough to keep every poller busy
MODERATE_IN_FLIGHT = 10  # about one batch in flight: the pipeline's latency, not the queue's backlog
# Short, so that a record returned by the workflow comes back in seconds instead of 3 minutes.
PIPELINE_OVERRIDES = {"VisibilityTimeoutSeconds": 20}


@dataclass
class Snapshot:
    """Counters of the running stack at one moment, so that a phase reports its own share."""

    durations: dict[str, list[float]]
    batches: int
    records: int
    kept: int
    failed_executions: int
    log_bytes: int


def snapshot(stack: Any, log_path: Path) -> Snapshot:
    stats = stack.pipes[0].stats
    return Snapshot(
        durations={name: list(totals) for name, totals in stack.runtime.durations.items()},
        batches=stats.batches,
        records=stats.records,
        kept=stats.kept,
        failed_executions=stats.failed_executions,
        log_bytes=log_path.stat().st_size if log_path.exists() else 0,
    )


def run_phase(stack: Any, collector: Any, bodies: list[str], in_flight: int, first_line: int) -> dict[str, Any]:
    """Send `bodies` keeping at most `in_flight` undecided, wait for every result; what this phase did."""
    from posting_cli.local.run import Line, Pace, drain

    log_path = stack.state_dir / "logs" / "lambda.log"
    names = {function.function_name: function.logical_id.removesuffix("Function") for function in stack.functions}
    lines = [Line(number, body) for number, body in enumerate(bodies, first_line)]
    pace = Pace(stall_seconds=120, deadline=time.monotonic() + 900, in_flight=in_flight, poll_seconds=0.1)
    before = snapshot(stack, log_path)
    began = time.monotonic()
    outcomes = drain(stack.target, collector, lines, pace)
    wall = time.monotonic() - began
    after = snapshot(stack, log_path)
    latencies = [o.observed_ms - o.sent_ms for o in outcomes if o.observed_ms and o.sent_ms]
    records = after.records - before.records
    batches = after.batches - before.batches
    handlers = {}
    for function_name, (calls_after, seconds_after) in after.durations.items():
        calls = calls_after - before.durations[function_name][0]
        seconds = seconds_after - before.durations[function_name][1]
        handlers[names.get(function_name, function_name)] = {
            "invocations": int(calls),
            "seconds": round(seconds, 3),
            "ms_per_invocation": round(seconds / calls * 1000, 2) if calls else None,
            "ms_per_record": round(seconds / records * 1000, 2) if records else None,
        }
    return {
        "in_flight": in_flight,
        "requests": len(bodies),
        "wall_s": round(wall, 2),
        "decided_per_s": round(len(outcomes) / wall, 1),
        "latency_ms": {
            "p50": percentile(latencies, 0.50),
            "p95": percentile(latencies, 0.95),
            "p99": percentile(latencies, 0.99),
            "max": max(latencies, default=0),
            "samples": len(latencies),
        },
        "statuses": dict(Counter(o.status for o in outcomes)),
        "pipe": {
            "batches": batches,
            "records": records,
            "mean_batch_size": round(records / batches, 2) if batches else None,
            "records_returned_to_queue": after.kept - before.kept,
            "failed_executions": after.failed_executions - before.failed_executions,
        },
        "handlers": handlers,
        "lambda_log_bytes_per_request": round((after.log_bytes - before.log_bytes) / len(bodies)),
    }


def bench_pipeline(endpoint: Any, postings: int) -> Section:
    from posting_cli import operations
    from posting_cli.demo import Book, Traffic
    from posting_cli.local.stack import LocalStack
    from posting_cli.results import ResultCollector

    rng = random.Random(SEED)
    book = Book.seed(rng)
    traffic = Traffic(book, rng)
    template = Template.load(overrides=PIPELINE_OVERRIDES)
    phases: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="posting-bench-") as state_dir:
        began = time.monotonic()
        stack = LocalStack(template, pollers=PIPELINE_POLLERS, state_dir=Path(state_dir), dynamodb=endpoint)
        with stack:
            started_s = time.monotonic() - began
            assert stack.target is not None
            operations.open_accounts(stack.target, book.accounts)
            with ResultCollector(stack.target) as collector:
                progress(f"pipeline: warm-up (fund {sum(map(len, book.customers.values()))} customers)")
                funding = traffic.funding()
                phases["warm-up (funding)"] = run_phase(stack, collector, funding, SATURATION_IN_FLIGHT, 1)
                line = len(funding) + 1
                for phase, in_flight in (("saturation", SATURATION_IN_FLIGHT), ("moderate", MODERATE_IN_FLIGHT)):
                    progress(f"pipeline: {phase}, {postings} requests, {in_flight} in flight")
                    bodies = [traffic.next() for _ in range(postings)]
                    phases[phase] = run_phase(stack, collector, bodies, in_flight, line)
                    line += postings
            pipe_errors = list(stack.pipes[0].stats.errors)
    data = {
        "template_overrides": PIPELINE_OVERRIDES,
        "template_parameters": template.parameters,
        "pollers": PIPELINE_POLLERS,
        "stack_start_s": round(started_s, 1),
        "traffic": "posting_cli.demo Book.seed + Traffic(seed 7): fundings, then the demo's everyday mix",
        "phases": phases,
        "pipe_errors": pipe_errors,
    }
    rows = []
    for name, p in phases.items():
        latency = p["latency_ms"]
        rows.append(
            [
                name,
                p["in_flight"],
                p["requests"],
                f"{p['wall_s']:.1f}",
                f"{p['decided_per_s']:.1f}",
                f"{latency['p50']:,}",
                f"{latency['p95']:,}",
                f"{latency['p99']:,}",
                p["pipe"]["batches"],
                p["pipe"]["mean_batch_size"],
                p["pipe"]["records_returned_to_queue"],
            ]
        )
    lines = fmt_table(
        [
            "phase",
            "in flight",
            "requests",
            "wall s",
            "decided/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "batches",
            "mean batch",
            "returned",
        ],
        rows,
    )
    handler_rows = [
        [function]
        + [
            f"{phases[phase]['handlers'][function][measure] or 0:,.1f}"
            for phase in ("saturation", "moderate")
            for measure in ("ms_per_invocation", "ms_per_record")
        ]
        for function in phases["saturation"]["handlers"]
    ]
    lines += fmt_table(
        ["handler (wall, in-process)", "sat. ms/call", "sat. ms/record", "mod. ms/call", "mod. ms/record"],
        handler_rows,
    )
    for name in ("saturation", "moderate"):
        statuses = ", ".join(f"{status} {n}" for status, n in sorted(phases[name]["statuses"].items()))
        lines.append(f"{name} outcomes: {statuses}")
    lines += [
        "at saturation the latency is mostly queueing (Little's law: in flight / throughput); the moderate phase",
        "shows the pipeline's own latency.",
        f"Lambda log output at LogLevel {template.parameters['LogLevel']}: "
        f"{phases['saturation']['lambda_log_bytes_per_request']:,} bytes per request (CloudWatch Logs volume on AWS)",
        f"stack start {started_s:.1f} s; pipe errors: {len(pipe_errors)}; pollers {PIPELINE_POLLERS}; "
        f"overrides {PIPELINE_OVERRIDES}; single run per phase",
        "CAVEAT: moto (SQS, EventBridge, Step Functions' ASL interpreter) and the three handlers all run in this",
        "one Python process under one GIL, next to the load generator, on 2 shared cores; DynamoDB Local is a",
        "JVM on the same cores. These numbers locate bottlenecks here; they say little about latency on AWS.",
    ]
    return Section(
        key="pipeline",
        title=f"3. Whole local pipeline (template.yaml on DynamoDB Local + moto, {PIPELINE_POLLERS} pipe pollers)",
        method=(
            "LocalStack from template.yaml (overrides as listed); the demo's book and traffic; "
            "posting_cli.local.run.drain sends with SendMessageBatch keeping at most N requests undecided, "
            "a ResultCollector reads result events. "
            "decided/s = requests / phase wall time; latency = SQS SentTimestamp of the result event on the "
            "collector's queue minus the producer's clock before SendMessageBatch (ms), nearest rank. Handler time = "
            "LocalLambdaRuntime.durations deltas (wall clock in-process, GIL waits included); batches and records = "
            "LocalPipe.stats deltas. Single run per phase."
        ),
        data=data,
        lines=lines,
    )


# =================================================================================================
# 6. Cost per posting on AWS
# =================================================================================================

SFN_OVERHEAD_MS_PER_TASK = 25.0  # assumed: Step Functions -> Lambda invoke and state transition, per task
SFN_MEMORY_MB = 64.0  # assumed: a ~10 KB state fits the smallest 64 MB chunk


def bench_cost(sizes: dict[str, Any], pipeline: dict[str, Any]) -> Section:
    template = Template.load()
    batch_size = int(template.parameters["PipeBatchSize"])
    memory_mb = int(template.function_globals()["MemorySize"])
    prices = Prices()
    two = sizes["2-leg"]
    pipe_batch = [sqs_record(two_leg_body(posting_id(), "acc-00000001", "acc-00000002")) for _ in range(batch_size)]

    def batch_ms(phase: str) -> dict[str, float]:
        """Handler time per invocation for a full batch: a phase's time per record, times B."""
        handlers = pipeline["phases"][phase]["handlers"]
        return {function: handlers[function]["ms_per_record"] * batch_size for function in handlers}

    def inputs_with(lambda_ms: dict[str, float]) -> CostInputs:
        return CostInputs(
            batch_size=batch_size,
            message_bytes=two["message_bytes"],
            pipe_batch_bytes=len(json.dumps(pipe_batch).encode()),
            lambda_memory_mb=memory_mb,
            lambda_ms=lambda_ms,
            sfn_overhead_ms=SFN_OVERHEAD_MS_PER_TASK * len(lambda_ms),
            sfn_memory_mb=SFN_MEMORY_MB,
            write_item_bytes=[two["posting_item_bytes"], *two["account_item_bytes"], *two["entry_item_bytes"]],
            read_item_bytes=two["read_item_bytes"],
            event_bytes=two["event_bytes"],
        )

    # The saturation phase's batches were close to full, and its in-process times include GIL waits
    # behind the other pollers and moto: durations that err high. The moderate phase gives a lower bound.
    lambda_ms = batch_ms("saturation")
    inputs = inputs_with(lambda_ms)
    breakdown = cost_breakdown(inputs, prices)
    total = sum(line.usd_per_million_postings for line in breakdown)
    low_ms = batch_ms("moderate")
    low_total = sum(line.usd_per_million_postings for line in cost_breakdown(inputs_with(low_ms), prices))
    guidance = GUIDANCE_USD_PER_MONTH / GUIDANCE_REQUESTS_PER_MONTH * 1_000_000
    ten = sizes["10-leg"]
    ten_write = ten["transaction_write_units"] * prices.dynamodb_per_million_write_units
    rows = [
        [
            line.component,
            f"{line.usage_per_posting:.4g} {line.unit}",
            f"${line.usd_per_million_postings:,.3f}",
            f"{line.usd_per_million_postings / total:.1%}",
        ]
        for line in breakdown
    ]
    rows.append(["total", "", f"${total:,.2f}", ""])
    workflow_ms = sum(lambda_ms.values()) + inputs.sfn_overhead_ms
    lines = [
        f"batch B = {batch_size} (PipeBatchSize), Lambda arm64 {memory_mb} MB (Globals MemorySize)",
        f"prices: {PRICES_SOURCE}",
        f"2-leg posting: message {two['message_bytes']} B; TransactWriteItems of {two['transaction_items']} items "
        f"(posting {two['posting_item_bytes']} B, accounts {two['account_item_bytes']} B, entries "
        f"{two['entry_item_bytes']} B) = {two['transaction_write_units']} WCU; consistent BatchGetItem of "
        f"{len(two['read_item_bytes'])} accounts = {two['read_units']:g} RCU; result event {two['event_bytes']} B",
        "Lambda ms per batch of B (measured: saturation phase ms/record x B, in-process, errs high): "
        + ", ".join(f"{function} {ms:,.0f}" for function, ms in lambda_ms.items()),
        f"Step Functions: Lambda time + {SFN_OVERHEAD_MS_PER_TASK:.0f} ms per task (assumed) = {workflow_ms:,.0f} ms, "
        f"{SFN_MEMORY_MB:.0f} MB (assumed); SQS per batch: SendMessageBatch + ReceiveMessage + DeleteMessageBatch "
        "(steady load, no empty receives)",
        *fmt_table(["component", "usage per posting", "$ per million postings", "share"], rows),
        "with Lambda times from the moderate phase instead (less GIL contention, smaller batches): "
        f"${low_total:,.2f} per million ({', '.join(f'{function} {ms:,.0f} ms' for function, ms in low_ms.items())})",
        f"AWS guidance estimate: ${GUIDANCE_USD_PER_MONTH:,.0f}/month for {GUIDANCE_REQUESTS_PER_MONTH / 1e6:.0f}M "
        f"requests = ${guidance:,.1f} per million; this model: ${total:,.2f} ({total / guidance:.0%} of it)",
        f"a 10-leg posting writes {ten['transaction_items']} items = {ten['transaction_write_units']} WCU: "
        f"${ten_write:,.2f} per million for its DynamoDB writes alone",
        "assumes full batches of B: at low traffic batches are smaller (the moderate phase averaged "
        f"{pipeline['phases']['moderate']['pipe']['mean_batch_size']}) and per-batch costs grow by B / batch size.",
        "not modelled: CloudWatch Logs ingestion (see bytes per request in section 3), X-Ray traces, the event",
        "archive, DynamoDB storage and PITR backups, free tiers, rejected/duplicate requests, and conflict retries",
        "on hot accounts (see section 2's tries per posting).",
    ]
    return Section(
        key="cost",
        title="6. Cost per posting on AWS, us-east-1 (a model from first principles, not a bill)",
        method=(
            "pure arithmetic (cost_breakdown, unit-tested): item sizes by DynamoDB's documented rules from items read "
            "back from DynamoDB Local after a real 2-leg posting; transactional writes 2 WCU per started KB per item; "
            "consistent reads 1 RCU per started 4 KB per item; 64 KB chunks for SQS, Pipes and EventBridge; Express "
            "duration in 100 ms steps x 64 MB chunks; Lambda GB-s at 1 ms granularity."
        ),
        data={
            "prices": asdict(prices),
            "prices_source": PRICES_SOURCE,
            "inputs": asdict(inputs),
            "assumptions": {
                "sfn_overhead_ms_per_task": SFN_OVERHEAD_MS_PER_TASK,
                "sfn_memory_mb": SFN_MEMORY_MB,
                "lambda_ms_source": (
                    "saturation phase handler ms per record x batch size (in-process, GIL waits included)"
                ),
                "sqs": "per batch: 1 SendMessageBatch (producer), 1 ReceiveMessage (pipe), 1 DeleteMessageBatch; "
                "no empty receives",
                "pipe_batch": "B records in AWS's SQS record shape, 200-character receipt handle",
            },
            "item_sizes": sizes,
            "breakdown": [asdict(line) for line in breakdown],
            "total_usd_per_million_postings": round(total, 4),
            "total_with_moderate_phase_lambda_ms": round(low_total, 4),
            "moderate_phase_lambda_ms": low_ms,
            "guidance_usd_per_million": round(guidance, 2),
            "ten_leg_dynamodb_write_usd_per_million": round(ten_write, 4),
        },
        lines=lines,
    )


# =================================================================================================
# Machine, main
# =================================================================================================


def machine_info() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    from posting_cli.local.dynamodb_local import DYNAMODB_LOCAL_VERSION

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "git": commit or None,
        "versions": {
            package: version(package)
            for package in ("boto3", "botocore", "moto", "pydantic", "aws-lambda-powertools", "aws-xray-sdk")
        }
        | {"dynamodb-local": DYNAMODB_LOCAL_VERSION},
    }


@contextmanager
def dynamodb_local(log_dir: Path) -> Iterator[Any]:
    from posting_cli.local.dynamodb_local import attach_or_start

    with attach_or_start(log_dir=log_dir) as endpoint:
        yield endpoint


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posting_cli.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postings", type=int, default=600, help="requests per pipeline phase (default 600)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        return memory_child()

    began = time.monotonic()
    stamp = datetime.now(UTC)
    machine = machine_info()
    print(f"posting pipeline benchmark, {stamp:%Y-%m-%d %H:%M:%S} UTC")
    print(
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"load average {machine['load_average_at_start']} at start (a shared, noisy machine: re-run before quoting)"
    )
    sections: list[Section] = []

    def done(section: Section) -> None:
        sections.append(section)
        section.print()

    progress("domain")
    done(bench_domain())
    done(bench_cold_start())
    with tempfile.TemporaryDirectory(prefix="posting-bench-ddb-") as logs, dynamodb_local(Path(logs)) as endpoint:
        ledger, sizes = bench_ledger(endpoint)
        done(ledger)
        done(bench_memory(endpoint))
        pipeline = bench_pipeline(endpoint, args.postings)
        done(pipeline)
    done(bench_cost(sizes, pipeline.data))

    total_s = time.monotonic() - began
    machine["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp:%Y%m%dT%H%M%SZ}.json"
    report = {
        "started_at": stamp.isoformat(),
        "total_runtime_s": round(total_s, 1),
        "machine": machine,
        "sections": {section.key: section.to_json() for section in sections},
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\ntotal runtime {total_s:,.0f} s; load average at end {machine['load_average_at_end']}")
    print(f"results: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
