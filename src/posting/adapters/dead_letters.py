"""The dead-letter queue: messages that kept failing, kept byte for byte, with why they failed and who sent them."""

from __future__ import annotations

from typing import Any

from posting.adapters.fifo import is_fifo

# Message attribute names a DLQ entry carries; `posting dlq list` shows them.
FAILURE_ERROR = "failure_error"
FAILURE_MESSAGE = "failure_message"
SOURCE_MESSAGE_ID = "source_message_id"
RECEIVE_COUNT = "receive_count"
# Who sent the failed delivery (SQS's SenderId), and the producer the request is attributed to (a
# redrive's original_producer_id, else that sender): `posting dlq redrive` re-sends only what it can
# vouch for.
PRODUCER_ID = "producer_id"
ORIGINAL_PRODUCER_ID = "original_producer_id"


class DeadLetterQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url
        self.fifo = is_fifo(queue_url)

    def send(
        self,
        body: str,
        message_id: str,
        receive_count: int,
        error: str,
        message: str,
        *,
        producer_id: str | None = None,
        original_producer_id: str | None = None,
        group_id: str | None = None,
    ) -> None:
        """Dead-letter one message with its failure reason and producer as message attributes.
        Raises on failure.

        A FIFO DLQ (the posting queue's is FIFO when the posting queue is) keeps the message in its
        group (`group_id`; a message without one is a group of its own), so a group's dead letters
        stay in their order, and deduplicates by the failed message's id: a retried dead-lettering
        of the same delivery adds nothing.
        """
        attributes = {
            FAILURE_ERROR: {"DataType": "String", "StringValue": error},
            FAILURE_MESSAGE: {"DataType": "String", "StringValue": message or error},
            SOURCE_MESSAGE_ID: {"DataType": "String", "StringValue": message_id},
            RECEIVE_COUNT: {"DataType": "Number", "StringValue": str(receive_count)},
        }
        for name, value in ((PRODUCER_ID, producer_id), (ORIGINAL_PRODUCER_ID, original_producer_id)):
            if value:
                attributes[name] = {"DataType": "String", "StringValue": value}
        ordering = {"MessageGroupId": group_id or message_id, "MessageDeduplicationId": message_id} if self.fifo else {}
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes, **ordering)
