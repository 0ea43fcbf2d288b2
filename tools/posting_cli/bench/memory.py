"""5. Memory and CPU: post_batch over 1,000 postings in a fresh process; each handler's CPU time and
peak memory per invocation, in a fresh process running the three steps of the workflow.

Lambda gives a function CPU in proportion to its memory (one vCPU at 1,769 MB), so what memory costs
depends on how much of an invocation is CPU and how much is waiting on DynamoDB, EventBridge and SQS.
The handlers' CPU milliseconds per invocation, measured here, feed the cost model's choice of memory.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from posting.adapters.ledger_table import LedgerTable
from posting.handlers.config import AWS_CLIENT_CONFIG
from posting.steps.post import post_batch
from posting.steps.validate import validate_batch
from posting_cli.bench.section import Section, fmt_table, progress
from posting_cli.bench.workload import (
    SEED,
    booked_stack,
    create_ledger_table,
    open_unlimited_accounts,
    posting_id,
    sqs_record,
    two_leg_body,
)
from posting_cli.local.template import Template

MEMORY_BATCHES = 100
MEMORY_BATCH_SIZE = 10
MEMORY_ACCOUNTS = 100
HANDLER_FILLS = (1, 10)
HANDLER_BATCHES = {1: 60, 10: 12}  # invocations measured per fill, after a warm-up batch
HANDLER_STEPS = ("Validate", "Post", "Emit")


def bench_memory(endpoint: Any) -> Section:
    handlers = measure_handler_costs(endpoint)
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    table = create_ledger_table(client)
    progress(f"memory: post_batch over {MEMORY_BATCHES * MEMORY_BATCH_SIZE} postings in a child process")
    try:
        environment = os.environ | {
            "BENCH_DYNAMODB_ENDPOINT": endpoint.endpoint_url,
            "BENCH_TABLE": table,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        done = subprocess.run(
            [sys.executable, "-m", "posting_cli.bench.memory"],
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        client.delete_table(TableName=table)
    mb = 1024
    lines = [
        f"peak RSS after importing the post handler, opening the client and one warm-up batch: "
        f"{result['baseline_peak_rss_kb'] / mb:.0f} MB",
        f"peak RSS after {result['postings']} postings ({MEMORY_BATCHES} batches of {MEMORY_BATCH_SIZE}, "
        f"{result['workers']} workers): {result['peak_rss_kb'] / mb:.0f} MB "
        f"(+{(result['peak_rss_kb'] - result['baseline_peak_rss_kb']) / mb:.1f} MB; current RSS "
        f"{result['current_rss_kb'] / mb:.0f} MB)",
        f"tracemalloc peak of one more batch of {MEMORY_BATCH_SIZE}: {result['tracemalloc_batch_peak_kb']:,.0f} KB "
        f"(Python allocations only); {result['postings_per_s']:,.0f} postings/s in the child",
        f"the post function has MemorySize {result_memory_size()} MB: memory is not the constraint (single run).",
        *handler_lines(handlers),
    ]
    return Section(
        key="memory",
        title=f"5. Memory of post_batch over {MEMORY_BATCHES * MEMORY_BATCH_SIZE:,} postings, and each handler's "
        "CPU and memory per invocation (single run)",
        method=(
            "child process: import posting.handlers.post, open a client and the accounts, post one warm-up batch, "
            f"read the peak RSS; then {MEMORY_BATCHES} x post_batch(validate_batch(10 records), workers=PostWorkers) "
            "on DynamoDB Local; the peak (/proc VmHWM, not ru_maxrss, which Linux carries over from the parent) and "
            "the current RSS (VmRSS) after; tracemalloc peak over one extra batch. "
            "Handlers: the local stack from template.yaml (DynamoDB Local, moto) in this process, the three handlers "
            "in a child process with the functions' environment, called in turn as the workflow calls them on the "
            f"demo's traffic ({', '.join(f'{HANDLER_BATCHES[f]} batches of {f}' for f in HANDLER_FILLS)} after a "
            "warm-up): wall and CPU time (process_time, every thread) per invocation, the child's peak RSS (VmHWM)."
        ),
        data={"result": result, "handlers": handlers},
        lines=lines,
    )


def measure_handler_costs(endpoint: Any) -> dict[str, Any]:
    """Each step's wall and CPU ms per invocation at fills 1 and 10, and the peak RSS of a process
    running all three: the engines in this process, the handlers alone in a child."""
    from posting_cli.demo import Book

    progress("memory: the workflow's three handlers in a child process, CPU and wall time per invocation")
    book = Book.seed(random.Random(SEED))
    with booked_stack(Template.load(), endpoint, book.accounts, prefix="posting-bench-handlers-") as stack:
        environment = {
            **os.environ,
            **stack.runtime.merged_environment(),
            "AWS_ENDPOINT_URL": stack.target.endpoints["default"],
            "AWS_ENDPOINT_URL_DYNAMODB": stack.target.endpoints["dynamodb"],
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        done = subprocess.run(
            [sys.executable, "-m", "posting_cli.bench.memory", "handlers"],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the handlers' child process failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def handler_costs_child() -> int:
    """Runs in the child process of measure_handler_costs; prints one JSON line."""
    import contextlib
    import io

    from posting.handlers import emit, post, validate
    from posting_cli.demo import Book, Traffic
    from posting_cli.local.lambdas import LambdaContext, LocalFunction

    imported_kb = peak_rss_kb()
    handlers = {"Validate": validate.handler, "Post": post.handler, "Emit": emit.handler}
    functions = {
        name: LocalFunction(name, f"bench-{name}", f"posting.handlers.{name.lower()}.handler", 60, 512, {})
        for name in HANDLER_STEPS
    }
    rng = random.Random(SEED)
    traffic = Traffic(Book.seed(rng), rng)
    sink = io.StringIO()  # the handlers' log and metric lines: counted by the pipeline section, not here

    def workflow(bodies: list[str]) -> dict[str, tuple[float, float]]:
        """(wall ms, CPU ms) of each step over one batch, called as the workflow calls them."""
        spent: dict[str, tuple[float, float]] = {}
        event: Any = [sqs_record(body) for body in bodies]
        for name in HANDLER_STEPS:
            wall, cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stdout(sink):
                event = handlers[name](event, LambdaContext(functions[name]))
            spent[name] = ((time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000)
            sink.seek(0)
            sink.truncate()
        return spent

    funding = traffic.funding()
    for start in range(0, len(funding), 10):
        workflow(funding[start : start + 10])  # warm-up: clients, connection pools, the accounts funded
    fills: dict[str, Any] = {}
    for fill in HANDLER_FILLS:
        totals = {name: [0.0, 0.0] for name in HANDLER_STEPS}
        for _ in range(HANDLER_BATCHES[fill]):
            for name, (wall, cpu) in workflow([traffic.next() for _ in range(fill)]).items():
                totals[name][0] += wall
                totals[name][1] += cpu
        fills[str(fill)] = {
            name: {"wall_ms": round(wall / HANDLER_BATCHES[fill], 2), "cpu_ms": round(cpu / HANDLER_BATCHES[fill], 2)}
            for name, (wall, cpu) in totals.items()
        }
    print(
        json.dumps(
            {
                "fills": fills,
                "rss_after_import_kb": imported_kb,
                "peak_rss_kb": peak_rss_kb(),
                "current_rss_kb": current_rss_kb(),
            }
        )
    )
    return 0


def handler_lines(handlers: dict[str, Any]) -> list[str]:
    fills = handlers["fills"]
    rows = [
        [name]
        + [f"{fills[fill][name]['wall_ms']:,.1f} / {fills[fill][name]['cpu_ms']:,.1f}" for fill in fills]
        + [f"{cpu_share(fills, name):.0%}"]
        for name in HANDLER_STEPS
    ]
    mb = 1024
    return [
        "each step of the workflow in one child process (wall / CPU ms per invocation, CPU of every thread):",
        *fmt_table(["step", *(f"fill {fill}" for fill in fills), "CPU share"], rows),
        f"the child's peak RSS {handlers['peak_rss_kb'] / mb:.0f} MB (after importing the three handlers "
        f"{handlers['rss_after_import_kb'] / mb:.0f} MB, current {(handlers['current_rss_kb'] or 0) / mb:.0f} MB): "
        "one Lambda function holds one handler, so each needs less.",
    ]


def cpu_share(fills: dict[str, Any], name: str) -> float:
    """CPU ms over wall ms of a step, over both fills."""
    wall = sum(fills[fill][name]["wall_ms"] for fill in fills)
    return sum(fills[fill][name]["cpu_ms"] for fill in fills) / wall if wall else 0.0


def result_memory_size() -> int:
    return int(Template.load().function_setting("PostFunction", "MemorySize"))


def memory_child() -> int:
    """Runs in the child process of bench_memory; prints one JSON line."""
    import tracemalloc

    import boto3

    import posting.handlers.post  # noqa: F401 - the post function's imports are part of its memory

    workers = int(Template.load().parameters["PostWorkers"])
    client = boto3.client(
        "dynamodb",
        endpoint_url=os.environ["BENCH_DYNAMODB_ENDPOINT"],
        region_name="us-east-1",
        config=AWS_CLIENT_CONFIG,
    )
    ledger = LedgerTable(client, os.environ["BENCH_TABLE"])
    accounts = [f"acc-m-{n:04d}" for n in range(MEMORY_ACCOUNTS)]
    open_unlimited_accounts(ledger, accounts)
    rng = random.Random(SEED)

    def batch() -> list[dict[str, Any]]:
        pairs = [rng.sample(accounts, 2) for _ in range(MEMORY_BATCH_SIZE)]
        return [sqs_record(two_leg_body(posting_id(), payer, payee)) for payer, payee in pairs]

    post_batch(validate_batch(batch()), ledger, workers=workers)  # warm-up: connection pool, lazy imports
    baseline = peak_rss_kb()
    began = time.perf_counter()
    posted = 0
    for _ in range(MEMORY_BATCHES):
        result = post_batch(validate_batch(batch()), ledger, workers=workers)
        posted += sum(1 for item in result.items if item.outcome is not None)
    elapsed = time.perf_counter() - began
    peak = peak_rss_kb()
    tracemalloc.start()
    post_batch(validate_batch(batch()), ledger, workers=workers)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "postings": MEMORY_BATCHES * MEMORY_BATCH_SIZE,
                "decided": posted,
                "workers": workers,
                "baseline_peak_rss_kb": baseline,
                "peak_rss_kb": peak,
                "current_rss_kb": current_rss_kb(),
                "tracemalloc_batch_peak_kb": traced_peak / 1024,
                "postings_per_s": posted / elapsed,
            }
        )
    )
    return 0


def peak_rss_kb() -> int:
    """This process's own peak resident set (Linux /proc VmHWM). Not ru_maxrss: Linux carries a
    parent's peak across fork and exec into the child's ru_maxrss, so a child of a large process
    would report the parent's size (measured: 313 MB for an empty interpreter started by one)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb() -> int | None:
    """Resident set size now (Linux /proc VmRSS)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(handler_costs_child() if sys.argv[1:] == ["handlers"] else memory_child())
