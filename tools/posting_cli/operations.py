"""Operator actions on a pipeline (local or deployed): open accounts, submit, read, reconcile, DLQ.

They go through the same adapters the Lambda functions use, so what they read is what was written.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from posting.adapters.ledger_books import LedgerBooks
from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import Account, AccountState
from posting.domain.outcomes import AccountAlreadyExists
from posting.domain.plan import Entry
from posting.domain.reconciliation import Reconciliation, reconcile_records
from posting.steps import ledger_acts
from posting_cli import groups as grouping

# Dead letters live in posting_cli.dead_letters; the tools find them here too.
from posting_cli.dead_letters import (  # noqa: F401
    MOVED_BY_THE_QUEUE,
    DeadLetter,
    RedrivePlan,
    RedriveReport,
    Selection,
    dead_letters,
    plan_redrive,
    redrive,
    vouch,
)
from posting_cli.ledger_operations import operator_identity
from posting_cli.target import Target

SQS_BATCH = 10  # an SQS limit per SendMessageBatch / DeleteMessageBatch


def ledger(target: Target) -> LedgerTable:
    return target.ledger()


def books(target: Target) -> LedgerBooks:
    return target.ledger().books


class AccountTermsDiffer(Exception):
    """Accounts asked to be opened already exist with other terms; the message names each difference."""


def open_accounts(target: Target, accounts: Iterable[Account]) -> tuple[int, list[str]]:
    """Open each account; returns how many were opened and the ids that were already open as asked.

    Reopening an account with the terms it already has is a no-op, so a request file can be run
    again on surviving books. One that exists with other terms (currency, normal balance, overdraft
    limit, status...) raises AccountTermsDiffer before anything is opened: the books are never
    silently different from what the caller described.
    """
    from datetime import UTC, datetime

    table = ledger(target)
    wanted = list(accounts)
    existing_states = table.read_accounts(account.account_id for account in wanted)
    differences = [
        _terms_difference(account, existing_states[account.account_id].account)
        for account in wanted
        if account.account_id in existing_states and existing_states[account.account_id].account != account
    ]
    if differences:
        raise AccountTermsDiffer("already open with other terms: " + "; ".join(differences))
    opened, existing = 0, []
    for account in wanted:
        if account.account_id in existing_states:
            existing.append(account.account_id)
            continue
        try:
            ledger_acts.open_accounts(table.acts, [account], datetime.now(UTC), operator_identity(target))
            opened += 1
        except AccountAlreadyExists:  # opened meanwhile by someone else: fine if on the same terms
            state = table.read_accounts([account.account_id]).get(account.account_id)
            if state is not None and state.account != account:
                raise AccountTermsDiffer(
                    "already open with other terms: " + _terms_difference(account, state.account)
                ) from None
            existing.append(account.account_id)
    return opened, existing


def _terms_difference(asked: Account, found: Account) -> str:
    asked_terms, found_terms = asked.model_dump(mode="json"), found.model_dump(mode="json")
    fields = [name for name in asked_terms if asked_terms[name] != found_terms.get(name)]
    return (
        f"{asked.account_id} ("
        + ", ".join(f"{name}: {found_terms.get(name)!r} in the ledger, {asked_terms[name]!r} asked" for name in fields)
        + ")"
    )


@dataclass(frozen=True)
class Submitted:
    """One body handed to the queue: its message id, or why the queue refused it."""

    message_id: str | None
    error: str | None
    sent_ms: int


def submit(target: Target, bodies: Iterable[str], group_ids: Sequence[str] | None = None) -> list[Submitted]:
    """Send each body as one message, exactly as given, 10 per call; one answer per body, in order.

    The queue refuses some bodies outright (empty, larger than its MaximumMessageSize, characters
    SQS does not carry): those come back with the queue's error instead of a message id.

    On a FIFO queue each body goes in its message group (`group_ids`, one per body; by default the
    `linked` grouping of posting_cli.groups), with a deduplication id of its own, kept across the
    SDK's retries of its call: every body sent is decided and answered, a second one of the same
    request as a DUPLICATE, exactly as on a standard queue.
    """
    sqs = target.client("sqs")
    texts = list(bodies)
    ordering: list[dict[str, str]] = [{} for _ in texts]
    if target.is_fifo:
        groups = list(group_ids) if group_ids is not None else grouping.group_ids(texts)
        if len(groups) != len(texts):
            raise ValueError(f"{len(groups)} message group ids for {len(texts)} bodies")
        ordering = [{"MessageGroupId": group, "MessageDeduplicationId": uuid.uuid4().hex} for group in groups]
    answers: list[Submitted] = []
    batch: list[int] = []  # positions in texts

    def send_one(position: int) -> Submitted:
        now = _now_ms()
        body = texts[position]
        if not body:
            return Submitted(None, "empty message: SQS cannot carry an empty body", now)
        try:
            sent = sqs.send_message(QueueUrl=target.queue_url, MessageBody=body, **ordering[position])
            return Submitted(sent["MessageId"], None, now)
        except ClientError as error:
            refusal = error.response.get("Error", {})
            return Submitted(None, _refused(refusal.get("Code"), refusal.get("Message")), now)

    def flush() -> None:
        now = _now_ms()
        sendable = [index for index, position in enumerate(batch) if texts[position]]
        answer: dict[int, Submitted] = {}
        try:
            response = (
                sqs.send_message_batch(
                    QueueUrl=target.queue_url,
                    Entries=[
                        {"Id": str(index), "MessageBody": texts[batch[index]], **ordering[batch[index]]}
                        for index in sendable
                    ],
                )
                if sendable
                else {"Successful": [], "Failed": []}
            )
        except ClientError:
            # One oversized body can sink the whole batch request: send them one by one instead.
            answers.extend(send_one(position) for position in batch)
            batch.clear()
            return
        for entry in response.get("Successful", []):
            answer[int(entry["Id"])] = Submitted(entry["MessageId"], None, now)
        for entry in response.get("Failed", []):
            answer[int(entry["Id"])] = Submitted(None, _refused(entry.get("Code"), entry.get("Message")), now)
        answers.extend(answer.get(index) or send_one(position) for index, position in enumerate(batch))
        batch.clear()

    for position in range(len(texts)):
        batch.append(position)
        if len(batch) == SQS_BATCH:
            flush()
    if batch:
        flush()
    return answers


def _refused(code: str | None, message: str | None) -> str:
    """The queue's own reason: its error code, then its message (SQS's messages name no body content)."""
    return f"the queue refused it: {code}" + (f": {message}" if message else "")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- reading the books ------------------------------------------------------------------------------


def balance(target: Target, account_id: str) -> AccountState | None:
    return books(target).get_account(account_id)


def statement(target: Target, account_id: str) -> tuple[AccountState | None, list[Entry]]:
    return books(target).statement(account_id)


def balance_as_of(target: Target, account_id: str, moment: str) -> int:
    return books(target).balance_as_of(account_id, moment)


def statement_page(
    target: Target,
    account_id: str,
    *,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
    by_value_date: bool = False,
) -> tuple[list[Entry], str | None]:
    return books(target).statement_page(
        account_id, since=since, until=until, limit=limit, cursor=cursor, by_value_date=by_value_date
    )


def reconcile(target: Target, max_problems: int = 50) -> Reconciliation:
    """Check the books of a pipeline's ledger (posting.domain.reconciliation) from one scan."""
    return reconcile_books(books(target), max_problems)


def reconcile_books(books: LedgerBooks, max_problems: int = 50) -> Reconciliation:
    """Every invariant of the books, from one scan of the table."""
    return reconcile_records(books.scan(), max_problems)


def parse_accounts(text: str) -> list[Account]:
    """A JSON array of account objects, as in the contract."""
    return TypeAdapter(list[Account]).validate_json(text)
