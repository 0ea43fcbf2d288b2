"""Operator actions on a pipeline (local or deployed): open accounts, submit, read, reconcile, DLQ.

They go through the same adapters the Lambda functions use, so what they read is what was written.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from posting.adapters.dead_letters import (
    FAILURE_ERROR,
    FAILURE_MESSAGE,
    ORIGINAL_PRODUCER_ID,
    PRODUCER_ID,
    SOURCE_MESSAGE_ID,
)
from posting.adapters.ledger_books import LedgerBooks
from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import Account, AccountState
from posting.domain.outcomes import AccountAlreadyExists
from posting.domain.plan import Entry
from posting.domain.reconciliation import Reconciliation, reconcile_records
from posting.steps import ledger_acts
from posting_cli.ledger_operations import operator_identity
from posting_cli.producers import Producers, allowed_producers
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


def submit(target: Target, bodies: Iterable[str]) -> list[Submitted]:
    """Send each body as one message, exactly as given, 10 per call; one answer per body, in order.

    The queue refuses some bodies outright (empty, larger than its MaximumMessageSize, characters
    SQS does not carry): those come back with the queue's error instead of a message id.
    """
    sqs = target.client("sqs")
    answers: list[Submitted] = []
    batch: list[str] = []

    def send_one(body: str) -> Submitted:
        now = _now_ms()
        if not body:
            return Submitted(None, "empty message: SQS cannot carry an empty body", now)
        try:
            return Submitted(sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)["MessageId"], None, now)
        except ClientError as error:
            refusal = error.response.get("Error", {})
            return Submitted(None, _refused(refusal.get("Code"), refusal.get("Message")), now)

    def flush() -> None:
        now = _now_ms()
        sendable = [index for index, body in enumerate(batch) if body]
        answer: dict[int, Submitted] = {}
        try:
            response = (
                sqs.send_message_batch(
                    QueueUrl=target.queue_url,
                    Entries=[{"Id": str(index), "MessageBody": batch[index]} for index in sendable],
                )
                if sendable
                else {"Successful": [], "Failed": []}
            )
        except ClientError:
            # One oversized body can sink the whole batch request: send them one by one instead.
            answers.extend(send_one(body) for body in batch)
            batch.clear()
            return
        for entry in response.get("Successful", []):
            answer[int(entry["Id"])] = Submitted(entry["MessageId"], None, now)
        for entry in response.get("Failed", []):
            answer[int(entry["Id"])] = Submitted(None, _refused(entry.get("Code"), entry.get("Message")), now)
        answers.extend(answer.get(index) or send_one(body) for index, body in enumerate(batch))
        batch.clear()

    for body in bodies:
        batch.append(body)
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


# -- dead letters -----------------------------------------------------------------------------------

MOVED_BY_THE_QUEUE = "MaxReceiveCountExceeded"  # the reason of a message the queue's redrive policy moved


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    source_message_id: str
    body: str
    error: str
    message: str
    receipt_handle: str
    # The DLQ message's own sender (SQS's SenderId): the Emit or workflow role for a dead letter the
    # pipeline wrote; the request's own sender for one the queue's redrive policy moved.
    sent_by: str | None = None
    # As the message's attributes record them (see posting.adapters.dead_letters): who sent the
    # failed delivery, and the producer the request is attributed to.
    producer_id: str | None = None
    original_producer_id: str | None = None

    @property
    def producer(self) -> str:
        """Who the request is attributed to, as recorded (what `posting dlq list` shows)."""
        return self.original_producer_id or self.producer_id or self.sent_by or "-"


def dead_letters(target: Target, visibility_seconds: int = 30) -> list[DeadLetter]:
    """Every message in the DLQ, with its failure reason; they are left in the DLQ, visible again."""
    sqs = target.client("sqs")
    letters = _received(_drain(sqs, target.dead_letter_queue_url, visibility_seconds))
    _release(sqs, target.dead_letter_queue_url, letters)
    return letters


def _received(messages: Iterable[dict[str, Any]]) -> list[DeadLetter]:
    seen: dict[str, DeadLetter] = {}
    for message in messages:
        attributes = message.get("MessageAttributes", {})

        def attribute(name: str, attributes: dict[str, Any] = attributes) -> str | None:
            value = attributes.get(name, {}).get("StringValue")
            return str(value) if value else None

        seen[message["MessageId"]] = DeadLetter(
            message_id=message["MessageId"],
            source_message_id=attribute(SOURCE_MESSAGE_ID) or message["MessageId"],
            body=message["Body"],
            error=attribute(FAILURE_ERROR) or MOVED_BY_THE_QUEUE,
            message=attribute(FAILURE_MESSAGE) or "moved by the queue's redrive policy; no reason was recorded",
            receipt_handle=message["ReceiptHandle"],
            sent_by=message.get("Attributes", {}).get("SenderId") or None,
            producer_id=attribute(PRODUCER_ID),
            original_producer_id=attribute(ORIGINAL_PRODUCER_ID),
        )
    return list(seen.values())


def _release(sqs: Any, queue_url: str, letters: Sequence[DeadLetter]) -> None:
    """Make received messages visible again at once."""
    for start in range(0, len(letters), SQS_BATCH):
        chunk = letters[start : start + SQS_BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(chunk)
            ],
        )


@dataclass(frozen=True)
class Selection:
    """Which dead letters a redrive takes: those with one of `message_ids` (the DLQ's message id or the
    posting queue's, as `posting dlq list` shows it) and one of `reasons` (`failure_error`, e.g.
    TransientPostingError; MaxReceiveCountExceeded for a message the queue's redrive policy moved).
    An empty set does not narrow: with neither, every dead letter."""

    message_ids: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()

    def __contains__(self, letter: DeadLetter) -> bool:
        by_id = not self.message_ids or bool({letter.message_id, letter.source_message_id} & self.message_ids)
        return by_id and (not self.reasons or letter.error in self.reasons)


def vouch(letter: DeadLetter, producers: Producers) -> tuple[str | None, str | None]:
    """(the producer a re-sent request names, None) when the redrive can vouch for it, else
    (None, why it stays in the DLQ).

    A dead letter the pipeline wrote says who sent the failed delivery and whom the request is
    attributed to; any other message is believed only about its own sender, which SQS records. An
    attribution to someone other than the sender counts only when the sender is a redriver (the
    principal running this redrive, whose earlier redrive made it); otherwise the sender itself must
    be an allowed producer.
    """
    if producers.is_pipeline(letter.sent_by):
        sender, attributed = letter.producer_id, letter.original_producer_id or letter.producer_id
    else:
        sender, attributed = letter.sent_by, letter.original_producer_id or letter.sent_by
    if not sender:
        return None, "no producer recorded"
    if attributed and attributed != sender and producers.redrove(sender):
        if producers.allows(attributed):
            return attributed, None
        return None, f"re-sent by {sender} for {attributed}, which is not an allowed producer"
    if producers.allows(sender):
        return sender, None
    return None, f"{sender} is not an allowed producer"


@dataclass(frozen=True)
class RedrivePlan:
    moves: list[tuple[DeadLetter, str]]  # each with the producer it is re-sent for
    refusals: list[tuple[DeadLetter, str]]  # each with why it stays
    unselected: list[DeadLetter]


def plan_redrive(letters: Iterable[DeadLetter], selection: Selection, producers: Producers) -> RedrivePlan:
    """What a redrive moves, refuses and leaves alone, decided before anything moves."""
    plan = RedrivePlan(moves=[], refusals=[], unselected=[])
    for letter in letters:
        if letter not in selection:
            plan.unselected.append(letter)
            continue
        producer, refusal = vouch(letter, producers)
        if producer is not None:
            plan.moves.append((letter, producer))
        else:
            plan.refusals.append((letter, refusal or "refused"))
    return plan


@dataclass(frozen=True)
class RedriveReport:
    plan: RedrivePlan
    unresolved: tuple[str, ...]  # allowed producers that could not be checked (see producers.py)
    dry_run: bool

    @property
    def moved(self) -> int:
        """How many went back to the posting queue (in a dry run: would have)."""
        return len(self.plan.moves)


def redrive(
    target: Target,
    *,
    message_ids: Iterable[str] = (),
    reasons: Iterable[str] = (),
    allow: Sequence[str] = (),
    dry_run: bool = False,
    producers: Producers | None = None,
) -> RedriveReport:
    """Move the selected dead letters back to the posting queue (bodies unchanged), those whose
    producer the redrive can vouch for (see `vouch`); every other message stays in the DLQ, visible
    again. With no selector, every dead letter is selected. A dry run moves nothing.

    Each re-sent request names the producer it was vouched for in its `original_producer_id`
    message attribute, so it keeps that producer if it is dead-lettered again. Safe to repeat:
    posting is idempotent by posting_id, so a request that was in fact decided is answered as a
    duplicate.
    """
    producers = producers or allowed_producers(target, allow)
    selection = Selection(frozenset(message_ids), frozenset(reasons))
    sqs = target.client("sqs")
    letters = _received(_drain(sqs, target.dead_letter_queue_url, visibility_seconds=60))
    plan = plan_redrive(letters, selection, producers)
    moved: set[str] = set()
    try:
        for letter, producer in [] if dry_run else plan.moves:
            sqs.send_message(
                QueueUrl=target.queue_url,
                MessageBody=letter.body,
                MessageAttributes={ORIGINAL_PRODUCER_ID: {"DataType": "String", "StringValue": producer}},
            )
            sqs.delete_message(QueueUrl=target.dead_letter_queue_url, ReceiptHandle=letter.receipt_handle)
            moved.add(letter.message_id)
    finally:
        _release(sqs, target.dead_letter_queue_url, [letter for letter in letters if letter.message_id not in moved])
    return RedriveReport(plan=plan, unresolved=producers.unresolved, dry_run=dry_run)


def _drain(sqs: Any, queue_url: str, visibility_seconds: int) -> Iterator[dict[str, Any]]:
    """Receive until the queue has nothing visible left (messages stay in flight meanwhile)."""
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility_seconds,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["SenderId"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        yield from messages


def parse_accounts(text: str) -> list[Account]:
    """A JSON array of account objects, as in the contract."""
    return TypeAdapter(list[Account]).validate_json(text)
