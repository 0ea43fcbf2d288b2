"""Expiry sweep: find open holds past their expires_at and send one `expiry` request for each.

The requests go through the posting queue like any other, with a posting_id derived from the hold
(`expire:<hold_id>`) and content derived from it alone, so sending one twice (two sweeps before the
first is decided) is a DUPLICATE, and the hold is released exactly once. Whether a hold has expired
is decided by the post step at decision time, never here: a capture racing the sweep either wins
before `expires_at` or is refused with HOLD_EXPIRED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from posting.adapters.posting_queue import PostingQueue
from posting.domain.requests import expiry_posting_id
from posting.steps.ports import Ledger


@dataclass(frozen=True)
class SweepReport:
    found: int
    sent: int


def expiry_request(hold_id: str, expires_at: str) -> str:
    """The expiry request for a hold, as a message body: the same hold always gives the same body."""
    return json.dumps(
        {
            "kind": "expiry",
            "posting_id": expiry_posting_id(hold_id),
            "hold_id": hold_id,
            "effective_at": expires_at,
            "description": "hold expired",
        },
        separators=(",", ":"),
    )


def sweep_expired_holds(ledger: Ledger, queue: PostingQueue, now: str, limit: int = 1000) -> SweepReport:
    """Send an expiry request for every open hold whose expires_at is at or before `now` (UTC text).

    On a FIFO queue each request is a message group of its own (its posting_id): an expiry waits for
    nothing and holds nothing up, since whether it or a racing capture wins is decided by the time,
    not by the order they arrive in.
    """
    expired = ledger.expired_holds(now, limit=limit)
    sent = queue.send(
        [expiry_request(hold_id, expires_at) for hold_id, expires_at in expired],
        group_ids=[expiry_posting_id(hold_id) for hold_id, _ in expired],
    )
    return SweepReport(found=len(expired), sent=sent)
