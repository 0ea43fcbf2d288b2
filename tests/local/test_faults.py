"""Client-level faults on real engines: botocore parses them as the real errors, and they mean what they say."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from posting.adapters.event_bus import ResultEvent
from posting.domain.outcomes import TransientPostingError
from posting_cli.local.faults import FaultInjector, FaultPlan
from posting_cli.local.moto_server import MotoServer

pytestmark = pytest.mark.local_stack
NO_SDK_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


def _instrumented(client, spec: str) -> FaultInjector:
    injector = FaultInjector(FaultPlan.parse(spec, seed=5))
    injector.instrument(client)
    return injector


def test_throttling_is_a_real_provisioned_throughput_error(dynamodb_local, ledger_table):
    client = boto3.client("dynamodb", config=NO_SDK_RETRIES, **dynamodb_local.client_kwargs())
    injector = _instrumented(client, "dynamodb_throttle=1")
    with pytest.raises(ClientError) as error:
        client.get_item(TableName=ledger_table.table_name, Key={"PK": {"S": "a"}, "SK": {"S": "b"}})
    assert error.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert injector.counts["dynamodb_throttle"] == 1


def test_a_conflict_storm_cancels_transactions_with_transaction_conflict_reasons(dynamodb_local, ledger_table):
    client = boto3.client("dynamodb", config=NO_SDK_RETRIES, **dynamodb_local.client_kwargs())
    injector = _instrumented(client, "transaction_conflict_storm=1")
    items = [
        {"Put": {"TableName": ledger_table.table_name, "Item": {"PK": {"S": f"k{i}"}, "SK": {"S": "s"}}}}
        for i in range(3)
    ]
    for _ in range(4):
        with pytest.raises(ClientError) as error:
            client.transact_write_items(TransactItems=items)
        assert error.value.response["Error"]["Code"] == "TransactionCanceledException"
        codes = [reason["Code"] for reason in error.value.response["CancellationReasons"]]
        assert codes == ["None", "TransactionConflict", "None"]
    assert injector.counts["transaction_conflict_storm"] >= 1
    assert client.scan(TableName=ledger_table.table_name)["Count"] == 0  # nothing was written


def test_the_ledger_adapter_takes_injected_throttling_as_transient(dynamodb_local, ledger_table):
    client = boto3.client("dynamodb", config=NO_SDK_RETRIES, **dynamodb_local.client_kwargs())
    _instrumented(client, "dynamodb_throttle=1")
    from posting.adapters.ledger_table import LedgerTable

    with pytest.raises(TransientPostingError):
        LedgerTable(client, ledger_table.table_name).read_accounts(["acc-x"])


def test_put_events_partial_failure_reports_and_withholds_the_failed_entries():
    with MotoServer() as moto:
        kwargs = moto.client_kwargs()
        events, sqs = boto3.client("events", **kwargs), boto3.client("sqs", **kwargs)
        url = sqs.create_queue(QueueName="tap")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["t"]}))
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])
        injector = _instrumented(events, "put_events_partial_failure=0.5")
        sent = [ResultEvent("Posting Posted", {"event_id": f"event-{i}", "message_id": str(i)}) for i in range(10)]
        response = events.put_events(
            Entries=[{"Source": "t", "DetailType": e.detail_type, "Detail": json.dumps(e.detail)} for e in sent]
        )
        failed = [i for i, entry in enumerate(response["Entries"]) if entry.get("ErrorCode")]
        assert response["FailedEntryCount"] == len(failed) == injector.counts["put_events_partial_failure"] > 0
        assert len(response["Entries"]) == 10
        delivered = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            delivered += [json.loads(m["Body"])["detail"]["message_id"] for m in messages]
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        assert sorted(delivered, key=int) == [str(i) for i in range(10) if i not in failed]
