"""3. Ledger on DynamoDB Local: post_item, with and without contention."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from posting.adapters.ledger_table import LedgerTable
from posting.domain.outcomes import ConcurrentUpdate
from posting.handlers.config import AWS_CLIENT_CONFIG
from posting.steps.post import MAX_ATTEMPTS, post_item
from posting.steps.validate import validate_record
from posting_cli.bench.item_sizes import measure_stored_sizes
from posting_cli.bench.section import Section, fmt_table, percentile, progress
from posting_cli.bench.workload import (
    create_ledger_table,
    open_unlimited_accounts,
    posting_id,
    sqs_record,
    two_leg_body,
)

LEDGER_REPEATS = 3
LEDGER_WARMUP_POSTINGS = 60
LEDGER_ACCOUNTS_PER_THREAD = 20
LEDGER_SCENARIOS = (
    # name, threads, postings per thread per repeat, all credits on one hot account?
    ("distinct accounts", 1, 150, False),
    ("distinct accounts", 4, 75, False),
    ("one hot account", 4, 50, True),
)
HOT_ACCOUNT = "acc-hot-settlement"


class CountingClient:
    """A boto3 client that counts the API calls made through it (thread-safe); everything else passes through."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


class CountingLedger:
    """The real ledger, wrapped: it counts what became of each transaction (committed, ConcurrentUpdate,
    ...) and the calls its client made; everything else goes straight to the ledger."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.counting_client = CountingClient(client)
        self.ledger = LedgerTable(self.counting_client, table_name)
        self.outcomes: Counter[str] = Counter()
        self.cancellations: Counter[str] = Counter()  # ConcurrentUpdate by cancellation reason codes
        self._count_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ledger, name)

    def record_posting(self, *args: Any, **kwargs: Any) -> Any:
        try:
            decision = self.ledger.record_posting(*args, **kwargs)
        except Exception as error:
            with self._count_lock:
                self.outcomes[type(error).__name__] += 1
                if isinstance(error, ConcurrentUpdate):
                    self.cancellations[str(error)] += 1
            raise
        with self._count_lock:
            self.outcomes["committed"] += 1
        return decision

    def reset_counts(self) -> None:
        self.outcomes.clear()
        self.cancellations.clear()
        self.counting_client.calls.clear()


def thread_accounts(thread: int) -> list[str]:
    return [f"acc-t{thread}-{n:04d}" for n in range(LEDGER_ACCOUNTS_PER_THREAD)]


def scenario_bodies(threads: int, per_thread: int, hot: bool) -> list[list[str]]:
    """Per thread, its postings: between its own accounts, or from its own accounts to the hot one."""
    work = []
    for thread in range(threads):
        own = thread_accounts(thread)
        bodies = []
        for n in range(per_thread):
            payee = HOT_ACCOUNT if hot else own[(n + 1) % len(own)]
            bodies.append(two_leg_body(posting_id(), own[n % len(own)], payee))
        work.append(bodies)
    return work


def run_postings(ledger: Any, work: list[list[str]]) -> dict[str, Any]:
    """Each thread posts its own list in order; returns the wall time, latencies and outcomes."""
    items = [[validate_record(sqs_record(body)) for body in bodies] for bodies in work]  # validation is not timed
    latencies_ms: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(items) + 1)

    def worker(mine: list[Any]) -> None:
        start.wait()
        for item in mine:
            began = time.perf_counter()
            result = post_item(item, ledger)
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                latencies_ms.append(elapsed)
                if result.outcome is not None:
                    statuses[str(result.outcome.status)] += 1
                else:
                    statuses[f"undecided ({result.failure.error if result.failure else '?'})"] += 1

    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures = [pool.submit(worker, mine) for mine in items]
        start.wait()
        began = time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - began
    return {"wall_s": wall, "latencies_ms": latencies_ms, "statuses": statuses}


def bench_ledger(endpoint: Any) -> tuple[Section, dict[str, Any]]:
    """Returns the section, and the stored sizes of real postings for the cost model."""
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    scenarios: list[dict[str, Any]] = []
    sizes: dict[str, Any] = {}
    for name, threads, per_thread, hot in LEDGER_SCENARIOS:
        progress(f"ledger: {name}, {threads} thread(s)")
        table = create_ledger_table(client)
        try:
            ledger = CountingLedger(client, table)
            open_unlimited_accounts(ledger, [a for t in range(threads) for a in thread_accounts(t)])
            if hot:
                open_unlimited_accounts(ledger, [HOT_ACCOUNT])
            # Warm-up: the JVM's JIT and the connection pool, not measured.
            run_postings(ledger, scenario_bodies(threads, max(1, LEDGER_WARMUP_POSTINGS // threads), hot))
            ledger.reset_counts()
            runs = [run_postings(ledger, scenario_bodies(threads, per_thread, hot)) for _ in range(LEDGER_REPEATS)]
            if not hot and threads == 1:
                sizes = measure_stored_sizes(ledger, client, table)
        finally:
            client.delete_table(TableName=table)
        postings = threads * per_thread
        statuses: Counter[str] = sum((run["statuses"] for run in runs), Counter())
        decided = statuses["POSTED"]
        rates = [run["statuses"]["POSTED"] / run["wall_s"] for run in runs]
        latencies = [latency for run in runs for latency in run["latencies_ms"]]
        attempts = sum(ledger.outcomes.values())
        scenarios.append(
            {
                "scenario": name,
                "threads": threads,
                "postings_per_repeat": postings,
                "repeats": LEDGER_REPEATS,
                "postings_per_s_median": round(statistics.median(rates), 1),
                "postings_per_s_repeats": [round(rate, 1) for rate in rates],
                "latency_ms_p50": round(percentile(latencies, 0.50), 1),
                "latency_ms_p95": round(percentile(latencies, 0.95), 1),
                "latency_ms_max": round(max(latencies), 1),
                "statuses": dict(statuses),
                "record_posting_outcomes": dict(ledger.outcomes),
                "concurrent_update_cancellation_codes": dict(ledger.cancellations),
                "transaction_attempts_per_posted": round(attempts / decided, 3) if decided else None,
                "dynamodb_calls": dict(ledger.counting_client.calls),
                "dynamodb_calls_per_posted": (
                    round(sum(ledger.counting_client.calls.values()) / decided, 2) if decided else None
                ),
            }
        )
    rows = []
    for s in scenarios:
        rates = s["postings_per_s_repeats"]
        undecided = sum(n for status, n in s["statuses"].items() if status.startswith("undecided"))
        rows.append(
            [
                s["scenario"],
                s["threads"],
                f"{s['postings_per_s_median']:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})",
                f"{s['latency_ms_p50']:.1f}",
                f"{s['latency_ms_p95']:.1f}",
                f"{s['transaction_attempts_per_posted']:.2f}",
                f"{s['dynamodb_calls_per_posted']:.2f}",
                undecided,
            ]
        )
    contended = scenarios[-1]
    conflicts = {k: v for k, v in contended["record_posting_outcomes"].items() if k != "committed"}
    lines = [
        *fmt_table(
            [
                "scenario",
                "threads",
                "postings/s (min-max)",
                "p50 ms",
                "p95 ms",
                "txn tries/posting",
                "DDB calls/posting",
                "undecided",
            ],
            rows,
        ),
        f"hot account: {contended['record_posting_outcomes'].get('committed', 0)} transactions committed, "
        + (", ".join(f"{n} {kind}" for kind, n in sorted(conflicts.items())) or "no conflicts")
        + " (each one re-read and re-planned by post_item, with jittered backoff);",
        "distinct cancellation reason codes per cancelled transaction: "
        + (
            ", ".join(f"[{codes}] x{n}" for codes, n in contended["concurrent_update_cancellation_codes"].items())
            or "none"
        )
        + ". Here a lost race shows as",
        "a failed version condition; DynamoDB itself may also answer TransactionConflict (retried the same way).",
        f"undecided = still failing after post_item's {MAX_ATTEMPTS} attempts: on AWS such a record goes back to "
        "the queue.",
    ]
    section = Section(
        key="ledger",
        title=(
            "3. Ledger on DynamoDB Local: post_item (BatchGetItem + TransactWriteItems), "
            f"median of {LEDGER_REPEATS} repeats"
        ),
        method=(
            "post_item on validated items against DynamoDB Local on loopback (boto3 client with the handlers' "
            "config), each thread posting its own list in order; postings/s = POSTED / wall time per repeat "
            f"(median of {LEDGER_REPEATS}); latency = wall time of each post_item call (retries and backoff "
            f"included), pooled over repeats, nearest rank. {LEDGER_WARMUP_POSTINGS} warm-up postings first. "
            "Conflicts counted by a wrapper around the ledger's record_posting; calls by a client wrapper. "
            "Accounts have no overdraft limit; each table is fresh and dropped afterwards."
        ),
        data={"scenarios": scenarios},
        lines=lines,
    )
    return section, sizes
