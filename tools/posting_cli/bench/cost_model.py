"""The cost model: dollars per million postings from billed units. Pure arithmetic, unit-tested."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Prices, us-east-1, as DESIGN.md states them ("as researched in 2026"; verify on the pricing pages).
PRICES_SOURCE = "DESIGN.md, 'Facts that bound the design': us-east-1 list prices as researched in 2026"
# The AWS guidance's published production estimate: about $1,811 per month for about 20 million requests.
GUIDANCE_USD_PER_MONTH = 1811.0
GUIDANCE_REQUESTS_PER_MONTH = 20_000_000

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
