"""The cost model: dollars per million postings from billed units. Pure arithmetic, unit-tested.

Three kinds of input, each explicit:

- `RequestShape`: what one request of a shape writes and reads (items and their sizes, write and
  read units, DynamoDB calls, its message and result event). The ledger's write path decides these.
- `BatchProfile`: what one workflow execution costs whatever it carries (fixed Lambda time and log
  bytes per batch) and what each record adds (per-record time and bytes). Measured at two fills.
- `Deployment` and `OperatingPoint`: the template's settings (trail selectors, tracing, log format,
  capacity mode, retention) and the traffic (postings per second, batch fill, producer calls).

`cost_lines` turns them into one `CostLine` per billed item, in dollars per million postings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

# Prices, us-east-1, as researched in 2026 (verify on the AWS pricing pages): the Prices below.
PRICES_SOURCE = "us-east-1 list prices as researched in 2026 (cost_model.Prices; verify on the AWS pricing pages)"
# The AWS guidance's published production estimate: about $1,811 per month for about 20 million requests.
GUIDANCE_USD_PER_MONTH = 1811.0
GUIDANCE_REQUESTS_PER_MONTH = 20_000_000

KB = 1024
GB = 1024**3
MILLION = 1_000_000
CHUNK_64KB = 64 * KB  # SQS, Pipes and EventBridge bill each 64 KB chunk of a payload as one request/event
WRITE_UNIT_BYTES = 1 * KB  # one write request unit: a standard write of up to 1 KB
READ_UNIT_BYTES = 4 * KB  # one read request unit: a strongly consistent read of up to 4 KB
SFN_BILLING_STEP_MS = 100  # Step Functions Express: duration rounded up to 100 ms...
SFN_MEMORY_CHUNK_MB = 64  # ...and memory to 64 MB chunks
DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # storage bills 100 bytes of index overhead per item
CLOUDWATCH_LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs counts 26 bytes per log event on top of its message
SECONDS_PER_MONTH = 30.44 * 86_400
HOURS_PER_MONTH = SECONDS_PER_MONTH / 3600
XRAY_DEFAULT_RESERVOIR_PER_SECOND = 1.0  # X-Ray's default sampling rule: the first request each second...
XRAY_DEFAULT_FIXED_RATE = 0.05  # ...and 5% of the rest
# Lambda gives a function one vCPU at 1,769 MB of memory, and CPU in proportion to memory below it.
LAMBDA_MB_PER_VCPU = 1769
# What the pipe's SQS record adds to a message body (ids, receipt handle, attributes, the body's JSON
# escaping): 694 bytes around an empty body in workload.sqs_record, which follows AWS's record shape.
PIPE_RECORD_OVERHEAD_BYTES = 750


@dataclass(frozen=True)
class Prices:
    """USD list prices (us-east-1) the model uses; they are written into the JSON as inputs. No free tiers."""

    sqs_per_million_requests: float = 0.40
    pipes_per_million_requests: float = 0.40
    sfn_express_per_million_requests: float = 1.00
    sfn_express_per_gb_second: float = 0.00001667
    lambda_arm_per_million_requests: float = 0.20
    lambda_arm_per_gb_second: float = 0.0000133334
    dynamodb_per_million_write_units: float = 0.625  # on-demand
    dynamodb_per_million_read_units: float = 0.125  # on-demand
    dynamodb_wcu_hour: float = 0.00065  # provisioned
    dynamodb_rcu_hour: float = 0.00013  # provisioned
    eventbridge_per_million_events: float = 1.00
    cloudwatch_logs_ingest_per_gb: float = 0.50  # Standard log class
    cloudwatch_logs_ia_ingest_per_gb: float = 0.25  # Infrequent Access log class
    cloudwatch_logs_storage_per_gb_month: float = 0.03
    eventbridge_archive_ingest_per_gb: float = 0.10
    eventbridge_archive_storage_per_gb_month: float = 0.023
    xray_per_million_traces_recorded: float = 5.00
    dynamodb_storage_per_gb_month: float = 0.25
    dynamodb_pitr_per_gb_month: float = 0.20
    cloudtrail_per_million_data_events: float = 1.00  # $0.10 per 100,000 data events delivered
    s3_standard_per_gb_month: float = 0.023
    cloudwatch_metric_per_month: float = 0.30  # custom metric (first 10,000)
    cloudwatch_alarm_per_month: float = 0.10  # standard-resolution alarm metric
    cloudwatch_dashboard_per_month: float = 3.00
    kms_key_per_month: float = 1.00
    kms_per_10k_requests: float = 0.03
    scheduler_per_million_invocations: float = 1.00
    snapstart_cache_per_gb_second: float = 0.0000015046
    snapstart_restore_per_gb: float = 0.0001397998


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


def lambda_cpu_stretch(memory_mb: int) -> float:
    """How much longer CPU work takes on Lambda at `memory_mb` than on one whole core (at most; within
    the scheduler's period a short burst may run at full speed)."""
    return max(1.0, LAMBDA_MB_PER_VCPU / memory_mb)


def xray_traced_fraction(
    executions_per_second: float,
    reservoir_per_second: float = XRAY_DEFAULT_RESERVOIR_PER_SECOND,
    fixed_rate: float = XRAY_DEFAULT_FIXED_RATE,
) -> float:
    """Share of executions a sampling rule records: the reservoir each second, then the fixed rate of the rest."""
    if executions_per_second <= 0:
        return 0.0
    reservoir = min(executions_per_second, reservoir_per_second)
    return (reservoir + fixed_rate * (executions_per_second - reservoir)) / executions_per_second


def stored_bytes(item_bytes: Sequence[int]) -> int:
    """Bytes the items cost in storage: their size plus DynamoDB's per-item overhead."""
    return sum(size + DYNAMODB_ITEM_OVERHEAD_BYTES for size in item_bytes)


def shared_reads_per_batch(share: float, fill: float) -> float:
    """Expected reads of one shared account per batch: it is read once if any record of the batch
    touches it (`share` of the requests do), so 1 - (1 - share)^fill."""
    return 1 - (1 - min(1.0, max(0.0, share))) ** fill


@dataclass(frozen=True)
class RequestShape:
    """What one request of this shape writes and reads on AWS, and what it carries.

    A transaction's items cost 2 write units per started KB, committed or cancelled: DynamoDB
    consumes a transaction's write capacity even when a condition cancels it. A plain conditional
    Put (a rejection's decision) costs 1 unit per started KB, and so does one whose condition fails.
    """

    name: str
    message_bytes: int  # the SQS message body
    event_envelope_bytes: int  # the result event as the audit log and the archive keep it
    event_bytes: int = 0  # as PutEvents bills it (Source + DetailType + Detail); 0 = the envelope's
    transaction_item_bytes: tuple[int, ...] = ()  # the items of its TransactWriteItems, if it runs one
    transaction_cancelled: bool = False  # a duplicate or reused id: the transaction runs and is cancelled
    plain_write_item_bytes: tuple[int, ...] = ()  # non-transactional conditional Puts (committed or failed)
    own_reads: float = 0.0  # strongly consistent item reads of its own (accounts only it touches, lookups)
    shared_accounts: tuple[str, ...] = ()  # hot accounts: read once per batch for every request touching them
    stored_item_bytes: tuple[int, ...] = ()  # items it leaves in the table
    lane_entries: int = 0  # entries in unlimited accounts' lanes (the sweeper reads each once)
    lane_entry_bytes: int = 0
    table_calls: int = 0  # its own DynamoDB calls (TransactWriteItems, PutItem, GetItem); the batch read apart
    reaches_ledger: bool = True  # False: refused by validation, no DynamoDB call at all
    transaction_attempts: float = 1.0  # transactions tried per request (contention retries repeat them)

    @property
    def write_units(self) -> float:
        transaction = sum(write_units(size, transactional=True) for size in self.transaction_item_bytes)
        plain = sum(write_units(size, transactional=False) for size in self.plain_write_item_bytes)
        return self.transaction_attempts * transaction + plain

    @property
    def billed_event_bytes(self) -> int:
        return self.event_bytes or self.event_envelope_bytes


@dataclass(frozen=True)
class Mix:
    """Traffic as shapes with their shares (the shares sum to 1)."""

    name: str
    shapes: tuple[tuple[float, RequestShape], ...]

    def __post_init__(self) -> None:
        total = sum(share for share, _ in self.shapes)
        if not math.isclose(total, 1.0, rel_tol=1e-9):
            raise ValueError(f"mix {self.name}: shares sum to {total}, not 1")

    @classmethod
    def of(cls, name: str, weighted: Sequence[tuple[float, RequestShape]]) -> Mix:
        total = sum(weight for weight, _ in weighted)
        return cls(name, tuple((weight / total, shape) for weight, shape in weighted if weight))

    def mean(self, attribute: str) -> float:
        return sum(share * float(getattr(shape, attribute)) for share, shape in self.shapes)

    def shared_account_shares(self) -> dict[str, float]:
        shares: dict[str, float] = {}
        for share, shape in self.shapes:
            for account in set(shape.shared_accounts):
                shares[account] = shares.get(account, 0.0) + share
        return shares

    def reads_per_request(self, fill: float) -> float:
        """Read units per request: its own reads, plus each shared account once per batch."""
        shared = sum(shared_reads_per_batch(share, fill) for share in self.shared_account_shares().values())
        return self.mean("own_reads") + shared / fill

    def ledger_share(self) -> float:
        return sum(share for share, shape in self.shapes if shape.reaches_ledger)


@dataclass(frozen=True)
class FunctionTiming:
    """One function's billed duration per invocation: fixed + per record x records."""

    fixed_ms: float
    per_record_ms: float

    def ms(self, records: float) -> float:
        return self.fixed_ms + self.per_record_ms * records

    @classmethod
    def from_two_fills(cls, fill_a: float, ms_a: float, fill_b: float, ms_b: float) -> FunctionTiming:
        """The line through two measurements (per-record time never below 0)."""
        per_record = max(0.0, (ms_b - ms_a) / (fill_b - fill_a))
        return cls(fixed_ms=max(0.0, ms_a - per_record * fill_a), per_record_ms=per_record)


@dataclass(frozen=True)
class BatchProfile:
    """What one workflow execution costs whatever it carries, and what each record adds.

    `functions` are the tasks' times as measured, on whole cores; `cpu` their CPU time (the rest is
    waiting on DynamoDB, EventBridge, SQS). On Lambda the CPU time stretches with less memory
    (lambda_cpu_stretch), the waiting does not: `lambda_ms` is a task's time at `memory_mb`.
    """

    functions: Mapping[str, FunctionTiming]  # the workflow's tasks, by name
    log_bytes_per_batch: float  # the handlers' own lines and metric blobs written once per batch
    log_bytes_per_record: float  # lines written per record (validation refusals at INFO, ...)
    sfn_overhead_ms_per_task: float  # what Step Functions adds per task (invoke, transition)
    sfn_memory_mb: float = 64.0
    cpu: Mapping[str, FunctionTiming] = field(default_factory=dict)  # CPU ms of each task, by name
    memory_mb: int = LAMBDA_MB_PER_VCPU  # the functions' memory (a whole vCPU: times as measured)

    def lambda_ms(self, name: str, fill: float, memory_mb: int | None = None) -> float:
        """A task's time on Lambda at `memory_mb` (the profile's own by default)."""
        stretch = lambda_cpu_stretch(memory_mb or self.memory_mb)
        cpu = self.cpu[name].ms(fill) if name in self.cpu else 0.0
        return self.functions[name].ms(fill) + cpu * (stretch - 1)

    def workflow_ms(self, fill: float) -> float:
        tasks = sum(self.lambda_ms(name, fill) for name in self.functions)
        return tasks + self.sfn_overhead_ms_per_task * len(self.functions)

    def at_memory(self, memory_mb: int) -> BatchProfile:
        return replace(self, memory_mb=memory_mb)

    def log_bytes(self, fill: float) -> float:
        return self.log_bytes_per_batch + self.log_bytes_per_record * fill


@dataclass(frozen=True)
class Deployment:
    """The stack's settings that change the bill (read from template.yaml by cost_inputs)."""

    lambda_memory_mb: int = 512
    batch_size: int = 10
    batching_window_s: float = 0.0
    platform_log_bytes_per_invocation: float = 0.0  # START/END/REPORT; 0 with SystemLogLevel WARN
    audit_log_infrequent_access: bool = False
    log_retention_months: float = 1.0
    archive_retention_months: float = 0.0
    tracing: bool = True
    xray_reservoir_per_second: float = XRAY_DEFAULT_RESERVOIR_PER_SECOND
    xray_fixed_rate: float = XRAY_DEFAULT_FIXED_RATE
    trail_records_data_events: bool = True
    trail_excludes_pipeline_roles: bool = False
    trail_records_lambda_invokes: bool = False
    trail_event_stored_bytes: float = 0.0  # one data event in the trail's bucket, compressed
    provisioned_utilisation: float | None = None  # None = on-demand; else the auto scaling target


@dataclass(frozen=True)
class OperatingPoint:
    """Traffic: how many postings, how full the pipe's batches are, how producers send."""

    name: str
    postings_per_second: float
    fill: float  # records per workflow execution
    producer_calls_per_posting: float = 1.0  # 1 = SendMessage per request; 0.1 = full SendMessageBatch calls

    @property
    def postings_per_month(self) -> float:
        return self.postings_per_second * SECONDS_PER_MONTH

    @property
    def executions_per_second(self) -> float:
        return self.postings_per_second / self.fill


@dataclass(frozen=True)
class CostLine:
    component: str
    usage_per_posting: float
    unit: str
    usd_per_million_postings: float


@dataclass(frozen=True)
class MonthlyCost:
    """A cost that does not grow with postings: dollars per month."""

    item: str
    quantity: float
    unit: str
    usd_per_month: float


@dataclass(frozen=True)
class ExtraInputs:
    """Inputs around the request path: INIT, fixed monthly costs, the sweeper's checkpoint reads."""

    init_gb_seconds_per_month: float = 0.0
    fixed_monthly: tuple[MonthlyCost, ...] = field(default_factory=tuple)


def cloudtrail_events_per_posting(mix: Mix, point: OperatingPoint, deployment: Deployment, tasks: int) -> float:
    """Data events the stack's trail delivers per posting.

    The trail records the table's and both queues' data events (and, where selected, Lambda Invoke):
    every producer send, every poll and delete, the batch read, each request's own table calls, and
    the workflow's invokes. Excluding the pipeline's own roles leaves the producers' sends (and any
    other principal, break-glass included).
    """
    if not deployment.trail_records_data_events:
        return 0.0
    producers = point.producer_calls_per_posting
    if deployment.trail_excludes_pipeline_roles:
        return producers
    per_batch = 2.0  # the pipe's ReceiveMessage and DeleteMessageBatch
    per_batch += shared_reads_per_batch(mix.ledger_share(), point.fill)  # one BatchGetItem if any record reads
    if deployment.trail_records_lambda_invokes:
        per_batch += tasks
    return producers + per_batch / point.fill + mix.mean("table_calls")


def cost_lines(
    mix: Mix,
    profile: BatchProfile,
    point: OperatingPoint,
    deployment: Deployment,
    *,
    prices: Prices | None = None,
    extra: ExtraInputs | None = None,
) -> list[CostLine]:
    """Dollars per million postings, by billed item, for `mix` at `point` on `deployment`."""
    prices = prices or Prices()
    extra = extra or ExtraInputs()
    lines: list[CostLine] = []

    def add(component: str, per_posting: float, unit: str, usd_per_unit: float) -> None:
        lines.append(CostLine(component, per_posting, unit, per_posting * usd_per_unit * MILLION))

    profile = profile.at_memory(deployment.lambda_memory_mb)
    _request_path(add, mix=mix, profile=profile, point=point, deployment=deployment, prices=prices)
    _ledger(add, mix=mix, point=point, deployment=deployment, prices=prices)
    _observability(add, mix=mix, profile=profile, point=point, deployment=deployment, prices=prices)
    add(
        "Lambda INIT (billed)",
        extra.init_gb_seconds_per_month / point.postings_per_month,
        "GB-s",
        prices.lambda_arm_per_gb_second,
    )
    fixed = sum(cost.usd_per_month for cost in extra.fixed_monthly)
    add("Fixed monthly costs, shared out", fixed / point.postings_per_month, "USD", 1.0)
    return lines


Add = Callable[[str, float, str, float], None]


def _request_path(
    add: Add, *, mix: Mix, profile: BatchProfile, point: OperatingPoint, deployment: Deployment, prices: Prices
) -> None:
    """SQS, Pipes, Step Functions, Lambda and the result events: per call, per batch, per record."""
    fill, tasks = point.fill, len(profile.functions)
    message_bytes = mix.mean("message_bytes")
    calls = point.producer_calls_per_posting
    producer_requests = calls * chunks_64kb(message_bytes / calls)  # a SendMessageBatch call carries 1 / calls
    poll_requests = chunks_64kb(fill * message_bytes) + 1  # ReceiveMessage carries the batch; DeleteMessageBatch
    add("SQS requests", producer_requests + poll_requests / fill, "requests", prices.sqs_per_million_requests / MILLION)
    pipe_chunks = chunks_64kb(fill * (message_bytes + PIPE_RECORD_OVERHEAD_BYTES))
    add("EventBridge Pipes", pipe_chunks / fill, "requests", prices.pipes_per_million_requests / MILLION)
    add("Step Functions requests", 1 / fill, "executions", prices.sfn_express_per_million_requests / MILLION)
    workflow = sfn_express_gb_seconds(profile.workflow_ms(fill), profile.sfn_memory_mb)
    add("Step Functions duration", workflow / fill, "GB-s", prices.sfn_express_per_gb_second)
    add("Lambda requests", tasks / fill, "invocations", prices.lambda_arm_per_million_requests / MILLION)
    gb_seconds = sum(
        lambda_gb_seconds(profile.lambda_ms(name, fill), deployment.lambda_memory_mb) for name in profile.functions
    )
    add("Lambda duration", gb_seconds / fill, "GB-s", prices.lambda_arm_per_gb_second)
    events = sum(share * chunks_64kb(shape.billed_event_bytes) for share, shape in mix.shapes)
    add("EventBridge events", events, "events", prices.eventbridge_per_million_events / MILLION)


def _ledger(add: Add, *, mix: Mix, point: OperatingPoint, deployment: Deployment, prices: Prices) -> None:
    """DynamoDB: write and read units on-demand or provisioned, the sweeper's reads, storage and PITR."""
    # The sweeper reads each lane entry once (a Query sums the entries' bytes before rounding to 4 KB).
    lane_bytes = sum(share * shape.lane_entries * shape.lane_entry_bytes for share, shape in mix.shapes)
    if deployment.provisioned_utilisation is None:
        wcu_price = prices.dynamodb_per_million_write_units / MILLION
        rcu_price = prices.dynamodb_per_million_read_units / MILLION
        mode = ""
    else:
        wcu_price = provisioned_usd_per_unit(prices.dynamodb_wcu_hour, deployment.provisioned_utilisation)
        rcu_price = provisioned_usd_per_unit(prices.dynamodb_rcu_hour, deployment.provisioned_utilisation)
        mode = f" (provisioned, {deployment.provisioned_utilisation:.0%} utilised)"
    add(f"DynamoDB writes{mode}", mix.mean("write_units"), "write units", wcu_price)
    add(f"DynamoDB reads{mode}", mix.reads_per_request(point.fill), "read units", rcu_price)
    add(f"DynamoDB reads, sweeper checkpoints{mode}", lane_bytes / READ_UNIT_BYTES, "read units", rcu_price)
    stored = sum(share * stored_bytes(shape.stored_item_bytes) for share, shape in mix.shapes)
    add(
        "DynamoDB storage + PITR (first month)",
        stored / GB,
        "GB-months",
        prices.dynamodb_storage_per_gb_month + prices.dynamodb_pitr_per_gb_month,
    )


def _observability(
    add: Add, *, mix: Mix, profile: BatchProfile, point: OperatingPoint, deployment: Deployment, prices: Prices
) -> None:
    """Logs, the audit copy and the archive, X-Ray, the CloudTrail trail and its bucket."""
    fill, tasks = point.fill, len(profile.functions)
    platform = deployment.platform_log_bytes_per_invocation * tasks
    log_gb = (profile.log_bytes_per_batch + platform) / fill / GB + profile.log_bytes_per_record / GB
    add("CloudWatch Logs, Lambda (ingest)", log_gb, "GB", prices.cloudwatch_logs_ingest_per_gb)
    envelope = mix.mean("event_envelope_bytes")
    audit_gb = (envelope + CLOUDWATCH_LOG_EVENT_OVERHEAD_BYTES) / GB
    audit_price = (
        prices.cloudwatch_logs_ia_ingest_per_gb
        if deployment.audit_log_infrequent_access
        else prices.cloudwatch_logs_ingest_per_gb
    )
    add("CloudWatch Logs, audit copy (ingest)", audit_gb, "GB", audit_price)
    retained = (log_gb + audit_gb) * deployment.log_retention_months
    add("CloudWatch Logs storage (retention)", retained, "GB-months", prices.cloudwatch_logs_storage_per_gb_month)
    add("Event archive (ingest)", envelope / GB, "GB", prices.eventbridge_archive_ingest_per_gb)
    archived = envelope / GB * deployment.archive_retention_months
    add("Event archive storage (retention)", archived, "GB-months", prices.eventbridge_archive_storage_per_gb_month)
    traced = 0.0
    if deployment.tracing:
        traced = xray_traced_fraction(
            point.executions_per_second, deployment.xray_reservoir_per_second, deployment.xray_fixed_rate
        )
    add("X-Ray traces", traced / fill, "traces", prices.xray_per_million_traces_recorded / MILLION)
    trail_events = cloudtrail_events_per_posting(mix, point, deployment, tasks)
    add("CloudTrail data events", trail_events, "events", prices.cloudtrail_per_million_data_events / MILLION)
    trail_gb = trail_events * deployment.trail_event_stored_bytes / GB
    add("CloudTrail log files in S3 (first month)", trail_gb, "GB-months", prices.s3_standard_per_gb_month)


def total_usd(lines: Sequence[CostLine]) -> float:
    return sum(line.usd_per_million_postings for line in lines)


def line_usd(lines: Sequence[CostLine], prefix: str) -> float:
    """Dollars per million of the lines whose component starts with `prefix`."""
    return sum(line.usd_per_million_postings for line in lines if line.component.startswith(prefix))


def provisioned_usd_per_unit(price_per_unit_hour: float, utilisation: float) -> float:
    """What one consumed unit costs on provisioned capacity kept at `utilisation` by auto scaling."""
    if not 0 < utilisation <= 1:
        raise ValueError("utilisation must be in (0, 1]")
    return price_per_unit_hour / 3600 / utilisation


def provisioned_break_even_utilisation(prices: Prices) -> float:
    """Below this average utilisation of provisioned write capacity, on-demand is cheaper."""
    provisioned = prices.dynamodb_wcu_hour / 3600
    return provisioned / (prices.dynamodb_per_million_write_units / MILLION)


def storage_per_month_kept(mix: Mix, prices: Prices) -> float:
    """$/M postings for each further month their rows stay in the table (storage + PITR)."""
    stored = sum(share * stored_bytes(shape.stored_item_bytes) for share, shape in mix.shapes)
    return stored / GB * (prices.dynamodb_storage_per_gb_month + prices.dynamodb_pitr_per_gb_month) * MILLION


def lambda_init_gb_seconds_per_month(
    init_ms: Mapping[str, float],
    concurrency: Mapping[str, float],
    memory_mb: int,
    environment_lifetime_hours: float,
) -> float:
    """Billed INIT GB-seconds a month: each function's environments (at least one) are replaced every
    `environment_lifetime_hours`, and each INIT bills its import and first clients (as measured on a
    whole core: whether INIT runs at the function's CPU share is not documented)."""
    total = 0.0
    for function, ms in init_ms.items():
        environments = max(1, math.ceil(concurrency.get(function, 0.0)))
        inits = environments * HOURS_PER_MONTH / environment_lifetime_hours
        total += inits * ms / 1000 * memory_mb / 1024
    return total


def snapstart_usd_per_month(
    functions: int, memory_mb: int, restores_per_month: float, prices: Prices
) -> tuple[float, float]:
    """SnapStart's own charges a month: (snapshot cache of one published version per function, restores)."""
    gb = memory_mb / 1024
    cache = functions * gb * SECONDS_PER_MONTH * prices.snapstart_cache_per_gb_second
    return cache, restores_per_month * gb * prices.snapstart_restore_per_gb
