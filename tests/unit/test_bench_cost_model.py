"""The benchmark's cost model: DynamoDB item sizes and capacity units, billing rounding, the per-posting sum.

Pure arithmetic, checked against the rules as AWS documents them; no engine, no timing.
"""

from __future__ import annotations

import dataclasses

import pytest

from posting_cli.bench.cost_model import (
    CostInputs,
    Prices,
    chunks_64kb,
    cost_breakdown,
    lambda_gb_seconds,
    mean_batch_fill,
    read_units,
    sfn_express_gb_seconds,
    stored_bytes,
    total_usd,
    write_units,
    xray_traced_fraction,
)
from posting_cli.bench.item_sizes import attribute_value_size, item_size, number_size
from posting_cli.bench.section import percentile


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


def test_cost_breakdown_for_a_batch_of_ten() -> None:
    inputs = CostInputs(
        batch_size=10,
        message_bytes=400,
        pipe_batch_bytes=10_000,
        lambda_memory_mb=512,
        lambda_ms={"Validate": 10, "Post": 100, "Emit": 50},
        sfn_overhead_ms=30,  # 190 ms in all: billed as 200 ms at 64 MB
        sfn_memory_mb=64,
        write_item_bytes=[700, 230, 230, 260, 260],  # each under 1 KB: 2 WCU each in a transaction
        read_item_bytes=[230, 230],
        event_bytes=500,
    )
    lines = {line.component: line for line in cost_breakdown(inputs, Prices())}
    million = 1_000_000

    assert lines["SQS requests"].usage_per_posting == pytest.approx(0.3)  # send + receive + delete per 10
    assert lines["SQS requests"].usd_per_million_postings == pytest.approx(0.3 * 0.40)
    assert lines["EventBridge Pipes"].usd_per_million_postings == pytest.approx(0.1 * 0.40)
    assert lines["Step Functions requests"].usd_per_million_postings == pytest.approx(0.1 * 1.00)
    assert lines["Step Functions duration"].usd_per_million_postings == pytest.approx(
        0.2 * (64 / 1024) / 10 * 0.00001667 * million
    )
    assert lines["Lambda requests"].usd_per_million_postings == pytest.approx(0.3 * 0.20)
    assert lines["Lambda duration"].usd_per_million_postings == pytest.approx(0.160 * 0.5 / 10 * 0.0000133334 * million)
    assert lines["DynamoDB writes"].usage_per_posting == 10
    assert lines["DynamoDB writes"].usd_per_million_postings == pytest.approx(10 * 0.625)
    assert lines["DynamoDB reads"].usd_per_million_postings == pytest.approx(2 * 0.125)
    assert lines["EventBridge events"].usd_per_million_postings == pytest.approx(1.00)


def test_large_batches_pay_per_64kb_chunk() -> None:
    inputs = CostInputs(
        batch_size=10,
        message_bytes=8192,  # 80 KB per batch: two chunks for each send and receive
        pipe_batch_bytes=90_000,
        lambda_memory_mb=512,
        lambda_ms={"Post": 1},
        sfn_overhead_ms=0,
        sfn_memory_mb=64,
        write_item_bytes=[],
        read_item_bytes=[],
        event_bytes=70_000,
    )
    lines = {line.component: line for line in cost_breakdown(inputs, Prices())}
    assert lines["SQS requests"].usage_per_posting == pytest.approx((2 * 2 + 1) / 10)
    assert lines["EventBridge Pipes"].usage_per_posting == pytest.approx(2 / 10)
    assert lines["EventBridge events"].usage_per_posting == 2


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.50) == 50
    assert percentile(values, 0.95) == 95
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([], 0.5) == 0
    assert percentile([7], 0.99) == 7


def test_batches_fill_with_what_arrives_while_pollers_are_busy_or_waiting() -> None:
    # 20M postings a month is about 7.6/s; 5 pollers each busy 0.4 s per workflow, no window.
    assert mean_batch_fill(7.6, pollers=5, cycle_seconds=0.4, window_seconds=0, batch_size=10) == pytest.approx(1.608)
    # A trickle: every record travels alone.
    assert mean_batch_fill(0.01, pollers=5, cycle_seconds=0.4, window_seconds=0, batch_size=10) == pytest.approx(1.0008)
    # A batching window fills batches, up to the batch size.
    assert mean_batch_fill(7.6, pollers=5, cycle_seconds=0.4, window_seconds=2, batch_size=10) == pytest.approx(4.648)
    assert mean_batch_fill(500, pollers=5, cycle_seconds=0.4, window_seconds=0, batch_size=10) == 10


def test_xray_default_sampling_is_one_per_second_then_five_percent() -> None:
    assert xray_traced_fraction(0.5) == 1.0
    assert xray_traced_fraction(1.0) == 1.0
    assert xray_traced_fraction(5.0) == pytest.approx((1 + 0.05 * 4) / 5)
    assert xray_traced_fraction(0) == 0.0


def test_storage_adds_100_bytes_per_item() -> None:
    assert stored_bytes([700, 250, 250]) == 1500


def test_lines_around_the_request_path_appear_only_when_modelled() -> None:
    core = CostInputs(
        batch_size=2,
        message_bytes=400,
        pipe_batch_bytes=2_000,
        lambda_memory_mb=512,
        lambda_ms={"validate": 5, "post": 40, "emit": 20},
        sfn_overhead_ms=75,
        sfn_memory_mb=64,
        write_item_bytes=[700, 230, 230],
        read_item_bytes=[230, 230],
        event_bytes=460,
    )
    assert len(cost_breakdown(core, Prices())) == 9
    full = dataclasses.replace(
        core,
        lambda_log_bytes_per_posting=700,
        platform_log_bytes_per_invocation=300,
        log_retention_months=1,
        audit_log_bytes_per_posting=750,
        archive_bytes_per_posting=750,
        archive_retention_months=3,
        traced_fraction=0.5,
        stored_bytes_per_posting=1_400,
        init_gb_seconds_per_posting=1e-6,
    )
    lines = {line.component: line for line in cost_breakdown(full, Prices())}
    gb = 1024**3
    # Lambda logs: 700 B per posting plus 3 invocations x 300 B per batch of 2.
    assert lines["CloudWatch Logs, Lambda (ingest)"].usage_per_posting == pytest.approx((700 + 450) / gb)
    assert lines["CloudWatch Logs, audit copy (ingest)"].usd_per_million_postings == pytest.approx(750 / gb * 0.5 * 1e6)
    assert lines["Event archive storage (retention)"].usage_per_posting == pytest.approx(750 * 3 / gb)
    assert lines["X-Ray traces"].usd_per_million_postings == pytest.approx(0.25 * 5.0)
    assert lines["DynamoDB storage + PITR (each month kept)"].usd_per_million_postings == pytest.approx(
        1_400 / gb * 0.45 * 1e6
    )
    assert total_usd(list(lines.values())) > total_usd(cost_breakdown(core, Prices()))


def test_contention_repeats_reads_and_writes_and_the_mix_replaces_them() -> None:
    base = CostInputs(
        batch_size=10,
        message_bytes=400,
        pipe_batch_bytes=7_000,
        lambda_memory_mb=512,
        lambda_ms={"post": 100},
        sfn_overhead_ms=25,
        sfn_memory_mb=64,
        write_item_bytes=[700, 230, 230, 250, 250],
        read_item_bytes=[230, 230],
        event_bytes=460,
    )
    hot = dataclasses.replace(base, transaction_attempts=2.0)
    mixed = dataclasses.replace(base, posted_fraction=0.75, not_posted_write_units=1, not_posted_read_units=2)

    def units(inputs: CostInputs, component: str) -> float:
        return next(line.usage_per_posting for line in cost_breakdown(inputs, Prices()) if line.component == component)

    assert units(base, "DynamoDB writes") == 10
    assert units(hot, "DynamoDB writes") == 20
    assert units(hot, "DynamoDB reads") == 4
    assert units(mixed, "DynamoDB writes") == pytest.approx(0.75 * 10 + 0.25 * 1)
    assert units(mixed, "DynamoDB reads") == pytest.approx(0.75 * 2 + 0.25 * 2)


def test_the_remaining_gap_names_each_lever_with_what_it_saves() -> None:
    from posting_cli.bench.cost import remaining_gap
    from posting_cli.bench.cost_model import CostLine, Prices

    demo = [
        CostLine("DynamoDB writes", 7.5, "write units", 4.5),
        CostLine("X-Ray traces", 0.15, "traces", 0.75),
        CostLine("EventBridge events", 1, "events", 1.0),
    ]
    gap, lines = remaining_gap(
        demo,
        full_batches=4.0,
        one_second_window=5.5,
        posted_fraction=0.8,
        entries=2,
        batch_size=10,
        prices=Prices(dynamodb_per_million_write_units=0.625),
    )
    assert gap == {
        "full_batches_usd": 2.25,
        "one_second_window_usd": 0.75,
        "entries_outside_the_transaction_usd": 1.0,  # 0.8 x 2 entries x 1 WCU saved x $0.625
        "tracing_passthrough_usd": 0.75,
    }
    assert lines[0].startswith("the gap to $5 is $1.25; DynamoDB writes alone are $4.50")
    assert any("-$1.00" in line and "Streams" in line for line in lines)


def test_only_the_workflows_tasks_are_billed_per_batch() -> None:
    from posting_cli.bench.cost import workflow_functions
    from posting_cli.local.template import Template

    assert workflow_functions(Template.load()) == {"Validate", "Post", "Emit"}  # not the scheduled sweeper
