"""`make bench`: how fast, how big and how costly the posting pipeline is, measured on this machine.

    .venv/bin/python -m posting_cli.bench [--postings 600]

Eight sections, numbered in the order they run, each printed as it finishes and written together as
JSON to bench-results/<UTC timestamp>.json, with the machine and the method behind every number, and as
Markdown with charts to bench-results/ and docs/bench/README.md:

1. domain        the pure functions per posting (parse, content hash, plan), timeit, 2 and 10 legs
2. cold start    a fresh interpreter per handler module: import time, first clients and peak RSS
3. ledger        post_item on DynamoDB Local: 1 and 4 threads on distinct accounts, 4 threads on one
                 hot account (conflicts and retries counted), latency per posting
4. contention    under DynamoDB's conflict rule (the strict local engine), through the local pipeline:
                 hot settlement vs spread traffic, funding bursts, a busy limited account at 8 writers;
                 and what one settlement account and one limited account carry on AWS
5. memory        peak RSS of post_batch over 1,000 postings, in a fresh process; each handler's CPU
                 and wall time per invocation and the peak RSS of the three, in a fresh process
6. pipeline      the whole local stack (template.yaml on DynamoDB Local + moto, handlers in-process):
                 throughput at saturation against raw DynamoDB Local transactions, latency enqueue ->
                 result event at a small in-flight window, CPU per request
7. batch costs   Lambda time and log bytes per batch and per record (fills 1 and 10), and the pipe's
                 batch fill at 7.6/s, on the local stack
8. cost          dollars per million postings on AWS at 20M/month and at 1,111/s, for spread, hot and
                 demo traffic, from the measurements above (pure arithmetic, unit-tested in
                 tests/unit/test_bench_cost_model.py; `make cost` prints it from the committed inputs)

Speed targets live here, never in unit tests: this machine is shared and noisy, so every number is
a measurement of this run, not a property of the code. Sections 1 to 6 say nothing about latency on
AWS; section 7 is a model, not a bill.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from posting_cli.bench.batch_costs import bench_batch_costs
from posting_cli.bench.cold_start import bench_cold_start
from posting_cli.bench.contention import bench_contention
from posting_cli.bench.cost import bench_cost
from posting_cli.bench.domain import bench_domain
from posting_cli.bench.dynamodb_baseline import bench_dynamodb_baseline
from posting_cli.bench.ledger import bench_ledger
from posting_cli.bench.memory import bench_memory
from posting_cli.bench.pipeline import bench_pipeline
from posting_cli.bench.report import machine_info, write_json, write_markdown
from posting_cli.bench.section import ROOT, Section, progress


@contextmanager
def dynamodb_local(log_dir: Path) -> Iterator[Any]:
    from posting_cli.local.dynamodb_local import attach_or_start

    with attach_or_start(log_dir=log_dir) as endpoint:
        yield endpoint


def _apply_dynamodb_options(tau_ms: float | None, lenient: bool) -> None:
    """The flags become the environment, which attach_or_start (and every child process) reads."""
    from posting_cli.local.strict_dynamodb import ENV_STRICT, ENV_TAU_MS, StrictRules

    if tau_ms is not None:
        os.environ[ENV_TAU_MS] = repr(StrictRules(tau_ms=tau_ms).tau_ms)
    if lenient:
        os.environ[ENV_STRICT] = "0"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m posting_cli.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--postings", type=int, default=600, help="requests per pipeline phase (default 600)")
    parser.add_argument(
        "--dynamodb-tau-ms", type=float, metavar="MS", help="τ of the DynamoDB conflict rules (default 20)"
    )
    parser.add_argument(
        "--lenient-dynamodb", action="store_true", help="switch the DynamoDB conflict rules off (debugging only)"
    )
    args = parser.parse_args(argv)
    _apply_dynamodb_options(args.dynamodb_tau_ms, args.lenient_dynamodb)

    began = time.monotonic()
    stamp = datetime.now(UTC)
    machine = machine_info()
    print(f"posting pipeline benchmark, {stamp:%Y-%m-%d %H:%M:%S} UTC")
    print(
        f"machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
        f"load average {machine['load_average_at_start']} at start (a shared, noisy machine: re-run before quoting)"
    )
    sections: list[Section] = []

    def done(section: Section) -> None:
        sections.append(section)
        section.print()

    progress("domain")
    done(bench_domain())
    cold_start = bench_cold_start()
    done(cold_start)
    with tempfile.TemporaryDirectory(prefix="posting-bench-ddb-") as logs, dynamodb_local(Path(logs)) as endpoint:
        ledger, sizes = bench_ledger(endpoint)
        done(ledger)
        hot_accounts = bench_contention(endpoint)
        done(hot_accounts)
        memory = bench_memory(endpoint)
        done(memory)
        baseline = bench_dynamodb_baseline(endpoint)
        pipeline = bench_pipeline(endpoint, args.postings, baseline)
        done(pipeline)
        batch_costs = bench_batch_costs(endpoint)
        done(batch_costs)
    done(
        bench_cost(
            sizes,
            pipeline=pipeline.data,
            ledger=ledger.data,
            cold_start=cold_start.data,
            hot_accounts=hot_accounts.data,
            batch_costs=batch_costs.data,
            memory=memory.data,
        )
    )

    total_s = time.monotonic() - began
    machine["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    path = write_json(stamp, total_s, machine, sections)
    print(f"\ntotal runtime {total_s:,.0f} s; load average at end {machine['load_average_at_end']}")
    reports = write_markdown(stamp, total_s, machine, sections, path)
    print(f"results: {path.relative_to(ROOT)}; report: {', '.join(str(r.relative_to(ROOT)) for r in reports)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
