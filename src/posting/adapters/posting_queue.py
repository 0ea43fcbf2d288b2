"""The posting queue: the expiry sweeper puts its requests where every request goes, and the emit
step hands undecided records back to it sooner than its visibility timeout. A FIFO posting queue
takes each message in a group, with a deduplication id (posting.adapters.fifo).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from posting.adapters.fifo import content_deduplication_id, is_fifo

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries


class PostingQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url
        self.fifo = is_fifo(queue_url)

    def send(self, bodies: Sequence[str], group_ids: Sequence[str] | None = None) -> int:
        """Send every body, 10 per call; returns how many the queue took. Raises on a failed call.

        On a FIFO queue each body goes in its group (`group_ids`, one per body), deduplicated by its
        content: sending the same body again within 5 minutes adds nothing (the sweeper's requests
        are the same each time it finds the same hold).
        """
        if self.fifo and (group_ids is None or len(group_ids) != len(bodies)):
            raise ValueError("a FIFO queue needs one message group id per body")
        sent = 0
        for start in range(0, len(bodies), SQS_BATCH):
            entries = []
            for index, body in enumerate(bodies[start : start + SQS_BATCH]):
                entry = {"Id": str(index), "MessageBody": body}
                if self.fifo and group_ids is not None:
                    entry["MessageGroupId"] = group_ids[start + index]
                    entry["MessageDeduplicationId"] = content_deduplication_id(body)
                entries.append(entry)
            response = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            sent += len(response.get("Successful", []))
        return sent

    def return_after(self, returns: Sequence[tuple[str, int]]) -> int:
        """Make each record (by receipt handle) visible again after its delay in whole seconds;
        returns how many the queue took. Best effort: a record it did not take (its receipt is
        stale, the call failed) still comes back after the queue's visibility timeout."""
        taken = 0
        for start in range(0, len(returns), SQS_BATCH):
            chunk = returns[start : start + SQS_BATCH]
            try:
                response = self._client.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": seconds}
                        for index, (receipt, seconds) in enumerate(chunk)
                    ],
                )
            except (ClientError, BotoCoreError):
                continue
            taken += len(response.get("Successful", []))
        return taken
