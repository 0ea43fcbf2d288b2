"""Sixteen writers on one shared item: on DynamoDB Local alone none is ever cancelled; under the rules some are.

The measurement behind the strict layer, as a test: every thread runs TransactWriteItems (an ADD on
one shared item plus a Put of a new item) for a few seconds. The counts vary from run to run; what
may not vary is that conflicts happen at the default τ, and that every committed transaction, and
only those, reached the shared item.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config

from posting_cli.local.dynamodb_local import ExternalDynamoDB
from posting_cli.local.strict_dynamodb import DEFAULT_TAU_MS, StrictDynamoDB, StrictRules

pytestmark = pytest.mark.local_stack

THREADS = 16
SECONDS = 3.0


def _contend(url: str, table: str) -> tuple[int, int]:
    """(committed, cancelled) after THREADS threads ran transactions on one shared item for SECONDS."""
    committed, cancelled = [0] * THREADS, [0] * THREADS
    clients = [
        boto3.session.Session().client(
            "dynamodb",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )
        for _ in range(THREADS)
    ]
    stop = time.monotonic() + SECONDS

    def writer(n: int) -> None:
        client = clients[n]
        while time.monotonic() < stop:
            shared: dict[str, Any] = {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "shared"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            }
            own = {"Put": {"TableName": table, "Item": {"pk": {"S": f"own-{uuid.uuid4()}"}}}}
            try:
                client.transact_write_items(TransactItems=[shared, own])
                committed[n] += 1
            except client.exceptions.TransactionCanceledException as error:
                codes = [reason["Code"] for reason in error.response["CancellationReasons"]]
                assert codes == ["TransactionConflict", "None"]
                cancelled[n] += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 60)
    assert not any(thread.is_alive() for thread in threads)
    return sum(committed), sum(cancelled)


def test_sixteen_writers_on_one_item_conflict_under_the_rules(dynamodb_local, tmp_path, capsys):
    engine = ExternalDynamoDB(getattr(dynamodb_local, "upstream", dynamodb_local).endpoint_url)
    server = StrictDynamoDB(engine, StrictRules(tau_ms=DEFAULT_TAU_MS), log_dir=tmp_path).start()
    client = engine.client()
    table = f"contention-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        committed, cancelled = _contend(server.endpoint_url, table)
        stats = server.stats()
    finally:
        server.stop()
    shared = client.get_item(TableName=table, Key={"pk": {"S": "shared"}}, ConsistentRead=True)["Item"]
    count = client.scan(TableName=table, Select="COUNT")["Count"]
    client.delete_table(TableName=table)
    with capsys.disabled():
        print(
            f"\n{THREADS} threads, one shared item, {SECONDS:g} s, τ {DEFAULT_TAU_MS:g} ms: "
            f"{committed + cancelled} transactions, {cancelled} cancelled (TransactionConflict)"
        )
    assert committed > 0
    assert cancelled > 0  # DynamoDB Local alone: 0 of 753 in 6 s
    assert stats["transactions_cancelled"] == cancelled
    assert int(shared["n"]["N"]) == committed  # each commit applied once, no cancelled one at all
    assert count == committed + 1  # one own item per commit, plus the shared item
