"""Requests, SQS records and accounts the measurements post: shaped like the demo's traffic."""

from __future__ import annotations

import json
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from posting.domain.model import Account, Side
from posting_cli.local.template import Template

SEED = 7
NO_SWEEPER = 3600.0  # the local sweeper's period: out of the measured runs (its logs and CPU are not theirs)


def leg(account_id: str, side: str, amount: int) -> dict[str, Any]:
    return {"account_id": account_id, "side": side, "amount": amount, "currency": "EUR"}


def request_body(posting_id: str, legs: list[dict[str, Any]]) -> str:
    """A request shaped like the demo's traffic: description and one metadata key."""
    return json.dumps(
        {
            "posting_id": posting_id,
            "legs": legs,
            "effective_at": "2026-11-27T10:00:00Z",
            "description": "card payment",
            "metadata": {"channel": "card"},
        }
    )


def two_leg_body(posting_id: str, payer: str, payee: str, amount: int = 1250) -> str:
    return request_body(posting_id, [leg(payer, "debit", amount), leg(payee, "credit", amount)])


def ten_leg_body(posting_id: str, accounts: Sequence[str], amount: int = 1000) -> str:
    """Five debits and five credits on ten distinct accounts."""
    legs = [leg(a, "debit", amount) for a in accounts[:5]] + [leg(a, "credit", amount) for a in accounts[5:10]]
    return request_body(posting_id, legs)


def sqs_record(body: str, message_id: str | None = None) -> dict[str, Any]:
    """An SQS record as the pipe hands it to the workflow (AWS's shape; receipt handle of a typical length)."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + "x" * 196,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1764237600000",
            "SenderId": "AROAEXAMPLEEXAMPLE:posting-producer",
            "ApproximateFirstReceiveTimestamp": "1764237600001",
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:posting-stack-PostingQueue-AbCdEfGhIjKl",
        "awsRegion": "us-east-1",
    }


def posting_id() -> str:
    return f"pay-{uuid.uuid4()}"


def create_ledger_table(client: Any) -> str:
    """A fresh table with the template's key schema (the same as the deployed LedgerTable)."""
    from posting_cli.local.tables import create_table

    name = f"bench-{uuid.uuid4().hex[:10]}"
    create_table(client, name, Template.load().table_definition("LedgerTable"))
    return name


def open_unlimited_accounts(ledger: Any, account_ids: Sequence[str], currency: str = "EUR") -> None:
    """Accounts with no overdraft limit, so that no funding is needed before posting."""
    for account_id in account_ids:
        account = Account(account_id=account_id, currency=currency, normal_balance=Side.CREDIT, overdraft_limit=None)
        ledger.open_account(account, "2026-11-27T09:00:00.000Z")


@contextmanager
def booked_stack(
    template: Template, endpoint: Any, accounts: Iterable[Account], *, pollers: int = 1, prefix: str
) -> Iterator[Any]:
    """A local stack of `template` on empty books (the same seeded traffic sent again would be
    duplicates, not postings), its sweeper out of the way, with `accounts` open."""
    from posting_cli import operations
    from posting_cli.local.stack import LocalStack

    with tempfile.TemporaryDirectory(prefix=prefix) as state_dir:
        stack = LocalStack(
            template,
            pollers=pollers,
            state_dir=Path(state_dir),
            dynamodb=endpoint,
            fresh_books=True,
            schedule_seconds=NO_SWEEPER,
        )
        with stack:
            assert stack.target is not None and stack.runtime is not None
            operations.open_accounts(stack.target, accounts)
            yield stack
