"""The posting queue, as a sender: the expiry sweeper puts its requests where every request goes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SQS_BATCH = 10  # SendMessageBatch takes at most 10 entries


class PostingQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def send(self, bodies: Sequence[str]) -> int:
        """Send every body, 10 per call; returns how many the queue took. Raises on a failed call."""
        sent = 0
        for start in range(0, len(bodies), SQS_BATCH):
            chunk = bodies[start : start + SQS_BATCH]
            response = self._client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(chunk)],
            )
            sent += len(response.get("Successful", []))
        return sent
