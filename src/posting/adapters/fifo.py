"""What a FIFO queue asks of its senders, with no SDK in sight (the validate step imports it).

A FIFO posting queue (template parameter PostingQueueType=fifo) and its DLQ take every message with
a MessageGroupId, the order they keep, and a MessageDeduplicationId, the id they drop a second send
of within 5 minutes.
"""

from __future__ import annotations

import hashlib

FIFO_SUFFIX = ".fifo"  # SQS: a FIFO queue's name (so its URL and ARN) ends in it, and no standard queue's may


def is_fifo(queue: str) -> bool:
    """Whether the queue a URL or ARN names is a FIFO queue."""
    return queue.endswith(FIFO_SUFFIX)


def content_deduplication_id(body: str) -> str:
    """A deduplication id for a body that is the same whenever it is sent: its SHA-256, as SQS's
    content-based deduplication computes it."""
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
