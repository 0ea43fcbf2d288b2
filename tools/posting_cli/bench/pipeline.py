"""6. The whole local pipeline, from template.yaml on DynamoDB Local + moto."""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posting_cli.bench.cpu import CpuClock
from posting_cli.bench.section import Section, fmt_table, percentile, progress
from posting_cli.bench.workload import SEED
from posting_cli.local.template import Template

PIPELINE_POLLERS = 4  # as `posting local demo`
SATURATION_IN_FLIGHT = 400  # as `posting local run`: large enough to keep every poller busy
MODERATE_IN_FLIGHT = 10  # about one batch in flight: the pipeline's latency, not the queue's backlog
# Short, so that a record returned by the workflow comes back in seconds instead of 3 minutes.
MARGINAL_SMALL_FRACTION = 3  # the small run has a third of the big run's requests
MARGINAL_TARGET = 0.7  # marginal throughput >= 0.7x raw DynamoDB Local transactions/s
LATENCY_P50_TARGET_MS = 150  # at MODERATE_IN_FLIGHT
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
    cpu_before = CpuClock.now(stack.dynamodb)
    began = time.monotonic()
    began_epoch_ms = time.time() * 1000
    outcomes = drain(stack.target, collector, lines, pace)
    wall = time.monotonic() - began
    cpu = cpu_before.per_unit_ms(CpuClock.now(stack.dynamodb), len(bodies))
    after = snapshot(stack, log_path)
    latencies = [o.observed_ms - o.sent_ms for o in outcomes if o.observed_ms and o.sent_ms]
    # Seconds into the phase at which each result event was observed: throughput over time.
    decided_at_s = sorted(round((o.observed_ms - began_epoch_ms) / 1000, 3) for o in outcomes if o.observed_ms)
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
        "samples": {"latency_ms": latencies, "decided_at_s": decided_at_s},
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
        "cpu_ms_per_request": cpu,
    }


def bench_pipeline(endpoint: Any, postings: int, baseline: dict[str, Any]) -> Section:
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
        stack = LocalStack(
            template, pollers=PIPELINE_POLLERS, state_dir=Path(state_dir), dynamodb=endpoint, fresh_books=True
        )
        with stack:
            started_s = time.monotonic() - began
            assert stack.target is not None
            operations.open_accounts(stack.target, book.accounts)
            with ResultCollector(stack.target) as collector:
                progress(f"pipeline: warm-up (fund {sum(map(len, book.customers.values()))} customers)")
                funding = traffic.funding()
                phases["warm-up (funding)"] = run_phase(stack, collector, funding, SATURATION_IN_FLIGHT, 1)
                line = len(funding) + 1
                # A small and a big run at saturation: their difference is the marginal throughput,
                # with start-up and drain at the end cancelling out.
                for phase, count, in_flight in (
                    ("saturation (small)", max(1, postings // MARGINAL_SMALL_FRACTION), SATURATION_IN_FLIGHT),
                    ("saturation", postings, SATURATION_IN_FLIGHT),
                    ("moderate", postings, MODERATE_IN_FLIGHT),
                ):
                    progress(f"pipeline: {phase}, {count} requests, {in_flight} in flight")
                    bodies = [traffic.next() for _ in range(count)]
                    phases[phase] = run_phase(stack, collector, bodies, in_flight, line)
                    line += count
            pipe_errors = list(stack.pipes[0].stats.errors)
    small, big = phases["saturation (small)"], phases["saturation"]
    extra_s = big["wall_s"] - small["wall_s"]
    marginal = (big["requests"] - small["requests"]) / extra_s if extra_s > 0 else None
    ratio = marginal / baseline["transactions_per_s"] if marginal else None
    p50 = phases["moderate"]["latency_ms"]["p50"]
    data = {
        "marginal_decided_per_s": round(marginal, 1) if marginal else None,
        "raw_dynamodb_baseline": baseline,
        "marginal_vs_raw": round(ratio, 3) if ratio else None,
        "marginal_target": MARGINAL_TARGET,
        "moderate_p50_ms": p50,
        "moderate_p99_ms": phases["moderate"]["latency_ms"]["p99"],
        "latency_p50_target_ms": LATENCY_P50_TARGET_MS,
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
    lines += [
        f"marginal throughput: ({big['requests']} - {small['requests']}) requests / "
        f"({big['wall_s']} - {small['wall_s']}) s"
        f" = {marginal or 0:,.1f}/s; raw DynamoDB Local, 3-item TransactWriteItems from {baseline['threads']} threads:"
        f" {baseline['transactions_per_s']:,.1f}/s -> {ratio or 0:.2f}x (target >= {MARGINAL_TARGET}x: "
        f"{'met' if ratio and ratio >= MARGINAL_TARGET else 'MISSED'})",
        f"latency at {MODERATE_IN_FLIGHT} in flight: p50 {p50:,} ms (target <= {LATENCY_P50_TARGET_MS} ms: "
        f"{'met' if p50 <= LATENCY_P50_TARGET_MS else 'MISSED'}), p99 {phases['moderate']['latency_ms']['p99']:,} ms",
    ]
    lines += cpu_lines(phases["saturation"]["cpu_ms_per_request"], baseline.get("cpu_ms_per_transaction") or {})
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
        title=f"6. Whole local pipeline (template.yaml on DynamoDB Local + moto, {PIPELINE_POLLERS} pipe pollers)",
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


def cpu_lines(pipeline: dict[str, float | None], raw: dict[str, float | None]) -> list[str]:
    """Where the CPU went per request at saturation, against the raw baseline's per transaction."""
    python, dynamodb = pipeline.get("python"), pipeline.get("dynamodb_local")
    raw_python, raw_dynamodb = raw.get("python"), raw.get("dynamodb_local")
    if None in (python, dynamodb, raw_python, raw_dynamodb):
        return ["CPU per request: not measured (DynamoDB Local is not this run's child process)"]
    assert python is not None and dynamodb is not None and raw_python is not None and raw_dynamodb is not None
    cores = os.cpu_count() or 1
    return [
        f"CPU per request at saturation: this process {python:,.1f} ms (moto, handlers, pipe, load generator), "
        f"DynamoDB Local {dynamodb:,.1f} ms; raw baseline per transaction: client {raw_python:,.1f} ms, "
        f"DynamoDB Local {raw_dynamodb:,.1f} ms.",
        f"so on {cores} cores the pipeline cannot pass {cores * 1000 / (python + dynamodb):,.0f}/s, nor "
        f"{1000 / python:,.0f}/s while this process runs mostly under one GIL; "
        f"the raw baseline's CPU bound is {cores * 1000 / (raw_python + raw_dynamodb):,.0f}/s.",
    ]
