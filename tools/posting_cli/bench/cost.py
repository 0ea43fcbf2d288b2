"""7. Cost per posting on AWS: the cost model fed with the sizes and durations measured above.

Every line at 20M postings a month, for three traffic shapes (spread, hot, demo-like), with batches
as full as that traffic really fills them. Inputs are measured in this run (item and event sizes,
log bytes, handler and import times, conflict retries, the demo's outcome mix) or stated below.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict
from typing import Any

from posting_cli.bench.cost_model import (
    GUIDANCE_REQUESTS_PER_MONTH,
    GUIDANCE_USD_PER_MONTH,
    PRICES_SOURCE,
    SECONDS_PER_MONTH,
    CostInputs,
    CostLine,
    Prices,
    cost_breakdown,
    mean_batch_fill,
    stored_bytes,
    total_usd,
    xray_traced_fraction,
)
from posting_cli.bench.section import Section, fmt_table
from posting_cli.bench.workload import posting_id, sqs_record, two_leg_body
from posting_cli.local.template import Template

POSTINGS_PER_MONTH = 20_000_000
GOAL_USD_PER_MILLION = 5.0
SFN_OVERHEAD_MS_PER_TASK = 25.0  # assumed: Step Functions -> Lambda invoke and state transition, per task
SFN_MEMORY_MB = 64.0  # assumed: a ~10 KB state fits the smallest 64 MB chunk
PIPE_POLLERS = 5  # assumed: as Lambda's SQS event source mapping starts (Pipes does not document its own)
PLATFORM_LOG_BYTES_PER_INVOCATION = 350  # assumed: Lambda's START, END and REPORT lines (text format, X-Ray id)
CLOUDWATCH_LOG_EVENT_OVERHEAD_BYTES = 26  # CloudWatch Logs bills 26 bytes per log event on top of its message
ENVIRONMENT_LIFETIME_HOURS = 2.0  # assumed: how long Lambda keeps a busy execution environment
ARCHIVE_RETENTION_MONTHS = 90 / 30.44  # PostingEventArchive RetentionDays: 90
# A request that is not posted (rejected, duplicate) writes at most its decision item and reads it back.
NOT_POSTED_WRITE_UNITS = 1.0
NOT_POSTED_READ_UNITS = 1.0


def bench_cost(
    sizes: dict[str, Any],
    pipeline: dict[str, Any],
    ledger: dict[str, Any],
    cold_start: dict[str, Any],
    hot_accounts: dict[str, Any] | None = None,
) -> Section:
    template = Template.load()
    batch_size = int(template.parameters["PipeBatchSize"])
    window_s = float(template.parameters["PipeBatchingWindowSeconds"])
    memory_mb = int(template.function_globals()["MemorySize"])
    retention_months = int(template.parameters["LogRetentionDays"]) / 30.44
    prices = Prices()
    two = sizes["2-leg"]
    record_bytes = len(json.dumps(sqs_record(two_leg_body(posting_id(), "acc-00000001", "acc-00000002"))).encode())
    moderate = pipeline["phases"]["moderate"]
    saturation = pipeline["phases"]["saturation"]

    # Handler time per invocation: the moderate phase's (batches of a few records, less GIL contention
    # than at saturation; in-process wall time, so it errs high for Lambda's dedicated vCPU).
    # Only the workflow's tasks run per batch; the sweeper runs on its schedule (once a minute on AWS).
    tasks = workflow_functions(template)
    lambda_ms = {name: h["ms_per_invocation"] or 0.0 for name, h in moderate["handlers"].items() if name in tasks}
    workflow_ms = sum(lambda_ms.values()) + SFN_OVERHEAD_MS_PER_TASK * len(lambda_ms)
    rate = POSTINGS_PER_MONTH / SECONDS_PER_MONTH

    def fill_with(window: float) -> float:
        return mean_batch_fill(
            rate, pollers=PIPE_POLLERS, cycle_seconds=workflow_ms / 1000, window_seconds=window, batch_size=batch_size
        )

    fill = fill_with(window_s)
    executions_per_s = rate / fill
    # INIT: every function's environments (Little's law: executions/s x duration, at least one) are
    # replaced every ENVIRONMENT_LIFETIME_HOURS; each INIT bills its import plus first clients.
    init_gb_s = 0.0
    for module, result in cold_start["results"].items():
        if not module.startswith("posting.handlers."):
            continue
        function = module.rsplit(".", 1)[1].capitalize()
        environments = max(1, math.ceil(executions_per_s * lambda_ms.get(function, 0) / 1000))
        inits = environments * (SECONDS_PER_MONTH / 3600 / ENVIRONMENT_LIFETIME_HOURS)
        init_ms = result["import_ms"] + (result.get("first_clients_ms") or 0)
        init_gb_s += inits * init_ms / 1000 * memory_mb / 1024
    requests = sum(saturation["statuses"].values())
    posted_fraction = saturation["statuses"].get("POSTED", 0) / requests if requests else 1.0
    unsharded = next(s for s in ledger["scenarios"] if s["scenario"] == "one hot account")
    attempts_unsharded = unsharded["transaction_attempts_per_posted"] or 1.0
    # Through an account with balance_shards (section 4): a conflict is a retried transaction.
    conflicts_sharded = ((hot_accounts or {}).get("hot") or {}).get("conflicts_per_posting") or 0.0

    def inputs_for(size: dict[str, Any], batch: float) -> CostInputs:
        return CostInputs(
            batch_size=batch,
            message_bytes=size["message_bytes"],
            pipe_batch_bytes=math.ceil(batch * record_bytes),
            lambda_memory_mb=memory_mb,
            lambda_ms=lambda_ms,
            sfn_overhead_ms=SFN_OVERHEAD_MS_PER_TASK * len(lambda_ms),
            sfn_memory_mb=SFN_MEMORY_MB,
            write_item_bytes=[size["posting_item_bytes"], *size["account_item_bytes"], *size["entry_item_bytes"]],
            read_item_bytes=size["read_item_bytes"],
            event_bytes=size["event_bytes"],
            lambda_log_bytes_per_posting=saturation["lambda_log_bytes_per_request"],
            platform_log_bytes_per_invocation=PLATFORM_LOG_BYTES_PER_INVOCATION,
            log_retention_months=retention_months,
            audit_log_bytes_per_posting=size["event_envelope_bytes"] + CLOUDWATCH_LOG_EVENT_OVERHEAD_BYTES,
            archive_bytes_per_posting=size["event_envelope_bytes"],
            archive_retention_months=ARCHIVE_RETENTION_MONTHS,
            traced_fraction=xray_traced_fraction(rate / batch),
            stored_bytes_per_posting=stored_bytes(size["stored_item_bytes"]),
            init_gb_seconds_per_posting=init_gb_s / POSTINGS_PER_MONTH,
        )

    spread = inputs_for(two, fill)
    shapes = {
        "spread (2-leg, distinct accounts)": spread,
        # The hot account takes an ADD on one of its shards with no read: only the other account is read.
        "hot (2-leg, one sharded account)": dataclasses.replace(
            spread, transaction_attempts=1.0 + conflicts_sharded, read_item_bytes=two["read_item_bytes"][:1]
        ),
        "hot, unsharded (no balance_shards)": dataclasses.replace(spread, transaction_attempts=attempts_unsharded),
        "demo-like (demo's mix of outcomes)": dataclasses.replace(
            spread,
            posted_fraction=posted_fraction,
            not_posted_write_units=NOT_POSTED_WRITE_UNITS,
            not_posted_read_units=NOT_POSTED_READ_UNITS,
        ),
    }
    breakdowns = {name: cost_breakdown(inputs, prices) for name, inputs in shapes.items()}
    totals = {name: total_usd(lines) for name, lines in breakdowns.items()}
    demo_name = "demo-like (demo's mix of outcomes)"
    demo = breakdowns[demo_name]
    demo_total = totals[demo_name]
    full_batches = total_usd(cost_breakdown(dataclasses.replace(shapes[demo_name], batch_size=batch_size), prices))
    one_second_window = total_usd(
        cost_breakdown(dataclasses.replace(shapes[demo_name], batch_size=fill_with(1.0)), prices)
    )
    four_leg = sizes.get("4-leg realistic")
    guidance = GUIDANCE_USD_PER_MONTH / GUIDANCE_REQUESTS_PER_MONTH * 1_000_000

    def rows(lines: list[CostLine]) -> list[list[str]]:
        total = total_usd(lines)
        return [
            [
                line.component,
                f"{line.usage_per_posting:.4g} {line.unit}",
                f"${line.usd_per_million_postings:,.3f}",
                f"{line.usd_per_million_postings / total:.1%}",
            ]
            for line in lines
        ] + [["total", "", f"${total:,.2f}", ""]]

    lines = [
        f"{POSTINGS_PER_MONTH / 1e6:.0f}M postings a month = {rate:.1f}/s on average; Lambda arm64 {memory_mb} MB; "
        f"prices: {PRICES_SOURCE}",
        f"batch fill: PipeBatchingWindowSeconds {window_s:g}, {PIPE_POLLERS} pollers (assumed), workflow "
        f"{workflow_ms:,.0f} ms -> {fill:.2f} records per execution (mean_batch_fill), not {batch_size}: per-batch "
        f"costs are {batch_size / fill:.1f}x what full batches pay. The demo's moderate phase averaged "
        f"{moderate['pipe']['mean_batch_size']}.",
        "Pipes billing unit assumed: one request per 64 KB chunk of each batch the pipe hands to its target (the "
        "pricing page bills 'requests' in 64 KB chunks after filtering); billed per event instead, Pipes would "
        f"cost ${prices.pipes_per_million_requests:.2f} per million, "
        f"${prices.pipes_per_million_requests * (1 - 1 / fill):.2f} more at this fill.",
        *fmt_table(
            ["shape", "$ per million postings", f"<= ${GOAL_USD_PER_MILLION:g} goal"],
            [
                [name, f"${total:,.2f}", "yes" if total <= GOAL_USD_PER_MILLION else "no"]
                for name, total in totals.items()
            ],
        ),
        f"breakdown, {demo_name} (posted {posted_fraction:.0%}, the rest at {NOT_POSTED_WRITE_UNITS:g} WCU + "
        f"{NOT_POSTED_READ_UNITS:g} RCU):",
        *fmt_table(["component", "usage per posting", "$ per million postings", "share"], rows(demo)),
        f"same mix with full batches of {batch_size} (saturating traffic): ${full_batches:,.2f}; with a 1 s batching "
        f"window at 20M/month (fill {fill_with(1.0):.2f}, +up to 1 s latency): ${one_second_window:,.2f}",
        f"hot account with balance_shards: {1 + conflicts_sharded:.3f} transactions tried per posting (section 4), "
        f"the hot account not read; without shards: {attempts_unsharded:.2f} (section 3), reads and writes "
        "repeated (a cancelled transaction is assumed billed).",
        f"2-leg items: decision {two['posting_item_bytes']} B, accounts {two['account_item_bytes']} B, entries "
        f"{two['entry_item_bytes']} B = {two['transaction_write_units']} WCU; event {two['event_bytes']} B "
        f"({two['event_envelope_bytes']} B with its envelope, as the audit log and the archive keep it)",
    ]
    if four_leg:
        lines.append(
            f"a typical 4-leg posting with realistic ids, description and metadata: decision item "
            f"{four_leg['posting_item_bytes']} B ({'over' if four_leg['posting_item_over_1kb'] else 'under'} 1 KB), "
            f"{four_leg['transaction_write_units']} WCU in all; the 2-leg demo request's is "
            f"{two['posting_item_bytes']} B."
        )
    gap, gap_lines = remaining_gap(
        demo,
        full_batches=full_batches,
        one_second_window=one_second_window,
        posted_fraction=posted_fraction,
        entries=len(two["entry_item_bytes"]),
        batch_size=batch_size,
        prices=prices,
    )
    lines += [
        *gap_lines,
        f"AWS guidance estimate: ${guidance:,.1f} per million; this model: ${demo_total:,.2f} for the demo's mix.",
        "assumed, not measured: Step Functions overhead per task, pollers, platform log bytes, environment lifetime;",
        "CloudWatch Logs storage charged on raw bytes (it compresses: an upper bound); no free tiers.",
    ]
    return Section(
        key="cost",
        title="7. Cost per posting on AWS, us-east-1, at 20M postings a month (a model, not a bill)",
        method=(
            "pure arithmetic (cost_model, unit-tested): item sizes by DynamoDB's documented rules from the items "
            "real postings wrote to DynamoDB Local; handler ms and log bytes from the pipeline phases; import times "
            "from section 2; conflict retries from section 3; batch fill from mean_batch_fill at the template's "
            "batching window; X-Ray default sampling (1/s + 5%); archive and log storage over their retention."
        ),
        data={
            "prices": asdict(prices),
            "prices_source": PRICES_SOURCE,
            "postings_per_month": POSTINGS_PER_MONTH,
            "batch_fill": round(fill, 3),
            "workflow_ms": round(workflow_ms, 1),
            "assumptions": {
                "sfn_overhead_ms_per_task": SFN_OVERHEAD_MS_PER_TASK,
                "sfn_memory_mb": SFN_MEMORY_MB,
                "pipe_pollers": PIPE_POLLERS,
                "platform_log_bytes_per_invocation": PLATFORM_LOG_BYTES_PER_INVOCATION,
                "environment_lifetime_hours": ENVIRONMENT_LIFETIME_HOURS,
                "not_posted_write_units": NOT_POSTED_WRITE_UNITS,
                "not_posted_read_units": NOT_POSTED_READ_UNITS,
                "pipes_billing_unit": "one request per 64 KB chunk of each batch handed to the target",
                "cancelled_transactions_billed": True,
            },
            "inputs": {name: asdict(inputs) for name, inputs in shapes.items()},
            "breakdown": {name: [asdict(line) for line in lines] for name, lines in breakdowns.items()},
            "totals_usd_per_million": {name: round(total, 4) for name, total in totals.items()},
            "demo_like_full_batches_usd_per_million": round(full_batches, 4),
            "demo_like_one_second_window_usd_per_million": round(one_second_window, 4),
            "gap_levers_usd_per_million": gap,
            "goal_usd_per_million": GOAL_USD_PER_MILLION,
            "item_sizes": sizes,
            "guidance_usd_per_million": round(guidance, 2),
        },
        lines=lines,
    )


def remaining_gap(
    demo: list[CostLine],
    *,
    full_batches: float,
    one_second_window: float,
    posted_fraction: float,
    entries: int,
    batch_size: int,
    prices: Prices,
) -> tuple[dict[str, float], list[str]]:
    """What is left between the demo mix's total and the goal, and what each lever would cost in semantics."""
    demo_total = total_usd(demo)
    writes = next(line.usd_per_million_postings for line in demo if line.component == "DynamoDB writes")
    xray_usd = next(line.usd_per_million_postings for line in demo if line.component == "X-Ray traces")
    gap = {
        "full_batches_usd": round(demo_total - full_batches, 3),
        "one_second_window_usd": round(demo_total - one_second_window, 3),
        "entries_outside_the_transaction_usd": round(
            posted_fraction * entries * prices.dynamodb_per_million_write_units, 3
        ),
        "tracing_passthrough_usd": round(xray_usd, 3),
    }
    lines = [
        f"the gap to ${GOAL_USD_PER_MILLION:g} is ${max(0.0, demo_total - GOAL_USD_PER_MILLION):,.2f}; DynamoDB writes"
        f" alone are ${writes:,.2f} (2 WCU per item in a transaction: decision, 2 accounts, 2 entries, each under"
        " 1 KB, so no smaller layout helps). What each lever left would save, and cost in semantics:",
        f"  full batches of {batch_size} (a long batching window): -${gap['full_batches_usd']:,.2f}; a 1 s window:"
        f" -${gap['one_second_window_usd']:,.2f}, for up to 1 s more latency on every posting (not near real time);",
        f"  entries written outside the transaction by a DynamoDB Streams consumer (1 WCU each, not 2): "
        f"-${gap['entries_outside_the_transaction_usd']:,.2f}, for statements that lag the balances and a second "
        "writer to operate;",
        f"  X-Ray off (Tracing: PassThrough): -${gap['tracing_passthrough_usd']:,.2f}, for no traces across Pipes,"
        " Step Functions and Lambda;",
        "  fewer items per posting (entries folded into the decision item): statements by account would need a"
        " scan or an index per leg, which costs as much to write as the entries.",
    ]
    return gap, lines


def workflow_functions(template: Template) -> set[str]:
    """The functions the state machine invokes per batch, by the names the pipeline section reports
    (logical id without "Function"): those its DefinitionSubstitutions reference with GetAtt."""
    (state_machine,) = template.resources_of_type("AWS::Serverless::StateMachine").values()
    substitutions = state_machine["Properties"]["DefinitionSubstitutions"].values()
    targets = [value["Fn::GetAtt"] for value in substitutions if isinstance(value, dict) and "Fn::GetAtt" in value]
    # !GetAtt X.Arn loads as "X.Arn" or ["X", "Arn"], depending on the loader.
    return {(t if isinstance(t, list) else t.split("."))[0].removesuffix("Function") for t in targets}
