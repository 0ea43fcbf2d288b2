"""The benchmark's cost model: DynamoDB item sizes and capacity units, billing rounding, and every line
of the per-posting sum (one test per corrected line). Pure arithmetic, checked against the rules as AWS
documents them; no engine, no timing.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from posting_cli.bench import cost_inputs as inputs
from posting_cli.bench.cost_model import (
    GB,
    BatchProfile,
    Deployment,
    ExtraInputs,
    FunctionTiming,
    Mix,
    MonthlyCost,
    OperatingPoint,
    Prices,
    RequestShape,
    chunks_64kb,
    cloudtrail_events_per_posting,
    cost_lines,
    lambda_cpu_stretch,
    lambda_gb_seconds,
    lambda_init_gb_seconds_per_month,
    provisioned_break_even_utilisation,
    provisioned_usd_per_unit,
    read_units,
    sfn_express_gb_seconds,
    shared_reads_per_batch,
    snapstart_usd_per_month,
    storage_per_month_kept,
    stored_bytes,
    total_usd,
    write_units,
    xray_traced_fraction,
)
from posting_cli.bench.item_sizes import attribute_value_size, item_size, number_size
from posting_cli.bench.section import percentile
from posting_cli.local.template import Template

MILLION = 1_000_000


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("7", 2),  # one significant digit: 1 byte for the digit pair, 1 byte more
        ("12", 2),
        ("123", 3),
        ("1000", 2),  # trailing zeros are trimmed
        ("-0012.500", 3),  # so are leading zeros, the sign and the decimal point: 125
        ("123456789012345", 9),
    ],
)
def test_number_size(text: str, size: int) -> None:
    assert number_size(text) == size


def test_scalar_sizes() -> None:
    assert attribute_value_size({"S": "abc"}) == 3
    assert attribute_value_size({"S": "€"}) == 3  # UTF-8 bytes, not characters
    assert attribute_value_size({"B": b"\x00\x01"}) == 2
    assert attribute_value_size({"BOOL": True}) == 1
    assert attribute_value_size({"NULL": True}) == 1
    assert attribute_value_size({"SS": ["ab", "c"]}) == 3


def test_lists_and_maps_cost_3_bytes_plus_1_per_element() -> None:
    assert attribute_value_size({"L": []}) == 3
    assert attribute_value_size({"M": {}}) == 3
    assert attribute_value_size({"L": [{"N": "1"}, {"S": "ab"}]}) == 3 + (1 + 2) + (1 + 2)
    # A map's keys count like attribute names.
    assert attribute_value_size({"M": {"a": {"S": "x"}}}) == 3 + (1 + 1 + 1)


def test_item_size_counts_names_and_values() -> None:
    item = {"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "ACCOUNT"}, "version": {"N": "12"}}
    assert item_size(item) == (2 + 9) + (2 + 7) + (7 + 2)


@pytest.mark.parametrize(
    ("size", "transactional", "units"),
    [
        (1, False, 1),
        (1024, False, 1),
        (1025, False, 2),
        (1, True, 2),  # a transactional write costs twice
        (1024, True, 2),
        (1025, True, 4),
        (3000, True, 6),
    ],
)
def test_write_units_per_started_kb(size: int, transactional: bool, units: int) -> None:
    assert write_units(size, transactional=transactional) == units


@pytest.mark.parametrize(
    ("size", "consistent", "units"),
    [(1, True, 1.0), (4096, True, 1.0), (4097, True, 2.0), (100, False, 0.5), (4097, False, 1.0)],
)
def test_read_units_per_started_4kb(size: int, consistent: bool, units: float) -> None:
    assert read_units(size, consistent=consistent) == units


@pytest.mark.parametrize(("size", "chunks"), [(0, 1), (1, 1), (65_536, 1), (65_537, 2), (256 * 1024, 4)])
def test_64kb_chunks(size: int, chunks: int) -> None:
    assert chunks_64kb(size) == chunks


def test_express_duration_rounds_up_to_100ms_and_memory_to_64mb() -> None:
    assert sfn_express_gb_seconds(1, 10) == pytest.approx(0.1 * 64 / 1024)
    assert sfn_express_gb_seconds(100, 64) == pytest.approx(0.1 * 64 / 1024)
    assert sfn_express_gb_seconds(101, 64) == pytest.approx(0.2 * 64 / 1024)
    assert sfn_express_gb_seconds(250, 65) == pytest.approx(0.3 * 128 / 1024)


def test_lambda_duration_rounds_up_to_the_millisecond() -> None:
    assert lambda_gb_seconds(100.2, 512) == pytest.approx(0.101 * 0.5)
    assert lambda_gb_seconds(100.0, 1024) == pytest.approx(0.1)


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([], 0.5) == 0
    assert percentile([7], 0.99) == 7


def test_storage_adds_100_bytes_per_item() -> None:
    assert stored_bytes([700, 250, 250]) == 1500


# --- a small world to price: one shape, one profile, one deployment ---------------------------------
TWO_LEG = RequestShape(
    name="2-leg",
    message_bytes=400,
    event_envelope_bytes=800,
    transaction_item_bytes=(500, 300, 300, 300, 300),  # decision, 2 accounts, 2 entries: 10 WCU
    own_reads=2.0,
    stored_item_bytes=(500, 300, 300),
    table_calls=1,
)
PROFILE = BatchProfile(
    functions={
        "Validate": FunctionTiming(fixed_ms=2, per_record_ms=0.5),
        "Post": FunctionTiming(fixed_ms=20, per_record_ms=10),
        "Emit": FunctionTiming(fixed_ms=15, per_record_ms=1),
    },
    log_bytes_per_batch=2_000,
    log_bytes_per_record=50,
    sfn_overhead_ms_per_task=25,
)
BARE = Deployment(
    platform_log_bytes_per_invocation=0,
    log_retention_months=0,
    archive_retention_months=0,
    tracing=False,
    trail_records_data_events=False,
)


def line(lines: list, component: str):
    return next(item for item in lines if item.component == component)


def priced(
    mix: Mix | None = None, fill: float = 10, deployment: Deployment = BARE, **point: float
) -> dict[str, object]:
    at = OperatingPoint("p", point.pop("rate", 100.0), fill, **point)
    lines = cost_lines(mix or Mix.of("two", [(1, TWO_LEG)]), PROFILE, at, deployment)
    return {item.component: item for item in lines}


def test_the_request_path_for_full_batches_of_ten() -> None:
    lines = priced(fill=10)
    assert lines["SQS requests"].usage_per_posting == pytest.approx(1 + 2 / 10)  # send alone; poll + delete per batch
    assert lines["EventBridge Pipes"].usd_per_million_postings == pytest.approx(0.1 * 0.40)
    assert lines["Step Functions requests"].usd_per_million_postings == pytest.approx(0.1 * 1.00)
    # 2+5 + 20+100 + 15+10 = 152 ms of tasks + 75 ms overhead = 227 -> billed 300 ms at 64 MB
    assert lines["Step Functions duration"].usage_per_posting == pytest.approx(0.3 * 64 / 1024 / 10)
    assert lines["Lambda requests"].usd_per_million_postings == pytest.approx(0.3 * 0.20)
    assert lines["DynamoDB writes"].usage_per_posting == 10
    assert lines["DynamoDB writes"].usd_per_million_postings == pytest.approx(10 * 0.625)
    assert lines["DynamoDB reads"].usd_per_million_postings == pytest.approx(2 * 0.125)
    assert lines["EventBridge events"].usd_per_million_postings == pytest.approx(1.00)


def test_durations_are_fixed_plus_per_record_at_the_fill_the_batches_have() -> None:
    # The same profile at a fill of 1.3 pays each function's fixed time over 1.3 records, not over 10.
    lines = priced(fill=1.3)
    expected_ms = [2 + 0.5 * 1.3, 20 + 10 * 1.3, 15 + 1 * 1.3]
    expected = sum(lambda_gb_seconds(ms, 512) for ms in expected_ms) / 1.3
    assert lines["Lambda duration"].usage_per_posting == pytest.approx(expected)
    assert lines["Lambda duration"].usage_per_posting > priced(fill=10)["Lambda duration"].usage_per_posting * 2


def test_lambda_stretches_cpu_work_below_a_whole_vcpu() -> None:
    assert lambda_cpu_stretch(1769) == 1.0
    assert lambda_cpu_stretch(3008) == 1.0  # more than a vCPU does not make one thread faster
    assert lambda_cpu_stretch(512) == pytest.approx(1769 / 512)
    assert lambda_cpu_stretch(256) == pytest.approx(2 * lambda_cpu_stretch(512))


def test_a_task_on_lambda_waits_as_measured_and_computes_slower_with_less_memory() -> None:
    # Post: 30 ms measured at fill 1, 4 ms of it CPU. At 512 MB the CPU takes 1769/512 x as long.
    profile = dataclasses.replace(PROFILE, cpu={"Post": FunctionTiming(fixed_ms=2, per_record_ms=2)}, memory_mb=512)
    assert profile.lambda_ms("Post", 1) == pytest.approx(30 + 4 * (1769 / 512 - 1))
    assert profile.lambda_ms("Validate", 1) == pytest.approx(2.5)  # no CPU measured: as measured
    assert profile.at_memory(1769).lambda_ms("Post", 1) == pytest.approx(30)
    assert profile.at_memory(256).workflow_ms(1) > profile.workflow_ms(1) > profile.at_memory(1769).workflow_ms(1)


def test_lambda_duration_bills_the_waiting_by_memory_and_the_cpu_by_cpu_time() -> None:
    # All CPU: the same GB-seconds at any memory below a vCPU (twice as long at half the memory).
    cpu_bound = dataclasses.replace(
        PROFILE,
        functions={"Post": FunctionTiming(fixed_ms=100, per_record_ms=0)},
        cpu={"Post": FunctionTiming(fixed_ms=100, per_record_ms=0)},
    )
    waiting = dataclasses.replace(cpu_bound, cpu={})
    at = OperatingPoint("p", 100.0, 1.0)
    mix = Mix.of("two", [(1, TWO_LEG)])

    def duration(profile: BatchProfile, memory: int) -> float:
        lines = cost_lines(mix, profile, at, dataclasses.replace(BARE, lambda_memory_mb=memory))
        return line(lines, "Lambda duration").usage_per_posting

    assert duration(cpu_bound, 256) == pytest.approx(duration(cpu_bound, 512), rel=0.01)
    assert duration(waiting, 256) == pytest.approx(duration(waiting, 512) / 2)


def test_a_function_timing_is_the_line_through_two_fills() -> None:
    timing = FunctionTiming.from_two_fills(1, 30.0, 10, 120.0)
    assert timing == FunctionTiming(fixed_ms=20.0, per_record_ms=10.0)
    assert timing.ms(1.3) == pytest.approx(33.0)
    assert FunctionTiming.from_two_fills(1, 50.0, 10, 40.0).per_record_ms == 0  # never negative


def test_lambda_logs_are_written_per_batch_and_per_record() -> None:
    gb = GB
    ten, one = priced(fill=10), priced(fill=1)
    assert ten["CloudWatch Logs, Lambda (ingest)"].usage_per_posting == pytest.approx((2_000 / 10 + 50) / gb)
    assert one["CloudWatch Logs, Lambda (ingest)"].usage_per_posting == pytest.approx((2_000 + 50) / gb)
    # Lambda's own START/END/REPORT lines come once per invocation: three tasks per batch.
    loud = priced(fill=2, deployment=dataclasses.replace(BARE, platform_log_bytes_per_invocation=400))
    assert loud["CloudWatch Logs, Lambda (ingest)"].usage_per_posting == pytest.approx(
        ((2_000 + 3 * 400) / 2 + 50) / gb
    )


def test_log_bytes_per_batch_and_per_record_come_from_two_fills() -> None:
    from posting_cli.bench.batch_costs import log_bytes_line

    # bytes per request = 2,000 / fill + 50: 2,050 at fill 1 and 250 at fill 10.
    per_batch, per_record = log_bytes_line(1, 2_050, 10, 250)
    assert per_batch == pytest.approx(2_000)
    assert per_record == pytest.approx(50)


def test_cloudtrail_counts_every_call_it_records() -> None:
    mix = Mix.of("two", [(1, TWO_LEG)])
    on = dataclasses.replace(BARE, trail_records_data_events=True)
    point = OperatingPoint("p", 100, 2.0)
    # producer's send 1, per batch of 2: ReceiveMessage, DeleteMessageBatch, BatchGetItem; its own TransactWriteItems.
    assert cloudtrail_events_per_posting(mix, point, on, tasks=3) == pytest.approx(1 + 3 / 2 + 1)
    invokes = dataclasses.replace(on, trail_records_lambda_invokes=True)
    assert cloudtrail_events_per_posting(mix, point, invokes, tasks=3) == pytest.approx(1 + 6 / 2 + 1)
    # Leaving out the pipeline's own roles leaves the producers' sends (fewer with SendMessageBatch).
    excluded = dataclasses.replace(invokes, trail_excludes_pipeline_roles=True)
    assert cloudtrail_events_per_posting(mix, point, excluded, tasks=3) == 1
    batched = OperatingPoint("p", 100, 2.0, producer_calls_per_posting=0.1)
    assert cloudtrail_events_per_posting(mix, batched, excluded, tasks=3) == pytest.approx(0.1)
    assert cloudtrail_events_per_posting(mix, point, BARE, tasks=3) == 0
    lines = priced(fill=2, deployment=on)
    assert lines["CloudTrail data events"].usd_per_million_postings == pytest.approx(3.5 * 1.00)  # $0.10 per 100,000


def test_a_refusal_by_validation_reads_and_writes_nothing_and_is_not_recorded_by_the_trail() -> None:
    refused = inputs.refused_by_validation("malformed", 120, "INVALID_REQUEST")
    assert (refused.write_units, refused.own_reads, refused.table_calls, refused.stored_item_bytes) == (0, 0, 0, ())
    mix = Mix.of("refusals", [(1, refused)])
    on = dataclasses.replace(BARE, trail_records_data_events=True)
    lines = priced(mix, fill=1, deployment=on)
    assert lines["DynamoDB writes"].usage_per_posting == 0
    assert lines["DynamoDB reads"].usage_per_posting == 0
    assert lines["EventBridge events"].usage_per_posting == 1  # it is still answered
    assert lines["CloudTrail data events"].usage_per_posting == pytest.approx(1 + 2)  # send, poll, delete: no read


def test_a_duplicate_runs_the_transaction_and_pays_for_it_cancelled() -> None:
    card = inputs.posted("card-payment", inputs.KIND_LEGS["card-payment"], 320)
    duplicate = inputs.duplicate_of(card)
    assert duplicate.transaction_cancelled and duplicate.write_units == card.write_units == 8
    assert duplicate.stored_item_bytes == () and duplicate.lane_entries == 0  # nothing stays
    assert duplicate.own_reads == card.own_reads and duplicate.shared_accounts == card.shared_accounts
    reused = inputs.duplicate_of(card, reused_id=True)
    assert reused.write_units == 8 and reused.event_envelope_bytes != card.event_envelope_bytes  # a rejection event
    # A duplicate of a rejection: its decision Put fails the condition, 1 WCU for an item under 1 KB.
    overdraft = inputs.rejected_by_ledger(
        "overdraft", inputs.LEDGER_REJECTIONS["overdraft"][0], 320, reason="INSUFFICIENT_FUNDS"
    )
    assert overdraft.write_units == 1 and inputs.duplicate_of(overdraft).write_units == 1
    assert inputs.duplicate_of(overdraft).stored_item_bytes == ()
    # A duplicate of a request refused by validation is refused again: nothing.
    again = inputs.duplicate_of(inputs.refused_by_validation("unbalanced", 300, "UNBALANCED"))
    assert not again.reaches_ledger and again.write_units == 0


@pytest.mark.parametrize(
    ("kind", "items", "wcu", "own_reads", "shared"),
    [
        ("card-payment", 4, 8, 1, ("settlement-EUR",)),  # decision, customer update, 2 entries
        ("payout", 5, 10, 1, ("fees-EUR", "settlement-EUR")),  # decision, merchant update, 3 entries
        ("transfer", 5, 10, 2, ()),  # decision, 2 updates, 2 entries
        ("fx", 7, 14, 2, ("fx-EUR", "fx-USD")),  # decision, 2 updates, 4 entries
    ],
)
def test_each_posted_shape_writes_its_items_under_the_write_path(
    kind: str, items: int, wcu: int, own_reads: int, shared: tuple[str, ...]
) -> None:
    shape = inputs.posted(kind, inputs.KIND_LEGS[kind], 330)
    assert len(shape.transaction_item_bytes) == items
    assert shape.write_units == wcu
    assert shape.own_reads == own_reads
    assert shape.shared_accounts == shared
    assert shape.lane_entries == sum(not leg.limited for leg in inputs.KIND_LEGS[kind])  # one per unlimited leg
    assert len(shape.stored_item_bytes) == 1 + len(inputs.KIND_LEGS[kind])  # decision + one entry per leg


def test_the_demo_mix_follows_the_demo_generator() -> None:
    counts, mean_bytes = inputs.classify_demo_traffic(samples=5_000)
    total = sum(counts.values())
    assert total == 5_000
    kinds = {label.rsplit(":", 1)[-1] for label in counts}
    assert {"card-payment", "payout", "transfer", "fx", "overdraft", "malformed", "unbalanced"} <= kinds
    # Traffic.next weights: card payments 45 of 100, payouts 10, transfers 14, FX 6, client retries 6.
    assert counts["card-payment"] / total == pytest.approx(0.45, abs=0.03)
    assert counts["payout"] / total == pytest.approx(0.10, abs=0.02)
    duplicates = sum(n for label, n in counts.items() if label.startswith("duplicate:"))
    assert duplicates / total == pytest.approx(0.06, abs=0.015)
    assert mean_bytes["fx"] > mean_bytes["card-payment"] > mean_bytes["malformed"]


def test_the_demo_mix_is_priced_shape_by_shape() -> None:
    mix = inputs.demo_mix(samples=5_000)
    assert sum(share for share, _ in mix.shapes) == pytest.approx(1.0)
    by_name = {shape.name: share for share, shape in mix.shapes}
    assert by_name["fx"] > 0.04 and by_name["payout"] > 0.08
    # Mean write units: between a refusal's 0 and FX's 14, and more than a card payment's 8 alone would
    # give once payouts, transfers and FX are in.
    assert 6 < mix.mean("write_units") < 10
    # A shared account is read once per batch: more records per batch, fewer reads per request.
    assert mix.reads_per_request(10) < mix.reads_per_request(1)


def test_a_shared_account_is_read_once_per_batch_that_touches_it() -> None:
    assert shared_reads_per_batch(1.0, 10) == 1
    assert shared_reads_per_batch(0.5, 1) == 0.5
    assert shared_reads_per_batch(0.5, 2) == pytest.approx(0.75)
    hot = Mix.of("hot", [(1, inputs.posted("card-payment", inputs.KIND_LEGS["card-payment"], 320))])
    assert hot.reads_per_request(10) == pytest.approx(1 + 1 / 10)


def test_xray_samples_at_the_execution_rate_of_each_operating_point() -> None:
    assert xray_traced_fraction(0.5) == 1.0
    assert xray_traced_fraction(5.0) == pytest.approx((1 + 0.05 * 4) / 5)
    assert xray_traced_fraction(0) == 0.0
    assert xray_traced_fraction(100, reservoir_per_second=0, fixed_rate=0.01) == pytest.approx(0.01)
    traced = dataclasses.replace(BARE, tracing=True)
    # 1,111/s in full batches: 111 executions/s, so about 5.9% are traced, 0.0059 traces per posting.
    full = priced(fill=10, rate=1111, deployment=traced)["X-Ray traces"]
    assert full.usage_per_posting == pytest.approx((1 + 0.05 * 110.1) / 111.1 / 10)
    # 7.6/s in batches of 1: 7.6 executions/s, 17.5% traced.
    flat = priced(fill=1, rate=7.6, deployment=traced)["X-Ray traces"]
    assert flat.usage_per_posting == pytest.approx((1 + 0.05 * 6.6) / 7.6)


def test_storage_and_pitr_are_priced_per_month_kept() -> None:
    lines = priced(fill=10)
    first_month = lines["DynamoDB storage + PITR (first month)"]
    assert first_month.usage_per_posting == pytest.approx(1_400 / GB)  # 3 items + 100 B each
    per_month = storage_per_month_kept(Mix.of("two", [(1, TWO_LEG)]), Prices())
    assert per_month == pytest.approx(1_400 / GB * (0.25 + 0.20) * MILLION)
    assert first_month.usd_per_million_postings == pytest.approx(per_month)


def test_fixed_monthly_costs_are_shared_out_over_the_month_s_postings() -> None:
    extra = ExtraInputs(fixed_monthly=(MonthlyCost("alarms", 20, "alarms", 2.0), MonthlyCost("key", 1, "keys", 1.0)))
    at = OperatingPoint("p", 20_000_000 / (30.44 * 86_400), 1.0)
    lines = cost_lines(Mix.of("two", [(1, TWO_LEG)]), PROFILE, at, BARE, extra=extra)
    assert line(lines, "Fixed monthly costs, shared out").usd_per_million_postings == pytest.approx(3.0 / 20)


def test_fixed_costs_count_the_template_and_the_handlers() -> None:
    template = Template.load()
    costs = {
        c.item: c for c in inputs.fixed_monthly_costs(template, inputs.deployment_from_template(template), Prices())
    }
    stack = template.flattened()  # the alarms and the dashboard are a nested application's
    alarms = sum(1 for name in stack.resources_of_type("AWS::CloudWatch::Alarm") if stack.is_created(name))
    assert costs["alarms"].quantity == alarms > 10
    assert costs["alarms"].usd_per_month == pytest.approx(alarms * 0.10)
    assert costs["dashboards"].usd_per_month == pytest.approx(3.00)
    assert costs["KMS key"].quantity == 1  # created by default (no KmsKeyArn)
    metrics = inputs.custom_metrics()
    from posting.domain.outcomes import Reason

    assert metrics["Rejected"] == len(Reason)  # one metric per reason dimension value
    assert {"Posted", "Duplicates", "Undecided", "DeadLettered", "ReturnedToQueue"} <= set(metrics)
    assert costs["custom metrics"].usd_per_month == pytest.approx(sum(metrics.values()) * 0.30)


def test_fixed_costs_count_what_the_nested_applications_create_too(tmp_path: Path) -> None:
    template = Template.load()
    before = {
        c.item: c for c in inputs.fixed_monthly_costs(template, inputs.deployment_from_template(template), Prices())
    }
    (tmp_path / "alarms.yaml").write_text(
        "Resources:\n  Alarm:\n    Type: AWS::CloudWatch::Alarm\n  Dashboard:\n    Type: AWS::CloudWatch::Dashboard\n"
    )
    nested = {"Type": "AWS::Serverless::Application", "Properties": {"Location": str(tmp_path / "alarms.yaml")}}
    body = {**template.body, "Resources": {**template.resources, "MoreAlarms": nested}}
    more = dataclasses.replace(template, body=body)
    after = {c.item: c for c in inputs.fixed_monthly_costs(more, inputs.deployment_from_template(more), Prices())}
    assert after["alarms"].quantity == before["alarms"].quantity + 1
    assert after["dashboards"].quantity == before["dashboards"].quantity + 1


def test_provisioned_capacity_brings_the_alarms_auto_scaling_creates_and_the_indexes_minimums() -> None:
    template = Template.load()
    on_demand = inputs.fixed_monthly_costs(template, inputs.deployment_from_template(template), Prices())
    provisioned = Template.load(overrides={"CapacityMode": "PROVISIONED"})
    costs = {
        c.item: c
        for c in inputs.fixed_monthly_costs(provisioned, inputs.deployment_from_template(provisioned), Prices())
    }
    before = {c.item: c for c in on_demand}
    targets = inputs.scalable_targets(provisioned)
    assert targets == 10  # reads and writes of the table and of its four indexes
    ceilings = 2  # the alarms on the table's capacity ceiling, PROVISIONED only
    assert costs["alarms"].quantity == before["alarms"].quantity + ceilings + 4 * targets
    reads, writes = inputs.index_minimum_units(provisioned)
    assert (reads, writes) == (20, 20)  # 5 of each per index
    assert costs["indexes' minimum capacity (provisioned)"].usd_per_month == pytest.approx(
        (20 * 0.00065 + 20 * 0.00013) * 30.44 * 24
    )
    assert "indexes' minimum capacity (provisioned)" not in before


def test_the_sweeper_is_traced_every_run() -> None:
    template = Template.load()
    costs = {
        c.item: c for c in inputs.fixed_monthly_costs(template, inputs.deployment_from_template(template), Prices())
    }
    runs = 30.44 * 86_400 / 60
    assert costs["sweeper: X-Ray traces"].usd_per_month == pytest.approx(runs * 5.00 / MILLION)
    assert costs["sweeper: CloudTrail data events"].usd_per_month == 0  # its role is left out of the trail


def test_lambda_init_is_billed_per_environment_replaced() -> None:
    # One environment each, replaced every 2 hours: 365 INITs a month of 500 ms at 512 MB.
    gb_s = lambda_init_gb_seconds_per_month({"Post": 500.0}, {"Post": 0.3}, 512, 2.0)
    assert gb_s == pytest.approx(30.44 * 24 / 2 * 0.5 * 0.5)
    assert lambda_init_gb_seconds_per_month({"Post": 500.0}, {"Post": 2.2}, 512, 2.0) == pytest.approx(3 * gb_s)


def test_provisioned_capacity_costs_by_the_hour_at_its_utilisation() -> None:
    assert provisioned_usd_per_unit(0.00065, 1.0) * MILLION == pytest.approx(0.00065 / 3600 * MILLION)
    assert provisioned_usd_per_unit(0.00065, 0.5) == pytest.approx(2 * provisioned_usd_per_unit(0.00065, 1.0))
    assert provisioned_break_even_utilisation(Prices()) == pytest.approx(0.00065 / 3600 / 0.625e-6)
    lines = priced(fill=10, deployment=dataclasses.replace(BARE, provisioned_utilisation=0.7))
    provisioned = lines["DynamoDB writes (provisioned, 70% utilised)"]
    assert provisioned.usd_per_million_postings == pytest.approx(10 * 0.00065 / 3600 / 0.7 * MILLION)
    with pytest.raises(ValueError, match="utilisation"):
        provisioned_usd_per_unit(0.00065, 0)


def test_snapstart_charges_its_cache_and_each_restore() -> None:
    cache, restores = snapstart_usd_per_month(3, 512, 1_000, Prices())
    assert cache == pytest.approx(3 * 0.5 * 30.44 * 86_400 * 0.0000015046)
    assert restores == pytest.approx(1_000 * 0.5 * 0.0001397998)


def test_a_mix_s_shares_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match="sum"):
        Mix("bad", ((0.5, TWO_LEG),))
    assert Mix.of("weights", [(3, TWO_LEG), (1, TWO_LEG), (0, TWO_LEG)]).shapes[0][0] == pytest.approx(0.75)


# --- the template's settings ------------------------------------------------------------------------
def test_the_deployment_is_read_from_the_template() -> None:
    template = Template.load()
    deployment = inputs.deployment_from_template(template)
    assert deployment.batch_size == int(template.parameters["PipeBatchSize"])
    assert deployment.lambda_memory_mb == int(template.function_globals()["MemorySize"])
    assert deployment.archive_retention_months == pytest.approx(90 / 30.44)
    assert deployment.trail_records_data_events  # RecordDataEventsTrail defaults to "true"
    assert inputs.workflow_functions(template) == set(inputs.FUNCTION_TIMINGS)  # not the scheduled sweeper


def test_the_template_s_levers_are_read_from_it() -> None:
    """The template as it is: the trail leaves out the pipeline's roles, X-Ray samples 1% with no
    reservoir, Lambda's own lines are left out; the audit log group stays Standard; on-demand."""
    template = Template.load()
    pulled = inputs.deployment_from_template(template)
    assert pulled.trail_excludes_pipeline_roles and pulled.trail_records_lambda_invokes
    assert pulled.platform_log_bytes_per_invocation == 0
    assert (pulled.xray_reservoir_per_second, pulled.xray_fixed_rate) == (0, 0.01)
    assert not pulled.audit_log_infrequent_access
    assert pulled.provisioned_utilisation is None
    assert inputs.deployment_from_template(
        Template.load(overrides={"TraceSampleRate": 0.05})
    ).xray_fixed_rate == pytest.approx(0.05)
    provisioned = Template.load(overrides={"CapacityMode": "PROVISIONED", "ProvisionedTargetUtilization": 60})
    assert inputs.deployment_from_template(provisioned).provisioned_utilisation == pytest.approx(0.60)


def test_a_template_without_the_levers_is_priced_without_them() -> None:
    template = Template.load()
    body = copy.deepcopy(template.body)
    trail = next(r for r in body["Resources"].values() if r["Type"] == "AWS::CloudTrail::Trail")
    for selector in trail["Properties"]["AdvancedEventSelectors"]:
        selector["FieldSelectors"] = [f for f in selector["FieldSelectors"] if f["Field"] != "userIdentity.arn"]
    del body["Globals"]["Function"]["LoggingConfig"]
    body["Resources"] = {k: r for k, r in body["Resources"].items() if r["Type"] != "AWS::XRay::SamplingRule"}
    body["Resources"]["ResultsLogGroup"]["Properties"]["LogGroupClass"] = "INFREQUENT_ACCESS"
    bare = inputs.deployment_from_template(dataclasses.replace(template, body=body))
    assert not bare.trail_excludes_pipeline_roles and bare.trail_records_lambda_invokes
    assert bare.platform_log_bytes_per_invocation == inputs.PLATFORM_LOG_BYTES_PER_INVOCATION
    assert (bare.xray_reservoir_per_second, bare.xray_fixed_rate) == (1.0, 0.05)  # X-Ray's default rule
    assert bare.audit_log_infrequent_access


def test_the_audit_copy_is_cheaper_in_the_infrequent_access_class() -> None:
    standard = priced(fill=10)["CloudWatch Logs, audit copy (ingest)"]
    ia = priced(fill=10, deployment=dataclasses.replace(BARE, audit_log_infrequent_access=True))
    assert ia["CloudWatch Logs, audit copy (ingest)"].usd_per_million_postings == pytest.approx(
        standard.usd_per_million_postings / 2
    )


# --- the report ----------------------------------------------------------------------------------------
SUMMARY = re.compile(r"^cost (20M/month|1111/s) (spread|hot|demo): \$\d+\.\d\d per million$")


def test_make_cost_prints_both_points_and_one_summary_line_per_point_and_shape() -> None:
    from posting_cli.bench.cost import main

    out = io.StringIO()
    with redirect_stdout(out):
        assert main([]) == 0
    printed = out.getvalue().splitlines()
    summary = [text for text in printed if text.startswith("cost ")]
    assert len(summary) == 6 and all(SUMMARY.match(text) for text in summary)
    assert {text.split(":")[0] for text in summary} == {
        f"cost {point} {shape}" for point in ("20M/month", "1111/s") for shape in ("spread", "hot", "demo")
    }
    assert any(text.startswith("SQS requests") for text in printed)  # the table by line
    assert any("CloudTrail data events" in text for text in printed)


def test_the_model_s_totals_are_the_sum_of_its_lines_at_both_points() -> None:
    from posting_cli.bench.cost import build_model

    model = build_model()
    flat, full = model.points["20M/month"], model.points["1111/s"]
    assert flat.postings_per_second == pytest.approx(20_000_000 / (30.44 * 86_400))
    assert 1.0 <= flat.fill < 2.0  # batches of one or two at 7.6/s with no window
    assert (full.postings_per_second, full.fill) == (1111, 10)
    for point in ("20M/month", "1111/s"):
        lines = model.lines("demo", point)
        assert model.total("demo", point) == pytest.approx(total_usd(lines))
    # Full batches pay every per-batch line a tenth as often.
    assert model.total("demo", "1111/s") < model.total("demo", "20M/month")


# --- the levers, memory and SnapStart ------------------------------------------------------------------
def test_each_lever_pulled_saves_and_together_they_are_the_template() -> None:
    from posting_cli.bench.cost import build_model, lever_rows, untrimmed, without_levers

    model = build_model()
    rows = {row["lever"]: row for row in lever_rows(model)}
    together = rows.pop("all the pulled levers: template.yaml as it is")
    for point in ("20M/month", "1111/s"):
        before = model.total("demo", point, without_levers(model.deployment), untrimmed(model.profile))
        assert together["saves_usd_per_million"][point] == pytest.approx(before - model.total("demo", point), abs=1e-3)
        for name, row in rows.items():
            assert row["saves_usd_per_million"][point] >= 0, name
    pulled = {name for name, row in rows.items() if row["pulled"]}
    assert any(name.startswith("CloudTrail") for name in pulled)
    assert any(name.startswith("X-Ray") for name in pulled)
    assert not rows["audit log group in the Infrequent Access class"]["pulled"]
    assert "FilterLogEvents" in rows["audit log group in the Infrequent Access class"]["why_not"]


def test_the_memory_chosen_is_the_smallest_that_fits_twice_and_keeps_the_budget() -> None:
    from posting_cli.bench.cost import chosen_memory_mb, memory_rows

    model = build_cost_model()
    rows = memory_rows(model)
    chosen = chosen_memory_mb(model)
    assert [r["memory_mb"] for r in rows] == list(inputs.MEMORY_SIZES)
    (picked,) = [r for r in rows if r["memory_mb"] == chosen]
    assert picked["fits"] and picked["within_budget"]
    assert all(not (r["fits"] and r["within_budget"]) for r in rows if r["memory_mb"] < chosen)
    # Less memory never costs more Lambda duration (the CPU work costs the same, the waiting less).
    durations = [r["lambda_usd_per_million"]["20M/month"] for r in rows]
    assert durations == sorted(durations)


def test_snapstart_is_priced_against_the_init_it_saves() -> None:
    from posting_cli.bench.cost import snapstart_rows

    model = build_cost_model()
    for row in snapstart_rows(model).values():
        assert row["cache_usd_per_month"] > row["billed_init_usd_per_month"]
        assert row["cold_start_share_of_executions"] < 0.01  # under the p99


def build_cost_model():  # type: ignore[no-untyped-def]
    from posting_cli.bench.cost import build_model

    return build_model()


def test_make_bench_takes_each_handlers_cpu_time_from_the_memory_section() -> None:
    from posting_cli.bench.cost import cpu_timings

    handlers = {
        "fills": {
            "1": {"Validate": {"wall_ms": 1, "cpu_ms": 1.0}, "Post": {"wall_ms": 30, "cpu_ms": 5.0}},
            "10": {"Validate": {"wall_ms": 3, "cpu_ms": 2.8}, "Post": {"wall_ms": 120, "cpu_ms": 32.0}},
        }
    }
    cpu = cpu_timings(handlers)
    assert cpu is not None
    assert cpu["Post"] == FunctionTiming(fixed_ms=2.0, per_record_ms=3.0)
    assert cpu["Validate"].ms(10) == pytest.approx(2.8)
    assert cpu_timings(None) is None


def test_the_readme_quotes_the_cost_make_cost_prints():
    # The README's figures are `make cost`'s (the model on the committed inputs): a change to the model
    # or its inputs that moves them fails here until the README says the new figures.
    from pathlib import Path

    from posting_cli.bench.cost import report

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    bullet = readme.split("- **Cost** (`make cost`", 1)[1].split("\n- ", 1)[0]
    monthly, sustained = " ".join(line.strip() for line in bullet.splitlines()).split("at 1,111/s", 1)
    _, data = report(build_cost_model())
    for point, said in (("20M/month", monthly.split("at 20M a month", 1)[1]), ("1111/s", sustained)):
        row = next(row for row in data["targets"] if row["point"] == point)
        verdict = "met" if row["remainder"] <= 0 else "missed"
        as_is, best = row["steps"]["as template.yaml is (on-demand)"], row["steps"]["and producers' SendMessageBatch"]
        assert said.strip().startswith(f"${as_is:.2f}"), (point, said)
        assert f"${best:.2f} with" in said, (point, said)
        assert f"target ${row['goal']:.0f}, {verdict})" in said, (point, said)
