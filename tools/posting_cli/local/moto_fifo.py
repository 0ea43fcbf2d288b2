"""What moto (5.2.5) lacks for a FIFO posting queue (``PostingQueueType=fifo``), and nothing else.

moto's FIFO queues already keep what the pipeline relies on, checked in tests/local/test_moto_fifo.py:
a message group is locked while any of its messages is in flight (received and neither deleted nor
visible again), one receive may return several messages of one group in their order, a message made
visible again keeps its place at the head of its group, and a send without a MessageGroupId, or
without a MessageDeduplicationId to a queue without content-based deduplication, is refused.

Three gaps remain:

13. Deduplication. moto drops a send whose deduplication id matches a message *still in the queue*,
    and answers it with a new message id. SQS remembers a deduplication id for 5 minutes after the
    send, whether or not the message has been received and deleted since ("Amazon SQS continues
    tracking the deduplication ID even after the message has been received and deleted"), within
    the message's group when the queue's DeduplicationScope is messageGroup, and (as LocalStack's
    and other emulators' AWS-validated tests have it) answers a duplicate send with the original
    message's id. moto's own check (in ``Queue.add_message``) also ignores DeduplicationScope and
    scans the whole queue, building every queue attribute, on each send.
    -> :func:`deduplicating` in place of ``SQSBackend.send_message`` and :func:`appending` in place
    of ``Queue.add_message``, which :func:`posting_cli.local.moto_patches.install_fifo_deduplication`
    installs (undone by that module's ``uninstall``). A message moved to a dead-letter queue by the
    redrive policy is added, never deduplicated, as SQS moves it.

14. Order after a visibility timeout. moto counts a message as in flight until a receive walks past
    it visible again, and decides whether a group is locked from that count as it walks the queue:
    when several messages of a group become visible again by their timeout (a batch the workflow
    handed back), the walk passes the first ones while the later ones still count as in flight and
    hands out the *last* one alone, ahead of the others. SQS hands the group back in its order.
    -> :func:`releasing_visible` in place of ``SQSBackend.receive_message``: on a FIFO queue, every
    message visible again stops counting as in flight before the walk starts.

15. Groups locked meanwhile. moto decides which groups are locked once, when a receive starts, and
    keeps that answer for the whole of a long poll: a receive that waits on an empty queue, while
    another consumer receives a group's first message, then hands out the group's second message
    with the first still in flight. (The local pipe long-polls with several pollers, so a hold and
    its capture could be decided at once, in two executions.) SQS never hands out a message of a
    group with a message in flight.
    -> the same :func:`releasing_visible`: on a FIFO queue a long poll is a series of receives that
    do not wait, each deciding the locked groups afresh, run one at a time under the queue's own lock,
    with a wait for a send between them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.sqs.models import DEDUPLICATION_TIME_IN_SECONDS, Message, Queue, SQSBackend

_REMEMBERED = "_posting_local_deduplication"  # on each FIFO queue: id -> (sent at, message id, sequence)
# Reentrant: a second stack in the process installs the patches again over the first's.
_guard = threading.RLock()
_WRAPPED = "_posting_local_fifo"
_LOOK_AGAIN_SECONDS = 0.05  # a waiting receive looks again at least this often (and at each send)


def deduplication_key(queue: Queue, body: str, deduplication_id: str | None, group_id: str | None) -> str | None:
    """The id SQS deduplicates a send to this FIFO queue by: the one given, else (with content-based
    deduplication) the SHA-256 of the body, within the group when the queue says so."""
    q: Any = queue
    if deduplication_id is None and q.content_based_deduplication in (True, "true"):
        deduplication_id = hashlib.sha256(body.encode("utf-8")).hexdigest()
    if deduplication_id is None:
        return None
    scope = (group_id or "") if q.deduplication_scope == "messageGroup" else ""
    return f"{scope}\x00{deduplication_id}"


def deduplicating(
    original_send: Callable[..., Any], window_seconds: float = DEDUPLICATION_TIME_IN_SECONDS
) -> Callable[..., Any]:
    """``SQSBackend.send_message`` deduplicating FIFO sends as SQS does (see 13. above); a send to a
    standard queue goes to `original_send` as it is. Given one of its own, returns it unchanged."""
    if getattr(original_send, _WRAPPED, False):
        return original_send

    def send_message(self: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        key = (
            deduplication_key(queue, message_body, kwargs.get("deduplication_id"), kwargs.get("group_id"))
            if queue.fifo_queue
            else None
        )
        if key is None:
            return original_send(self, queue_name, message_body, *args, **kwargs)
        with _guard:
            remembered: dict[str, tuple[float, str, str | None]] = vars(queue).setdefault(_REMEMBERED, {})
            now = time.time()
            seen = remembered.get(key)
            if seen is not None and now - seen[0] < window_seconds:
                # Accepted and not delivered: the answer names the original message (with the MD5 of
                # the body sent now, which the SDK checks against what it sent).
                answer = Message(seen[1], message_body)
                answer.sequence_number = seen[2]
                return answer
            message = original_send(self, queue_name, message_body, *args, **kwargs)
            remembered[key] = (now, message.id, message.sequence_number)
            if len(remembered) > 10_000:
                for stale in [k for k, (sent, _, _) in remembered.items() if now - sent >= window_seconds]:
                    del remembered[stale]
            return message

    setattr(send_message, _WRAPPED, True)
    return send_message


def appending(original_add: Callable[[Queue, Message], None]) -> Callable[[Queue, Message], None]:
    """``Queue.add_message`` without moto's deduplication scan on a FIFO queue (``deduplicating``
    has decided already); a standard queue, or one feeding moto's own Lambda event source mappings,
    goes to `original_add` as it is. Given one of its own, returns it unchanged."""
    if getattr(original_add, _WRAPPED, False):
        return original_add

    def add_message(self: Queue, message: Message) -> None:
        if not self.fifo_queue or self.lambda_event_source_mappings:
            original_add(self, message)
            return
        with self._messages_lock:
            self._messages.append(message)
            self._messages_lock.notify_all()

    setattr(add_message, _WRAPPED, True)
    return add_message


def releasing_visible(original_receive: Callable[..., Any]) -> Callable[..., Any]:
    """``SQSBackend.receive_message`` that, on a FIFO queue, first stops counting as in flight every
    message visible again (see 14. above), and waits as a series of receives that do not wait, one
    at a time per queue (see 15. above). Given one of its own, returns it unchanged."""
    if getattr(original_receive, _WRAPPED, False):
        return original_receive

    def receive_message(  # noqa: PLR0917 - moto's own signature, which its responses call positionally
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> Any:
        queue = self.get_queue(queue_name)
        if not queue.fifo_queue:
            return original_receive(
                self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
            )
        deadline = time.monotonic() + float(wait_seconds_timeout or 0)
        # The queue's own lock (reentrant) runs its receives one at a time, and a send wakes the wait.
        with queue._messages_lock:
            while True:
                for message in [m for m in queue.pending_messages if m.visible]:
                    queue.pending_messages.discard(message)
                result = original_receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
                remaining = deadline - time.monotonic()
                if result or remaining <= 0:
                    return result
                queue._messages_lock.wait(min(remaining, _LOOK_AGAIN_SECONDS))

    setattr(receive_message, _WRAPPED, True)
    return receive_message
