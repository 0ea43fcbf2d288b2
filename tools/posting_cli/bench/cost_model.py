"""The cost model: dollars per million postings from billed units. Pure arithmetic, unit-tested."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Prices, us-east-1, as researched in 2026 (verify on the AWS pricing pages): the Prices below.
PRICES_SOURCE = "us-east-1 list prices as researched in 2026 (cost_model.Prices; verify on the AWS pricing pages)"
# The AWS guidance's published production estimate: about $1,811 per month for about 20 million requests.
GUIDANCE_USD_PER_MONTH = 1811.0
GUIDANCE_REQUESTS_PER_MONTH = 20_000_000

KB = 1024
CHUNK_64KB = 64 * KB  # SQS, Pipes and EventBridge bill each 64 KB chunk of a payload as one request/event
WRITE_UNIT_BYTES = 1 * KB  # one write request unit: a standard write of up to 1 KB
READ_UNIT_BYTES = 4 * KB  # one read request unit: a strongly consistent read of up to 4 KB
SFN_BILLING_STEP_MS = 100  # Step Functions Express: duration rounded up to 100 ms...
SFN_MEMORY_CHUNK_MB = 64  # ...and memory to 64 MB chunks
GB = 1024**3
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # storage bills 100 bytes of index overhead per item
SECONDS_PER_MONTH = 30.44 * 86_400
XRAY_RESERVOIR_PER_SECOND = 1.0  # X-Ray's default sampling rule: the first request each second...
XRAY_FIXED_RATE = 0.05  # ...and 5% of the rest


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
    # Beyond the request path (list prices, us-east-1, as published in 2026; no free tiers):
    cloudwatch_logs_ingest_per_gb: float = 0.50  # Lambda logs and the audit rule's log group alike
    cloudwatch_logs_storage_per_gb_month: float = 0.03
    eventbridge_archive_ingest_per_gb: float = 0.10
    eventbridge_archive_storage_per_gb_month: float = 0.023
    xray_per_million_traces_recorded: float = 5.00
    dynamodb_storage_per_gb_month: float = 0.25
    dynamodb_pitr_per_gb_month: float = 0.20


def write_units(item_bytes: int, *, transactional: bool) -> int:
    """Write request units for one item: per started KB, doubled inside a transaction."""
    units = max(1, math.ceil(item_bytes / WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


def read_units(item_bytes: int, *, consistent: bool) -> float:
    """Read request units for one item (BatchGetItem rounds each item separately): per started 4 KB."""
    units = max(1, math.ceil(item_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def chunks_64kb(payload_bytes: float) -> int:
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

    batch_size: float  # mean records per workflow execution (PipeBatchSize at saturation; see mean_batch_fill)
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
    sqs_other_requests: float = 1
    # Contention and the traffic mix: transactions tried per posting (reads and writes repeat), and
    # what a request that is not posted (rejected, duplicate) costs instead of a posting's transaction.
    transaction_attempts: float = 1.0
    posted_fraction: float = 1.0
    not_posted_write_units: float = 0.0
    not_posted_read_units: float = 0.0
    # Around the request path; zero means "not modelled" (the unit tests of the core lines rely on it).
    lambda_log_bytes_per_posting: float = 0.0  # what the handlers log, measured at the template's LogLevel
    platform_log_bytes_per_invocation: float = 0.0  # START, END and REPORT lines Lambda writes itself
    log_retention_months: float = 1.0
    audit_log_bytes_per_posting: float = 0.0  # the audit rule's copy of each result event (envelope included)
    archive_bytes_per_posting: float = 0.0  # the event archive's copy of each result event
    archive_retention_months: float = 0.0
    traced_fraction: float = 0.0  # executions X-Ray records (see xray_traced_fraction)
    stored_bytes_per_posting: float = 0.0  # items a posting leaves in the table (overhead included)
    init_gb_seconds_per_posting: float = 0.0  # billed INIT phases, spread over the postings


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
    posted, others = inputs.posted_fraction, 1 - inputs.posted_fraction
    wcu: float = sum(write_units(size, transactional=True) for size in inputs.write_item_bytes)
    wcu = posted * inputs.transaction_attempts * wcu + others * inputs.not_posted_write_units
    add("DynamoDB writes", wcu, "write units", prices.dynamodb_per_million_write_units / per_million)
    rcu = sum(read_units(size, consistent=True) for size in inputs.read_item_bytes)
    rcu = posted * inputs.transaction_attempts * rcu + others * inputs.not_posted_read_units
    add("DynamoDB reads", rcu, "read units", prices.dynamodb_per_million_read_units / per_million)
    add(
        "EventBridge events",
        chunks_64kb(inputs.event_bytes),
        "events",
        prices.eventbridge_per_million_events / per_million,
    )

    def add_optional(component: str, per_posting: float, unit: str, price_per_unit: float) -> None:
        if per_posting:
            add(component, per_posting, unit, price_per_unit)

    log_gb = (
        inputs.lambda_log_bytes_per_posting + inputs.platform_log_bytes_per_invocation * len(inputs.lambda_ms) / b
    ) / GB
    add_optional("CloudWatch Logs, Lambda (ingest)", log_gb, "GB", prices.cloudwatch_logs_ingest_per_gb)
    audit_gb = inputs.audit_log_bytes_per_posting / GB
    add_optional("CloudWatch Logs, audit copy (ingest)", audit_gb, "GB", prices.cloudwatch_logs_ingest_per_gb)
    add_optional(
        "CloudWatch Logs storage (retention)",
        (log_gb + audit_gb) * inputs.log_retention_months,
        "GB-months",
        prices.cloudwatch_logs_storage_per_gb_month,
    )
    archive_gb = inputs.archive_bytes_per_posting / GB
    add_optional("Event archive (ingest)", archive_gb, "GB", prices.eventbridge_archive_ingest_per_gb)
    add_optional(
        "Event archive storage (retention)",
        archive_gb * inputs.archive_retention_months,
        "GB-months",
        prices.eventbridge_archive_storage_per_gb_month,
    )
    add_optional(
        "X-Ray traces", inputs.traced_fraction / b, "traces", prices.xray_per_million_traces_recorded / per_million
    )
    stored_gb = inputs.stored_bytes_per_posting / GB
    add_optional(
        "DynamoDB storage + PITR (each month kept)",
        stored_gb,
        "GB-months",
        prices.dynamodb_storage_per_gb_month + prices.dynamodb_pitr_per_gb_month,
    )
    add_optional("Lambda INIT (billed)", inputs.init_gb_seconds_per_posting, "GB-s", prices.lambda_arm_per_gb_second)
    return lines


def total_usd(lines: Sequence[CostLine]) -> float:
    return sum(line.usd_per_million_postings for line in lines)


def mean_batch_fill(
    postings_per_second: float, *, pollers: int, cycle_seconds: float, window_seconds: float, batch_size: int
) -> float:
    """Mean records per execution the pipe hands over at a steady arrival rate (an approximation).

    Each of `pollers` concurrent pollers receives what arrived for it while it was busy (REQUEST_RESPONSE:
    a poller waits for its workflow, `cycle_seconds`) or waiting (`window_seconds`), plus the record
    that ends its long poll; never more than `batch_size`.
    """
    waiting = postings_per_second * (cycle_seconds + window_seconds) / pollers
    return min(float(batch_size), 1.0 + waiting)


def xray_traced_fraction(executions_per_second: float) -> float:
    """Share of executions X-Ray's default rule records: 1 per second, then 5% of the rest."""
    if executions_per_second <= 0:
        return 0.0
    reservoir = min(executions_per_second, XRAY_RESERVOIR_PER_SECOND)
    return (reservoir + XRAY_FIXED_RATE * (executions_per_second - reservoir)) / executions_per_second


def stored_bytes(item_bytes: Sequence[int]) -> int:
    """Bytes the items cost in storage: their size plus DynamoDB's per-item overhead."""
    return sum(size + DYNAMODB_ITEM_OVERHEAD_BYTES for size in item_bytes)
