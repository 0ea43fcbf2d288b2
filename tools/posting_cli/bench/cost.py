"""6. Cost per posting on AWS: the cost model fed with the sizes and durations measured above."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from posting_cli.bench.cost_model import (
    GUIDANCE_REQUESTS_PER_MONTH,
    GUIDANCE_USD_PER_MONTH,
    PRICES_SOURCE,
    CostInputs,
    Prices,
    cost_breakdown,
)
from posting_cli.bench.section import Section, fmt_table
from posting_cli.bench.workload import posting_id, sqs_record, two_leg_body
from posting_cli.local.template import Template

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
