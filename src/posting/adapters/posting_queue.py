"""The posting queue: the expiry sweeper puts its requests where every request goes, and the emit
step hands undecided records back to it sooner than its visibility timeout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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
