"""5. Memory: post_batch over 1,000 postings in a fresh process."""

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
from posting_cli.bench.section import Section, progress
from posting_cli.bench.workload import (
    SEED,
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


def bench_memory(endpoint: Any) -> Section:
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
    ]
    return Section(
        key="memory",
        title=f"5. Memory of post_batch over {MEMORY_BATCHES * MEMORY_BATCH_SIZE:,} postings (single run)",
        method=(
            "child process: import posting.handlers.post, open a client and the accounts, post one warm-up batch, "
            f"read ru_maxrss; then {MEMORY_BATCHES} x post_batch(validate_batch(10 records), workers=PostWorkers) on "
            "DynamoDB Local; ru_maxrss (peak) and /proc VmRSS (current) after; tracemalloc peak over one extra batch."
        ),
        data={"result": result},
        lines=lines,
    )


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
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    posted = 0
    for _ in range(MEMORY_BATCHES):
        result = post_batch(validate_batch(batch()), ledger, workers=workers)
        posted += sum(1 for item in result.items if item.outcome is not None)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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


def current_rss_kb() -> int | None:
    """Resident set size now (Linux /proc); ru_maxrss only knows the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(memory_child())
