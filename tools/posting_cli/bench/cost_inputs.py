"""The cost model's inputs: what each request shape writes and reads, what a batch costs, what the
template deploys. Everything here is measured (with the date and the method) or a stated assumption.

The ledger's write path decides the shapes (see `posted`, `rejected_by_ledger`, `duplicate_of`):

- a limited account (a number as `overdraft_limit`: customers, merchants) is one item, updated in
  every transaction that touches it (2 WCU) and read by the batch's one BatchGetItem;
- an unlimited account (settlement, funding, fees, FX) has no item in the transaction: each posted
  leg puts one entry in one of its lanes; it is read (its terms and status) once per batch;
- every request that reaches the ledger puts its decision item; a posted one also puts one entry
  per leg. A duplicate or a reused id runs the same transaction and is cancelled (its write units
  are paid); a rejection the ledger decides puts its decision alone, with a plain conditional Put;
- a request the validate step refuses never reaches DynamoDB.

When the write path changes, `posted` and its siblings are the one place that changes.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import random
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from posting.adapters.ledger_keys import account_partition, lane_partition
from posting_cli.bench.cost_model import (
    HOURS_PER_MONTH,
    SECONDS_PER_MONTH,
    BatchProfile,
    Deployment,
    FunctionTiming,
    Mix,
    MonthlyCost,
    Prices,
    RequestShape,
)
from posting_cli.local.template import Template, TemplateError

MEASURED_ON = "2026-12-06 on this repository's local stack (2 shared x86 cores, busy)"

# --- measured: item sizes ------------------------------------------------------------------------
# Bytes by DynamoDB's rules of the items one request of each demo shape wrote to DynamoDB Local
# (bench section 2, item_sizes.measure_stored_sizes): the decision item (its request and balances
# zlib-compressed), the entries, the account items. All are under 1 KB, so a transactional write of
# any of them is 2 WCU whatever its exact size; sizes matter for storage only.
DECISION_BYTES = {"card-payment": 509, "payout": 530, "transfer": 499, "fx": 536, "funding": 509}
REJECTION_DECISION_BYTES = 500  # assumed: a decision with its request and reason, no balances
ENTRY_BYTES = 290  # 283-301 measured
ACCOUNT_ITEM_BYTES = 300  # 278-305 measured: read 1 RCU, updated 2 WCU in a transaction
# What a lane adds to an unlimited account's line key ("ACCOUNT#<id>" -> its lane's partition).
LANE_KEY_BYTES = len(lane_partition("x", 0)) - len(account_partition("x"))
SAMPLE_UUID = uuid.UUID("5f0c1a52-8a7e-4a8e-9f55-0c7d2b1e9a10")

# --- measured: a batch and a record (bench section 7, batch_costs) ------------------------------
# ms per invocation, in-process wall time on the local stack (one pipe poller, PipeBatchSize 1 then 10,
# the demo's traffic, empty books at each fill), the straight line through fills 1 and 10: one run of
# section 7 on 2026-12-06, load average 2-3 on 2 cores (runs at load 11 that day put Post at 38-58 ms
# for one record). Upper bounds for Lambda's waiting: moto answers in this process, under its GIL.
FUNCTION_TIMINGS = {
    "Validate": FunctionTiming(fixed_ms=0.96, per_record_ms=0.16),
    "Post": FunctionTiming(fixed_ms=38.59, per_record_ms=7.41),
    "Emit": FunctionTiming(fixed_ms=9.56, per_record_ms=0.70),
}
# CPU ms per invocation, of every thread, with each handler alone in a process and the engines in
# another (bench section 5, memory.measure_handler_costs, 2026-12-06): the straight line through fills
# 1 and 10. The rest of an invocation waits on DynamoDB, EventBridge and SQS; on Lambda the CPU time
# stretches with less memory (cost_model.lambda_cpu_stretch), the waiting does not.
FUNCTION_CPU_MS = {
    "Validate": FunctionTiming(fixed_ms=0.37, per_record_ms=0.17),
    "Post": FunctionTiming(fixed_ms=2.26, per_record_ms=3.32),
    "Emit": FunctionTiming(fixed_ms=2.31, per_record_ms=0.08),
}
# Peak resident set of one process running all three handlers over the demo's traffic (same run,
# /proc VmHWM): one function holds one handler, so each needs less. Lambda's runtime adds its own,
# not measurable here (a function's REPORT line, with SystemLogLevel INFO, shows Max Memory Used).
HANDLERS_PEAK_RSS_MB = 67.0
LAMBDA_RUNTIME_MB = 30.0  # assumed: the runtime interface client and its buffers
MEMORY_SIZES = (128, 256, 512, 1024)  # the sizes the template chooses among
MEMORY_HEADROOM = 2.0  # memory at least twice the peak (payloads vary; a batch of ten 8 KB requests)
# Lambda log bytes per request (LogLevel INFO; the same runs): Post's summary line and each handler's
# metric line are written once per batch; validation refusals (one INFO line each) and rejection-reason
# metric lines grow with the records. 701 at fill 1 and 165 at fill 10, the metric lines holding only
# what the dashboard and alarms read, without zeros; 1,462 and 223 with every metric, zeros included
# (the handlers as they were, same traffic, same day).
LOG_BYTES_PER_BATCH = 595.6
LOG_BYTES_PER_RECORD = 105.4
LOG_BYTES_PER_BATCH_EVERY_METRIC = 1_376.7
LOG_BYTES_PER_RECORD_EVERY_METRIC = 85.3
# The batch-fill simulation against the local stack (the `make bench` run of 2026-12-06 04:44 UTC,
# load 2-3): 30 s of Poisson arrivals at 7.6/s, 4 pollers, no window; the simulation run with that
# run's own mean execution time.
LOCAL_FILL_CHECK = {
    "SendMessage": {"measured": 1.0, "simulated": 1.001, "execution_ms": 85},
    "SendMessageBatch, 1 s flush": {"measured": 6.382, "simulated": 6.577, "execution_ms": 153},
}

# --- measured: cold start (bench section 4): import + first clients, ms ---------------------------
# The `make bench` run of 2026-12-06 04:44 UTC, section 2 (on one x86 core; the sweeper, not measured
# there, imports what Post does).
INIT_MS = {"Validate": 175.0, "Post": 386.0, "Emit": 366.0, "Sweep": 386.0}

# --- assumed (not measurable without an account) ------------------------------------------------
SFN_OVERHEAD_MS_PER_TASK = 25.0  # Step Functions -> Lambda invoke and state transition, per task
SFN_MEMORY_MB = 64.0  # a batch's state (under 256 KB) fits the smallest 64 MB chunk
PIPE_POLLERS = 5  # as Lambda's SQS event source mapping starts (Pipes documents none of its own)
PIPE_POLLERS_LOW = 2  # what Lambda's mapping may scale down to on a quiet queue
SQS_HANDOVER_MS = 30.0  # a message's enqueue -> the pipe's poll returns it -> the workflow starts
RESULT_DELIVERY_MS = 250.0  # PutEvents -> a consumer's queue holds the result event
PLATFORM_LOG_BYTES_PER_INVOCATION = 430.0  # START, END, REPORT (+ XRAY) text lines and their 26 B each
ENVIRONMENT_LIFETIME_HOURS = 2.0  # how long Lambda keeps a busy execution environment
TRAIL_EVENT_STORED_BYTES = 150.0  # one data event (about 1.5 KB of JSON) gzipped in the trail's bucket
KMS_REQUESTS_PER_MONTH = 100_000  # SQS, DynamoDB, EventBridge, Logs and S3 cache their data keys
SWEEP_MS_PER_RUN = 500.0  # one Query per hold bucket and per lane, one Put per lane with entries
SWEEP_LOG_BYTES_PER_RUN = 1_000.0
CLOUDTRAIL_LOG_RETENTION_MONTHS = 84  # the trail bucket keeps 2,557 days (its lifecycle rule)
# Target tracking on DynamoDB creates its own alarms for each scalable target: two on utilisation
# (scale out, scale in) and two on provisioned capacity (as the console lists them; verify with
# DescribeAlarms). They are billed as standard alarms.
AUTOSCALING_ALARMS_PER_TARGET = 4

POINT_FLAT = "20M/month"
POINT_FULL = "1111/s"
FLAT_POSTINGS_PER_MONTH = 20_000_000
FULL_POSTINGS_PER_SECOND = 1_111.0


@dataclass(frozen=True)
class Leg:
    """One leg as the write path sees it: its account and the account's class."""

    account: str  # a name for shared (unlimited) accounts; "customer", "merchant" for private ones
    limited: bool


CUSTOMER = Leg("customer", limited=True)
# The demo's posted kinds and their legs (posting_cli.demo.Traffic).
KIND_LEGS: dict[str, tuple[Leg, ...]] = {
    "card-payment": (CUSTOMER, Leg("settlement-EUR", limited=False)),
    "payout": (Leg("settlement-EUR", False), Leg("merchant", True), Leg("fees-EUR", False)),
    "transfer": (CUSTOMER, Leg("customer-2", limited=True)),
    "fx": (CUSTOMER, Leg("fx-EUR", False), Leg("fx-USD", False), Leg("customer-2", limited=True)),
    "funding": (Leg("funding-EUR", False), CUSTOMER),
}
POSTED_KINDS = ("card-payment", "payout", "transfer", "fx", "funding")
# Requests the ledger rejects after reading: (legs, extra reads, reason). An unknown account is read
# again before the rejection (a missing item is never remembered).
LEDGER_REJECTIONS: dict[str, tuple[tuple[Leg, ...], int, str]] = {
    "overdraft": ((CUSTOMER, Leg("customer-2", True)), 0, "INSUFFICIENT_FUNDS"),
    "unknown-account": ((CUSTOMER, Leg("cust-9999", True)), 2, "ACCOUNT_NOT_FOUND"),
    "frozen": ((CUSTOMER, Leg("cust-frozen", True)), 0, "ACCOUNT_NOT_OPEN"),
    "currency-mismatch": ((CUSTOMER, Leg("customer-2", True)), 0, "CURRENCY_MISMATCH"),
}
VALIDATION_REFUSALS = {"unbalanced": "UNBALANCED", "malformed": "INVALID_REQUEST"}


# --- result events, sized with the published event models -----------------------------------------
def event_envelope_bytes(*, posted: bool, limited_accounts: int, reason: str | None = None) -> int:
    """The result event as the audit log group and the archive keep it (envelope included)."""
    from posting.domain.events import EVENT_SOURCE, PostingPosted, PostingRejected

    common = {
        "event_id": str(SAMPLE_UUID),
        "posting_id": "demo-card-payment-000123",
        "decided_at": "2026-11-27T10:00:00.123Z",
        "message_id": str(SAMPLE_UUID),
    }
    if posted:
        balance = {"currency": "EUR", "balance": 1_234_567, "version": 1_234, "posted": 1_234_567}
        balances = [{"account_id": f"cust-{n:04d}", **balance} for n in range(limited_accounts)]
        model: Any = PostingPosted
        detail = model.model_validate(
            {**common, "status": "POSTED", "posting_status": "POSTED", "balances": balances}
        ).model_dump(mode="json")
    else:
        model = PostingRejected
        detail = model.model_validate(
            {
                **common,
                "status": "REJECTED",
                "reason": reason,
                "detail": "the request was refused: see reason (fields named, values never echoed)",
                "posting_status": "REJECTED",
                "balances": [],
            }
        ).model_dump(mode="json")
    envelope = {
        "version": "0",
        "id": str(SAMPLE_UUID),
        "detail-type": model.detail_type,
        "source": EVENT_SOURCE,
        "account": "123456789012",
        "time": "2026-11-27T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }
    return len(json.dumps(envelope, separators=(",", ":")).encode())


# --- shapes under the write path ------------------------------------------------------------------
def posted(kind: str, legs: Sequence[Leg], message_bytes: int, decision_bytes: int | None = None) -> RequestShape:
    """A request that posts: decision + one update per limited account + one entry per leg, in one transaction."""
    limited = sorted({leg.account for leg in legs if leg.limited})
    unlimited = [leg.account for leg in legs if not leg.limited]
    decision = decision_bytes or DECISION_BYTES.get(kind, DECISION_BYTES["card-payment"])
    entries = [ENTRY_BYTES if leg.limited else ENTRY_BYTES + LANE_KEY_BYTES for leg in legs]
    return RequestShape(
        name=kind,
        message_bytes=message_bytes,
        event_envelope_bytes=event_envelope_bytes(posted=True, limited_accounts=len(limited)),
        transaction_item_bytes=(decision, *(ACCOUNT_ITEM_BYTES for _ in limited), *entries),
        own_reads=float(len(limited)),
        shared_accounts=tuple(sorted(set(unlimited))),
        stored_item_bytes=(decision, *entries),
        lane_entries=len(unlimited),
        lane_entry_bytes=ENTRY_BYTES + LANE_KEY_BYTES,
        table_calls=1,
    )


def rejected_by_ledger(
    kind: str, legs: Sequence[Leg], message_bytes: int, *, extra_reads: int = 0, reason: str
) -> RequestShape:
    """A request the ledger rejects from the batch's read: its decision alone, a plain conditional Put."""
    limited = {leg.account for leg in legs if leg.limited}
    return RequestShape(
        name=kind,
        message_bytes=message_bytes,
        event_envelope_bytes=event_envelope_bytes(posted=False, limited_accounts=0, reason=reason),
        plain_write_item_bytes=(REJECTION_DECISION_BYTES,),
        own_reads=float(len(limited) + extra_reads),
        shared_accounts=tuple(sorted({leg.account for leg in legs if not leg.limited})),
        stored_item_bytes=(REJECTION_DECISION_BYTES,),
        table_calls=1 + (1 if extra_reads else 0),
    )


def refused_by_validation(kind: str, message_bytes: int, reason: str) -> RequestShape:
    """A request the validate step refuses for its content: no DynamoDB call, one result event."""
    return RequestShape(
        name=kind,
        message_bytes=message_bytes,
        event_envelope_bytes=event_envelope_bytes(posted=False, limited_accounts=0, reason=reason),
        reaches_ledger=False,
    )


def duplicate_of(original: RequestShape, *, reused_id: bool = False) -> RequestShape:
    """The same posting_id again. Posted before: its transaction runs and is cancelled by the decision's
    condition (write units paid, nothing stored). Rejected before: the rejection's Put fails its
    condition (1 WCU). Refused by validation: refused again, no DynamoDB call."""
    name = f"{'reused id' if reused_id else 'duplicate'} of {original.name}"
    event = original.event_envelope_bytes
    if reused_id and original.transaction_item_bytes:
        event = event_envelope_bytes(posted=False, limited_accounts=0, reason="IDEMPOTENCY_CONFLICT")
    if not original.reaches_ledger:
        return RequestShape(
            name=name, message_bytes=original.message_bytes, event_envelope_bytes=event, reaches_ledger=False
        )
    return RequestShape(
        name=name,
        message_bytes=original.message_bytes,
        event_envelope_bytes=event,
        transaction_item_bytes=original.transaction_item_bytes,
        transaction_cancelled=bool(original.transaction_item_bytes),
        plain_write_item_bytes=original.plain_write_item_bytes,
        own_reads=original.own_reads,
        shared_accounts=original.shared_accounts,
        table_calls=original.table_calls,
    )


def base_shapes(message_bytes: Mapping[str, int]) -> dict[str, RequestShape]:
    """Every first-time kind of the demo's traffic as a shape, by kind."""
    shapes: dict[str, RequestShape] = {}
    for kind in POSTED_KINDS:
        shapes[kind] = posted(kind, KIND_LEGS[kind], message_bytes.get(kind, 330))
    for kind, (legs, extra, reason) in LEDGER_REJECTIONS.items():
        shapes[kind] = rejected_by_ledger(kind, legs, message_bytes.get(kind, 330), extra_reads=extra, reason=reason)
    for kind, reason in VALIDATION_REFUSALS.items():
        shapes[kind] = refused_by_validation(kind, message_bytes.get(kind, 200), reason)
    return shapes


def spread_mix() -> Mix:
    """2-leg transfers between customers, every account distinct: two limited accounts per posting."""
    return Mix.of("spread", [(1.0, posted("transfer", KIND_LEGS["transfer"], 314))])


def hot_mix() -> Mix:
    """2-leg card payments into one unlimited settlement account (lanes): every posting touches it."""
    return Mix.of("hot", [(1.0, posted("card-payment", KIND_LEGS["card-payment"], 325))])


_LABEL = re.compile(r"^demo-(?P<kind>[a-z-]+)-\d{6}$")


def classify_demo_traffic(samples: int = 10_000, seed: int = 7) -> tuple[Counter[str], dict[str, int]]:
    """Draw the demo's everyday traffic (posting_cli.demo.Traffic, holds off, as the bench sends it) and
    count each request as it reaches the pipeline: first-time kinds, duplicates of a kind (the exact body
    again) and reused ids of a kind (same posting_id, other content). Also the mean body bytes per kind."""
    from posting_cli.demo import Book, Traffic

    rng = random.Random(seed)
    traffic = Traffic(Book.seed(rng), rng)
    counts: Counter[str] = Counter()
    body_bytes: Counter[str] = Counter()
    per_kind: Counter[str] = Counter()
    seen: set[str] = set()
    kind_of: dict[str, str] = {}
    for _ in range(samples):
        body = traffic.next()
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        posting_id = request.get("posting_id") if isinstance(request, dict) else None
        match = _LABEL.match(posting_id) if isinstance(posting_id, str) else None
        if match is None:
            label = kind = "malformed"
        elif body in seen:
            kind = kind_of[match.string]
            label = f"duplicate:{kind}"
        elif match.string in kind_of:
            kind = kind_of[match.string]
            label = f"reused:{kind}"
        else:
            label = kind = match["kind"]
            seen.add(body)
            kind_of[match.string] = kind
        counts[label] += 1
        body_bytes[kind] += len(body.encode())
        per_kind[kind] += 1
    mean_bytes = {kind: round(body_bytes[kind] / n) for kind, n in per_kind.items()}
    return counts, mean_bytes


def demo_mix(samples: int = 10_000, seed: int = 7) -> Mix:
    """The demo's everyday traffic priced from its real shapes: each kind at its drawn share."""
    counts, mean_bytes = classify_demo_traffic(samples, seed)
    shapes = base_shapes(mean_bytes)
    weighted: list[tuple[float, RequestShape]] = []
    for label, count in sorted(counts.items()):
        if label.startswith(("duplicate:", "reused:")):
            how, kind = label.split(":")
            weighted.append((count, duplicate_of(shapes[kind], reused_id=how == "reused")))
        else:
            weighted.append((count, shapes[label]))
    return Mix.of("demo", weighted)


# --- the template's settings ----------------------------------------------------------------------
def _resolved(template: Template, node: Any) -> Any:
    from posting_cli.local.template import Resolver

    try:
        return Resolver(template).resolve(node)
    except TemplateError:
        return node


def deployment_from_template(template: Template, *, provisioned_utilisation: float | None = None) -> Deployment:
    """The settings of template.yaml that change the bill."""
    functions = [
        logical_id
        for logical_id in template.resources_of_type("AWS::Serverless::Function")
        if logical_id.removesuffix("Function") in FUNCTION_TIMINGS
    ]
    memory = int(template.function_setting(functions[0], "MemorySize")) if functions else 512
    quiet_platform = all(_platform_logs_off(template, logical_id) for logical_id in functions)
    trail = _trail_selectors(template)
    reservoir, rate = _sampling_rule(template)
    archive = next(iter(template.resources_of_type("AWS::Events::Archive").values()), {})
    archive_days = float(archive.get("Properties", {}).get("RetentionDays", 0) or 0)
    return Deployment(
        lambda_memory_mb=memory,
        batch_size=int(template.parameters["PipeBatchSize"]),
        batching_window_s=float(template.parameters["PipeBatchingWindowSeconds"]),
        platform_log_bytes_per_invocation=0.0 if quiet_platform else PLATFORM_LOG_BYTES_PER_INVOCATION,
        audit_log_infrequent_access=_audit_log_class(template) == "INFREQUENT_ACCESS",
        log_retention_months=int(template.parameters["LogRetentionDays"]) / 30.44,
        archive_retention_months=archive_days / 30.44,
        tracing=str(template.function_globals().get("Tracing", "PassThrough")) == "Active",
        xray_reservoir_per_second=reservoir,
        xray_fixed_rate=rate,
        trail_records_data_events=trail["on"],
        trail_excludes_pipeline_roles=trail["excludes_roles"],
        trail_records_lambda_invokes=trail["lambda"],
        trail_event_stored_bytes=TRAIL_EVENT_STORED_BYTES,
        provisioned_utilisation=provisioned_utilisation if provisioned_utilisation else _provisioned(template),
    )


def _platform_logs_off(template: Template, logical_id: str) -> bool:
    config = _resolved(template, template.function_setting(logical_id, "LoggingConfig") or {})
    return config.get("LogFormat") == "JSON" and config.get("SystemLogLevel") == "WARN"


def _audit_log_class(template: Template) -> str:
    rule = next(iter(template.resources_of_type("AWS::Events::Rule").values()), {})
    for target in rule.get("Properties", {}).get("Targets", []):
        arn = json.dumps(target.get("Arn"))
        for logical_id, group in template.resources_of_type("AWS::Logs::LogGroup").items():
            if logical_id in arn:
                return str(_resolved(template, group.get("Properties", {}).get("LogGroupClass", "STANDARD")))
    return "STANDARD"


def _trail_selectors(template: Template) -> dict[str, bool]:
    trails = [
        resource
        for logical_id, resource in template.resources_of_type("AWS::CloudTrail::Trail").items()
        if template.is_created(logical_id)
    ]
    selectors = [s for trail in trails for s in trail.get("Properties", {}).get("AdvancedEventSelectors", [])]
    data = [s for s in selectors if "Data" in _field(s, "eventCategory").get("Equals", [])]
    excludes = bool(data) and all(
        any(
            f.get("Field") == "userIdentity.arn" and ("NotStartsWith" in f or "NotEquals" in f)
            for f in s["FieldSelectors"]
        )
        for s in data
    )
    lambda_invokes = any("AWS::Lambda::Function" in _field(s, "resources.type").get("Equals", []) for s in data)
    return {"on": bool(data), "excludes_roles": excludes, "lambda": lambda_invokes}


def _field(selector: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next((f for f in selector.get("FieldSelectors", []) if f.get("Field") == name), {})


def _sampling_rule(template: Template) -> tuple[float, float]:
    from posting_cli.bench.cost_model import XRAY_DEFAULT_FIXED_RATE, XRAY_DEFAULT_RESERVOIR_PER_SECOND

    rules = template.resources_of_type("AWS::XRay::SamplingRule")
    for resource in rules.values():
        rule = _resolved(template, resource.get("Properties", {}).get("SamplingRule", {}))
        return float(rule.get("ReservoirSize", 0)), float(rule.get("FixedRate", 0))
    return XRAY_DEFAULT_RESERVOIR_PER_SECOND, XRAY_DEFAULT_FIXED_RATE


def _provisioned(template: Template) -> float | None:
    table = template.properties("LedgerTable")
    mode = _resolved(template, table.get("BillingMode", "PAY_PER_REQUEST"))
    return provisioned_target(template) if mode == "PROVISIONED" else None


def provisioned_target(template: Template) -> float:
    """The utilisation auto scaling keeps provisioned capacity at (ProvisionedTargetUtilization, %)."""
    return float(template.parameters["ProvisionedTargetUtilization"]) / 100


def with_capacity_mode(template: Template, *, provisioned: bool) -> Template:
    """The template with CapacityMode set: what the stack deploys in that mode (alarms, targets)."""
    mode = "PROVISIONED" if provisioned else "ON_DEMAND"
    return dataclasses.replace(template, parameters={**template.parameters, "CapacityMode": mode})


def scalable_targets(template: Template) -> int:
    """The table's and its indexes' scaled dimensions with provisioned capacity (reads and writes each)."""
    return len(template.resources_of_type("AWS::ApplicationAutoScaling::ScalableTarget"))


def index_minimum_units(template: Template) -> tuple[float, float]:
    """(read, write) units the indexes keep at least when provisioned, all of them together."""
    table = template.properties("LedgerTable")
    provisioned = with_capacity_mode(template, provisioned=True)
    reads = writes = 0.0
    for index in _resolved(provisioned, table.get("GlobalSecondaryIndexes", [])):
        throughput = index.get("ProvisionedThroughput") or {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
        reads += float(throughput["ReadCapacityUnits"])
        writes += float(throughput["WriteCapacityUnits"])
    return reads, writes


# --- what the handlers and the template deploy that costs by the month ---------------------------
HANDLERS_DIR = Path(__file__).resolve().parents[3] / "src" / "posting" / "handlers"


@cache
def custom_metrics() -> dict[str, int]:
    """The custom metrics the handlers emit, each with how many dimension values it takes: read from the
    handlers' source (add_metric / single_metric names, count's keywords); `Rejected` takes one per
    reason code."""
    from posting.domain.outcomes import Reason

    names: dict[str, int] = {}
    for path in sorted(HANDLERS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            called = getattr(node.func, "attr", getattr(node.func, "id", None))
            if called == "count":
                names.update({k.arg: 1 for k in node.keywords if k.arg})
            if called not in ("add_metric", "single_metric"):
                continue
            name = next((k.value for k in node.keywords if k.arg == "name"), None)
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                per_reason = getattr(node.func, "id", None) == "single_metric"
                names[name.value] = len(Reason) if per_reason else 1
    return names


@cache
def unlimited_lanes() -> int:
    """Lanes of the demo book's unlimited accounts (their balance_shards, or the default)."""
    from posting_cli.demo import Book

    book = Book.seed(random.Random(0))
    return sum(account.lanes for account in book.accounts if account.is_unlimited)


def fixed_monthly_costs(template: Template, deployment: Deployment, prices: Prices) -> tuple[MonthlyCost, ...]:
    """What the stack costs a month whatever it carries: metrics, alarms, dashboards, the key, the sweeper."""
    from posting.adapters.ledger_keys import OPEN_HOLD_BUCKETS

    # The whole stack: its nested applications' resources (the alarms, the dashboard) are billed too.
    deployed = with_capacity_mode(template, provisioned=deployment.provisioned_utilisation is not None).flattened()

    def created(resource_type: str) -> int:
        return sum(1 for logical_id in deployed.resources_of_type(resource_type) if deployed.is_created(logical_id))

    metrics = sum(custom_metrics().values())
    alarms = created("AWS::CloudWatch::Alarm")
    if deployment.provisioned_utilisation is not None:
        alarms += AUTOSCALING_ALARMS_PER_TARGET * scalable_targets(deployed)
    dashboards = created("AWS::CloudWatch::Dashboard")
    keys = created("AWS::KMS::Key")
    runs = SECONDS_PER_MONTH / 60  # the sweeper runs once a minute
    lanes = unlimited_lanes()
    sweep_gb_s = runs * math.ceil(SWEEP_MS_PER_RUN) / 1000 * deployment.lambda_memory_mb / 1024
    platform = 0.0 if deployment.platform_log_bytes_per_invocation == 0 else PLATFORM_LOG_BYTES_PER_INVOCATION
    sweep_log_gb = runs * (SWEEP_LOG_BYTES_PER_RUN + platform) / 1024**3
    # A Query per lane (1 RCU at least) and per hold bucket (eventually consistent, 0.5), a
    # checkpoint Put per lane with new entries (1 WCU): every lane has some at these rates.
    sweep_rcu = runs * (lanes + 0.5 * OPEN_HOLD_BUCKETS)
    sweep_wcu = runs * lanes
    if deployment.provisioned_utilisation is None:
        ddb = (
            sweep_rcu * prices.dynamodb_per_million_read_units / 1e6
            + sweep_wcu * prices.dynamodb_per_million_write_units / 1e6
        )
    else:
        ddb = (
            (sweep_rcu * prices.dynamodb_rcu_hour + sweep_wcu * prices.dynamodb_wcu_hour)
            / 3600
            / deployment.provisioned_utilisation
        )
    sweep_calls = runs * (2 * lanes + OPEN_HOLD_BUCKETS)
    trail_events = 0.0
    if deployment.trail_records_data_events and not deployment.trail_excludes_pipeline_roles:
        trail_events = sweep_calls + (runs if deployment.trail_records_lambda_invokes else 0)
    costs = [
        MonthlyCost("custom metrics", metrics, "metrics", metrics * prices.cloudwatch_metric_per_month),
        MonthlyCost("alarms", alarms, "alarms", alarms * prices.cloudwatch_alarm_per_month),
        MonthlyCost("dashboards", dashboards, "dashboards", dashboards * prices.cloudwatch_dashboard_per_month),
        MonthlyCost("KMS key", keys, "keys", keys * prices.kms_key_per_month),
        MonthlyCost(
            "KMS requests (data keys cached)",
            KMS_REQUESTS_PER_MONTH,
            "requests",
            KMS_REQUESTS_PER_MONTH / 10_000 * prices.kms_per_10k_requests,
        ),
        MonthlyCost(
            "sweeper: schedule, Lambda requests and duration",
            runs,
            "runs",
            runs * (prices.scheduler_per_million_invocations + prices.lambda_arm_per_million_requests) / 1e6
            + sweep_gb_s * prices.lambda_arm_per_gb_second,
        ),
        MonthlyCost(
            f"sweeper: DynamoDB ({lanes} lanes, {OPEN_HOLD_BUCKETS} hold buckets, checkpoints)",
            sweep_calls,
            "calls",
            ddb,
        ),
        MonthlyCost("sweeper: logs", sweep_log_gb, "GB", sweep_log_gb * prices.cloudwatch_logs_ingest_per_gb),
        # The schedule starts no trace: Lambda samples the sweeper with X-Ray's default rule, whose
        # reservoir (one a second) takes every run.
        MonthlyCost(
            "sweeper: X-Ray traces",
            runs if deployment.tracing else 0,
            "traces",
            (runs if deployment.tracing else 0) * prices.xray_per_million_traces_recorded / 1e6,
        ),
        MonthlyCost(
            "sweeper: CloudTrail data events",
            trail_events,
            "events",
            trail_events * prices.cloudtrail_per_million_data_events / 1e6,
        ),
    ]
    if deployment.provisioned_utilisation is not None:
        # The sparse indexes keep their own minimum capacity all month (their traffic is small).
        reads, writes = index_minimum_units(template)
        costs.append(
            MonthlyCost(
                "indexes' minimum capacity (provisioned)",
                reads + writes,
                "units",
                (writes * prices.dynamodb_wcu_hour + reads * prices.dynamodb_rcu_hour) * HOURS_PER_MONTH,
            )
        )
    return tuple(costs)


def batch_profile(
    functions: Mapping[str, FunctionTiming] | None = None,
    log_bytes_per_batch: float = LOG_BYTES_PER_BATCH,
    log_bytes_per_record: float = LOG_BYTES_PER_RECORD,
    cpu: Mapping[str, FunctionTiming] | None = None,
    memory_mb: int = 512,
) -> BatchProfile:
    return BatchProfile(
        functions=dict(functions or FUNCTION_TIMINGS),
        log_bytes_per_batch=log_bytes_per_batch,
        log_bytes_per_record=log_bytes_per_record,
        sfn_overhead_ms_per_task=SFN_OVERHEAD_MS_PER_TASK,
        sfn_memory_mb=SFN_MEMORY_MB,
        cpu=dict(cpu or FUNCTION_CPU_MS),
        memory_mb=memory_mb,
    )


def workflow_functions(template: Template) -> set[str]:
    """The functions the state machine invokes per batch, by the names the model uses (logical id without
    "Function"): those its DefinitionSubstitutions reference with GetAtt. The sweeper is scheduled apart."""
    (state_machine,) = template.resources_of_type("AWS::Serverless::StateMachine").values()
    substitutions = state_machine["Properties"]["DefinitionSubstitutions"].values()
    targets = [value["Fn::GetAtt"] for value in substitutions if isinstance(value, dict) and "Fn::GetAtt" in value]
    # !GetAtt X.Arn loads as "X.Arn" or ["X", "Arn"], depending on the loader.
    return {(t if isinstance(t, list) else t.split("."))[0].removesuffix("Function") for t in targets}
