"""The engine's own speed: plain 3-item TransactWriteItems on DynamoDB Local from 8 threads.

The yardstick for the whole local pipeline's throughput (target: at least 0.7x of this, same run).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from posting.adapters.ledger_keys import KEY_NAMES, account_key, posting_key
from posting.handlers.config import AWS_CLIENT_CONFIG
from posting_cli.bench.cpu import CpuClock
from posting_cli.bench.section import progress
from posting_cli.bench.workload import SEED, create_ledger_table

BASELINE_THREADS = 8
BASELINE_ACCOUNTS = 1_000
BASELINE_TRANSACTIONS_PER_THREAD = 60
BASELINE_WARMUP_PER_THREAD = 10


def transaction(table: str, payer: str, payee: str) -> list[dict[str, Any]]:
    """A posting put (never twice) and two balance updates, the payer's conditional."""
    return [
        {
            "Put": {
                "TableName": table,
                "Item": posting_key(str(uuid.uuid4())) | {"amount": {"N": "1250"}},
                "ConditionExpression": f"attribute_not_exists({KEY_NAMES[0]})",
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": account_key(payer),
                "UpdateExpression": "ADD balance :minus, version :one",
                "ConditionExpression": f"attribute_exists({KEY_NAMES[0]})",
                "ExpressionAttributeValues": {":minus": {"N": "-1250"}, ":one": {"N": "1"}},
            }
        },
        {
            "Update": {
                "TableName": table,
                "Key": account_key(payee),
                "UpdateExpression": "ADD balance :plus, version :one",
                "ExpressionAttributeValues": {":plus": {"N": "1250"}, ":one": {"N": "1"}},
            }
        },
    ]


def bench_dynamodb_baseline(endpoint: Any) -> dict[str, Any]:
    """Transactions per second from BASELINE_THREADS threads on BASELINE_ACCOUNTS accounts."""
    progress(f"baseline: raw 3-item TransactWriteItems, {BASELINE_THREADS} threads")
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    table = create_ledger_table(client)
    accounts = [f"acc-raw-{n:05d}" for n in range(BASELINE_ACCOUNTS)]
    try:
        for start in range(0, len(accounts), 25):
            client.batch_write_item(
                RequestItems={
                    table: [
                        {"PutRequest": {"Item": account_key(a) | {"balance": {"N": "0"}}}}
                        for a in accounts[start : start + 25]
                    ]
                }
            )
        failures: list[str] = []
        lock = threading.Lock()

        def worker(thread: int, count: int) -> None:
            rng = random.Random(SEED + thread)
            for _ in range(count):
                payer, payee = rng.sample(accounts, 2)
                try:
                    client.transact_write_items(TransactItems=transaction(table, payer, payee))
                except client.exceptions.TransactionCanceledException as error:
                    with lock:
                        failures.append(str(error)[:80])

        def run(count: int) -> float:
            with ThreadPoolExecutor(max_workers=BASELINE_THREADS) as pool:
                began = time.perf_counter()
                for future in [pool.submit(worker, t, count) for t in range(BASELINE_THREADS)]:
                    future.result()
                return time.perf_counter() - began

        run(BASELINE_WARMUP_PER_THREAD)
        before = CpuClock.now(endpoint)
        wall = run(BASELINE_TRANSACTIONS_PER_THREAD)
        cpu = before.per_unit_ms(CpuClock.now(endpoint), BASELINE_THREADS * BASELINE_TRANSACTIONS_PER_THREAD)
    finally:
        client.delete_table(TableName=table)
    transactions = BASELINE_THREADS * BASELINE_TRANSACTIONS_PER_THREAD
    return {
        "threads": BASELINE_THREADS,
        "accounts": BASELINE_ACCOUNTS,
        "transactions": transactions,
        "wall_s": round(wall, 2),
        "transactions_per_s": round(transactions / wall, 1),
        "cancelled": len(failures),
        "cpu_ms_per_transaction": cpu,
        "method": "3-item TransactWriteItems (conditional put + 2 ADD updates) on random account pairs, boto3 client "
        f"with the handlers' config, {BASELINE_WARMUP_PER_THREAD} warm-up transactions per thread first; single run; "
        "CPU ms per transaction: this process (process_time) and the DynamoDB Local JVM (/proc/<pid>/stat)",
    }
