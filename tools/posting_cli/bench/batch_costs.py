"""7. What a batch costs and what a record adds, and how full the pipe's batches are: on the local stack.

Two measurements feed the cost model (section 8):

- the same demo traffic through the whole local stack with PipeBatchSize 1 and 10, one pipe poller:
  each function's milliseconds per invocation and the Lambda log bytes per request at both fills.
  A straight line through the two gives fixed + per-record time per function and log bytes per
  batch + per record (the handlers write their summary line and metric blobs once per batch);
- the pipe's fill at a steady arrival rate: Poisson arrivals sent one message at a time (and in
  SendMessageBatch calls gathered over a flush interval), four pollers, no batching window; the
  mean records per execution next to what the batch-fill simulation predicts with this stack's own
  cycle time.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from posting_cli.bench.batch_fill import simulate_fill
from posting_cli.bench.cost_model import FunctionTiming
from posting_cli.bench.pipeline import PIPELINE_OVERRIDES, run_phase
from posting_cli.bench.section import Section, fmt_table, progress
from posting_cli.bench.workload import SEED, booked_stack
from posting_cli.local.template import Template

PROFILE_FILLS = (1, 10)
PROFILE_REQUESTS = 150
FILL_POLLERS = 4  # as `posting local demo`
FILL_RATE_PER_S = 7.6  # 20M postings a month
FILL_SECONDS = 30
FILL_FLUSH_MS = 1000  # the SendMessageBatch variant: a producer flushing once a second


def bench_batch_costs(endpoint: Any) -> Section:
    load_before = [round(load, 2) for load in os.getloadavg()]
    profile = measure_batch_profile(endpoint)
    fill = measure_local_fill(endpoint, profile["cycle_ms"])
    data: dict[str, Any] = {
        "profile": profile,
        "fill": fill,
        "load_average": [load_before, [round(x, 2) for x in os.getloadavg()]],
    }
    return Section(
        key="batch_costs",
        title="7. Per batch and per record: Lambda time and log bytes at fills 1 and 10; the pipe's fill (local)",
        method=(
            "LocalStack from template.yaml on DynamoDB Local + moto, one pipe poller, PipeBatchSize 1 then 10; "
            "posting_cli.demo traffic (fundings first, not counted); LocalLambdaRuntime durations and the Lambda "
            "log file's growth per request; a straight line through the two fills. Fill: Poisson arrivals sent "
            f"by one producer for {FILL_SECONDS} s at {FILL_RATE_PER_S}/s, {FILL_POLLERS} pollers, window 0; "
            "simulate_fill with this stack's cycle time per execution (wall / executions at 1 poller)."
        ),
        data=data,
        lines=[
            *profile_lines(profile),
            *fill_lines(fill),
            f"load average {data['load_average'][0]} before, {data['load_average'][1]} after (a shared machine)",
        ],
    )


def measure_batch_profile(endpoint: Any) -> dict[str, Any]:
    """Handler ms per invocation, log bytes per request and cycle ms per execution, at fills 1 and 10."""
    from posting_cli.demo import Book, Traffic
    from posting_cli.results import ResultCollector

    runs: dict[int, dict[str, Any]] = {}
    for batch_size in PROFILE_FILLS:
        progress(f"batch costs: PipeBatchSize {batch_size}, one poller, {PROFILE_REQUESTS} requests")
        rng = random.Random(SEED)
        book = Book.seed(rng)
        traffic = Traffic(book, rng)
        template = Template.load(overrides={**PIPELINE_OVERRIDES, "PipeBatchSize": batch_size})
        with (
            booked_stack(template, endpoint, book.accounts, prefix="posting-bench-batch-") as stack,
            ResultCollector(stack.target) as collector,
        ):
            funding = traffic.funding()
            run_phase(stack, collector, funding, 4 * batch_size, 1)
            bodies = [traffic.next() for _ in range(PROFILE_REQUESTS)]
            phase = run_phase(stack, collector, bodies, 4 * batch_size, len(funding) + 1)
        batches = phase["pipe"]["batches"] or 1
        runs[batch_size] = {
            "mean_fill": phase["pipe"]["mean_batch_size"],
            "ms_per_invocation": {name: h["ms_per_invocation"] for name, h in phase["handlers"].items()},
            "log_bytes_per_request": phase["lambda_log_bytes_per_request"],
            "cycle_ms": round(phase["wall_s"] * 1000 / batches, 1),
            "statuses": phase["statuses"],
        }
    low, high = (runs[fill] for fill in PROFILE_FILLS)
    fill_low, fill_high = low["mean_fill"] or 1.0, high["mean_fill"] or 10.0
    timings = {
        name: FunctionTiming.from_two_fills(fill_low, low_ms or 0.0, fill_high, high["ms_per_invocation"][name] or 0.0)
        for name, low_ms in low["ms_per_invocation"].items()
        if low_ms and high["ms_per_invocation"].get(name)  # invoked at both fills: the workflow's tasks
    }
    per_batch, per_record = log_bytes_line(
        fill_low, low["log_bytes_per_request"], fill_high, high["log_bytes_per_request"]
    )
    cycle = FunctionTiming.from_two_fills(fill_low, low["cycle_ms"], fill_high, high["cycle_ms"])
    return {
        "runs": {str(fill): run for fill, run in runs.items()},
        "functions": {
            name: {"fixed_ms": round(t.fixed_ms, 2), "per_record_ms": round(t.per_record_ms, 2)}
            for name, t in timings.items()
        },
        "log_bytes_per_batch": round(per_batch, 1),
        "log_bytes_per_record": round(per_record, 1),
        "cycle_ms": {"fixed_ms": round(cycle.fixed_ms, 1), "per_record_ms": round(cycle.per_record_ms, 2)},
    }


def log_bytes_line(fill_a: float, bytes_a: float, fill_b: float, bytes_b: float) -> tuple[float, float]:
    """(bytes per batch, bytes per record) from bytes per request at two fills: bytes/request = B/fill + R."""
    per_batch = max(0.0, (bytes_a - bytes_b) / (1 / fill_a - 1 / fill_b))
    return per_batch, max(0.0, bytes_a - per_batch / fill_a)


def measure_local_fill(endpoint: Any, cycle: dict[str, float]) -> dict[str, Any]:
    """Mean records per execution at FILL_RATE_PER_S, sending alone and in one-second SendMessageBatch calls."""
    from posting_cli.demo import Book, Traffic
    from posting_cli.results import ResultCollector

    results: dict[str, Any] = {}
    for label, flush_ms in (("SendMessage", 0.0), (f"SendMessageBatch, {FILL_FLUSH_MS:.0f} ms flush", FILL_FLUSH_MS)):
        progress(f"batch fill: {FILL_RATE_PER_S}/s for {FILL_SECONDS} s, {label}, {FILL_POLLERS} pollers")
        rng = random.Random(SEED)
        book = Book.seed(rng)
        traffic = Traffic(book, rng)
        with booked_stack(
            Template.load(overrides=PIPELINE_OVERRIDES),
            endpoint,
            book.accounts,
            pollers=FILL_POLLERS,
            prefix="posting-bench-fill-",
        ) as stack:
            with ResultCollector(stack.target) as collector:
                run_phase(stack, collector, traffic.funding(), 100, 1)
            executions_ms = time_executions(stack.pipes[0])
            stats = stack.pipes[0].stats
            batches, records, deleted = stats.batches, stats.records, stats.deleted
            sent = paced_send(
                stack.target, traffic, rng, rate=FILL_RATE_PER_S, seconds=FILL_SECONDS, flush_s=flush_ms / 1000
            )
            deadline = time.monotonic() + 60
            while stats.deleted - deleted < sent and time.monotonic() < deadline:
                time.sleep(0.2)
            executions, handled = stats.batches - batches, stats.records - records
        # The simulation runs with the executions as long as they were in this run: four pollers share one
        # GIL here, so an execution takes longer than with one poller.
        measured = executions_ms[-executions:] if executions else []
        execution_ms = sum(measured) / len(measured) if measured else cycle["fixed_ms"] + cycle["per_record_ms"]
        simulated = simulate_fill(
            FILL_RATE_PER_S,
            pollers=FILL_POLLERS,
            batch_size=10,
            window_s=0,
            workflow_ms=constant(execution_ms),
            producer_flush_ms=flush_ms,
        )
        results[label] = {
            "sent": sent,
            "executions": executions,
            "records": handled,
            "mean_fill": round(handled / executions, 3) if executions else None,
            "execution_ms": round(execution_ms, 1),
            "simulated_fill": round(simulated.mean_fill, 3),
        }
    return {"rate_per_s": FILL_RATE_PER_S, "pollers": FILL_POLLERS, "seconds": FILL_SECONDS, "runs": results}


def constant(ms: float) -> Callable[[int], float]:
    """A workflow time that does not depend on the records (what one run measured on average)."""
    return lambda _records: ms


def time_executions(pipe: Any) -> list[float]:
    """Wall ms of every StartSyncExecution the pipe makes from now on (botocore's call events)."""
    durations: list[float] = []
    events = pipe._sfn.meta.events  # the pipe's own Step Functions client

    def before(context: dict[str, Any], **_: Any) -> None:
        context["bench_started"] = time.perf_counter()

    def after(context: dict[str, Any], **_: Any) -> None:
        if "bench_started" in context:
            durations.append((time.perf_counter() - context["bench_started"]) * 1000)

    events.register("before-call.sfn.StartSyncExecution", before)
    events.register("after-call.sfn.StartSyncExecution", after)
    return durations


def paced_send(target: Any, traffic: Any, rng: random.Random, *, rate: float, seconds: float, flush_s: float) -> int:
    """Send Poisson arrivals for `seconds`: each at once, or gathered per `flush_s` into batch calls."""
    from posting_cli import operations

    began = time.monotonic()
    arrivals, moment = [], 0.0
    while True:
        moment += rng.expovariate(rate)
        if moment > seconds:
            break
        arrivals.append(moment)
    sent = 0
    pending: list[str] = []
    flush_at = flush_s
    for moment in arrivals:
        if flush_s > 0 and moment > flush_at:
            _sleep_until(began + flush_at)
            operations.submit(target, pending)
            sent, pending = sent + len(pending), []
            flush_at = (int(moment / flush_s) + 1) * flush_s
        if flush_s > 0:
            pending.append(traffic.next())
            continue
        _sleep_until(began + moment)
        operations.submit(target, [traffic.next()])
        sent += 1
    if pending:
        _sleep_until(began + flush_at)
        operations.submit(target, pending)
        sent += len(pending)
    return sent


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def profile_lines(profile: dict[str, Any]) -> list[str]:
    runs = profile["runs"]
    fills = list(runs)
    rows = [
        [name]
        + [f"{runs[fill]['ms_per_invocation'].get(name) or 0:,.1f}" for fill in fills]
        + [f"{timing['fixed_ms']:,.1f}", f"{timing['per_record_ms']:,.2f}"]
        for name, timing in profile["functions"].items()
    ]
    rows.append(
        ["Lambda log bytes per request"]
        + [f"{runs[fill]['log_bytes_per_request']:,}" for fill in fills]
        + [f"{profile['log_bytes_per_batch']:,.0f} /batch", f"{profile['log_bytes_per_record']:,.1f} /record"]
    )
    rows.append(
        ["cycle per execution (1 poller)"]
        + [f"{runs[fill]['cycle_ms']:,.1f}" for fill in fills]
        + [f"{profile['cycle_ms']['fixed_ms']:,.1f}", f"{profile['cycle_ms']['per_record_ms']:,.2f}"]
    )
    header = ["ms per invocation", *(f"fill {runs[fill]['mean_fill']}" for fill in fills), "fixed", "per record"]
    return [
        *fmt_table(header, rows),
        "in-process wall time (moto and the handlers under one GIL): an upper bound for Lambda's dedicated vCPU.",
    ]


def fill_lines(fill: dict[str, Any]) -> list[str]:
    rows = [
        [label, run["sent"], run["executions"], f"{run['execution_ms']:,.0f}", run["mean_fill"], run["simulated_fill"]]
        for label, run in fill["runs"].items()
    ]
    return [
        f"the pipe's fill at {fill['rate_per_s']}/s, {fill['pollers']} pollers, no batching window "
        f"({fill['seconds']} s of Poisson arrivals):",
        *fmt_table(["producer", "sent", "executions", "ms per execution", "mean fill", "simulated"], rows),
    ]
