"""Helpers for the post step's suites: the same tests read alike on the fake ledger and on DynamoDB Local."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from posting.domain.model import Account
from posting.domain.outcomes import Outcome, Status
from posting.domain.reconciliation import reconcile_records
from posting.steps.items import BatchItem
from posting.steps.post import post_item
from posting.steps.validate import validate_record
from tests.builders import leg, request, sqs_record

OPENED_AT = "2026-11-27T09:00:00.000Z"
FUNDING = "funding"  # credit-normal with no overdraft limit: where test money comes from
_funding_ids = itertools.count(1)


def no_sleep(_seconds: float) -> None:
    """Backoff without waiting: the retries still happen, the test does not slow down."""


def open_accounts(ledger: Any, *terms: dict[str, Any]) -> None:
    for each in terms:
        ledger.open_account(Account.model_validate(each, strict=False), OPENED_AT)


def item_for(body: dict[str, Any] | str, message_id: str | None = None) -> BatchItem:
    """An SQS record carrying `body`, through the validate step, as the workflow hands it to post."""
    return validate_record(sqs_record(body, message_id))


def post(ledger: Any, body: dict[str, Any] | str, message_id: str | None = None) -> BatchItem:
    return post_item(item_for(body, message_id), ledger, sleep=no_sleep)


def outcome_of(item: BatchItem) -> Outcome:
    assert item.failure is None, item.failure
    assert item.outcome is not None
    return item.outcome


def fund(ledger: Any, account_id: str, amount: int) -> None:
    body = request(f"fund-{next(_funding_ids)}", leg(FUNDING, "debit", amount), leg(account_id, "credit", amount))
    assert outcome_of(post(ledger, body)).status == Status.POSTED


def transfer(posting_id: str, source: str, target: str, amount: int, currency: str = "EUR") -> dict[str, Any]:
    return request(posting_id, leg(source, "debit", amount, currency), leg(target, "credit", amount, currency))


def balances(ledger: Any, *account_ids: str) -> dict[str, int]:
    return {account_id: state.balance for account_id, state in ledger.books.get_accounts(account_ids).items()}


def books(ledger: Any) -> list[str]:
    """Everything in the ledger as comparable text: equal books mean nothing was written."""
    return sorted(repr(record) for record in ledger.books.scan())


def assert_books_balance(ledger: Any) -> None:
    """Every invariant of the books (posting.domain.reconciliation) holds over the whole ledger."""
    report = reconcile_records(ledger.books.scan())
    assert report.ok, report.problems


def post_concurrently(ledger: Any, items: list[BatchItem], threads: int = 8) -> list[BatchItem]:
    """Post all items from `threads` threads at once; redeliver the undecided ones as the queue would.

    Returns every item decided, in input order.
    """
    decided: dict[str, BatchItem] = {}
    pending = items
    for _delivery in range(30):
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(lambda item: post_item(item, ledger, sleep=no_sleep), pending))
        for result in results:
            if result.failure is not None:
                # Contention is the only excuse for not deciding; it is never a business rejection.
                assert result.failure.error in {"TransientPostingError", "ConcurrentUpdate"}, result.failure
                assert result.outcome is None
        decided.update((r.message_id, r) for r in results if r.failure is None)
        pending = [r.model_copy(update={"failure": None}) for r in results if r.failure is not None]
        if not pending:
            return [decided[item.message_id] for item in items]
    pytest.fail(f"{len(pending)} postings still undecided after 30 deliveries")
