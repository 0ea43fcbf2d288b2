"""Dead letters: read them, and move them back to the posting queue (`posting dlq list|redrive`).

Every letter is read with the reason it failed and the producer it is attributed to; a redrive
re-sends only what it can vouch for (see `vouch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from posting.adapters.dead_letters import (
    FAILURE_ERROR,
    FAILURE_MESSAGE,
    ORIGINAL_PRODUCER_ID,
    PRODUCER_ID,
    SOURCE_MESSAGE_ID,
)
from posting.adapters.fifo import is_fifo
from posting_cli.producers import Producers, allowed_producers
from posting_cli.target import Target

SQS_BATCH = 10  # an SQS limit per ReceiveMessage / ChangeMessageVisibilityBatch

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
    # Its message group, in a FIFO DLQ (the group its request was sent in): a redrive re-sends it there.
    group_id: str | None = None

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
            group_id=message.get("Attributes", {}).get("MessageGroupId") or None,
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
    if is_fifo(target.dead_letter_queue_url) and not dry_run:
        return _redrive_in_order(target, sqs, selection, producers)
    letters = _received(_drain(sqs, target.dead_letter_queue_url, visibility_seconds=60))
    plan = plan_redrive(letters, selection, producers)
    moved: set[str] = set()
    try:
        for letter, producer in [] if dry_run else plan.moves:
            _move(sqs, target, letter, producer)
            moved.add(letter.message_id)
    finally:
        _release(sqs, target.dead_letter_queue_url, [letter for letter in letters if letter.message_id not in moved])
    return RedriveReport(plan=plan, unresolved=producers.unresolved, dry_run=dry_run)


def _redrive_in_order(target: Target, sqs: Any, selection: Selection, producers: Producers) -> RedriveReport:
    """A FIFO DLQ's redrive: each message group's letters go back in their order, and the first letter
    of a group that stays (not selected, or refused) keeps the later ones of its group with it, so no
    request is re-sent ahead of an earlier one of its group. The queue shows no later letter of a
    group while an earlier one is received, so letters are taken a receive at a time: a moved letter
    lets the next ones of its group be received."""
    plan = RedrivePlan(moves=[], refusals=[], unselected=[])
    kept: list[DeadLetter] = []
    stopped: dict[str, str] = {}  # group -> the message id of the letter that stays at its head
    try:
        while letters := _received(_receive(sqs, target.dead_letter_queue_url, visibility_seconds=60)):
            for letter in letters:
                group = letter.group_id or letter.message_id
                if group in stopped:
                    kept.append(letter)
                    if letter in selection:
                        plan.refusals.append((letter, f"behind {stopped[group]}, which stays, in its message group"))
                    else:
                        plan.unselected.append(letter)
                    continue
                step = plan_redrive([letter], selection, producers)
                if step.moves:
                    _move(sqs, target, letter, step.moves[0][1])
                    plan.moves.append(step.moves[0])
                    continue
                stopped[group] = letter.source_message_id
                kept.append(letter)
                plan.refusals.extend(step.refusals)
                plan.unselected.extend(step.unselected)
    finally:
        _release(sqs, target.dead_letter_queue_url, kept)
    return RedriveReport(plan=plan, unresolved=producers.unresolved, dry_run=False)


def _move(sqs: Any, target: Target, letter: DeadLetter, producer: str) -> None:
    """Re-send a dead letter's body, named for its producer, then delete it from the DLQ. To a FIFO
    queue it goes in its own group, deduplicated by its DLQ message id (a redrive interrupted between
    the send and the delete, and run again, sends nothing twice)."""
    ordering = (
        {"MessageGroupId": letter.group_id or letter.source_message_id, "MessageDeduplicationId": letter.message_id}
        if target.is_fifo
        else {}
    )
    sqs.send_message(
        QueueUrl=target.queue_url,
        MessageBody=letter.body,
        MessageAttributes={ORIGINAL_PRODUCER_ID: {"DataType": "String", "StringValue": producer}},
        **ordering,
    )
    sqs.delete_message(QueueUrl=target.dead_letter_queue_url, ReceiptHandle=letter.receipt_handle)


def _drain(sqs: Any, queue_url: str, visibility_seconds: int) -> Iterator[dict[str, Any]]:
    """Receive until the queue has nothing visible left (messages stay in flight meanwhile). A FIFO
    queue shows only what it can hand out: no later message of a group whose earlier ones are in flight."""
    while messages := _receive(sqs, queue_url, visibility_seconds):
        yield from messages


def _receive(sqs: Any, queue_url: str, visibility_seconds: int) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=SQS_BATCH,
        WaitTimeSeconds=0,
        VisibilityTimeout=visibility_seconds,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["SenderId", "MessageGroupId"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages
