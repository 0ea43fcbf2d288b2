"""Small builders for requests, accounts and SQS records used across the suites."""

from __future__ import annotations

import itertools
import json
from typing import Any

_message_ids = itertools.count(1)
_sequence_numbers = itertools.count(18_000_000_000_000_000_000)


def leg(account_id: str, side: str, amount: int, currency: str = "EUR") -> dict[str, Any]:
    return {"account_id": account_id, "side": side, "amount": amount, "currency": currency}


def request(posting_id: str = "pay-1", *legs: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A posting request as a client sends it; defaults to 12.50 EUR from acc-alice to acc-bob."""
    body: dict[str, Any] = {
        "posting_id": posting_id,
        "legs": list(legs) or [leg("acc-alice", "debit", 1250), leg("acc-bob", "credit", 1250)],
        "effective_at": "2026-11-27T10:00:00Z",
        "description": "card settlement",
        "metadata": {"merchant": "m-42"},
    }
    body.update(fields)
    return body


def account(
    account_id: str,
    currency: str = "EUR",
    normal_balance: str = "credit",
    overdraft_limit: int | None = 0,
    status: str = "open",
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "currency": currency,
        "normal_balance": normal_balance,
        "overdraft_limit": overdraft_limit,
        "status": status,
    }


def sqs_record(
    body: dict[str, Any] | str, message_id: str | None = None, receive_count: int = 1, group_id: str | None = None
) -> dict[str, Any]:
    """An SQS record as the EventBridge Pipe hands it to the workflow; with `group_id`, from a FIFO queue."""
    record: dict[str, Any] = {
        "messageId": message_id or f"msg-{next(_message_ids)}",
        "receiptHandle": "AQEB-test",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1764237600000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1764237600001",
        },
        "messageAttributes": {},
        "md5OfBody": "0",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:posting-queue",
        "awsRegion": "us-east-1",
    }
    if group_id is not None:
        record["eventSourceARN"] += ".fifo"
        record["attributes"] |= {
            "MessageGroupId": group_id,
            "MessageDeduplicationId": record["messageId"],
            "SequenceNumber": str(next(_sequence_numbers)),
        }
    return record
