"""How many ledger transactions a process ran, and how many were cancelled by contention.

Counted from the SDK's own events on a botocore client (the handlers' one, in a local stack), so
the ledger itself carries no counters: a TransactWriteItems that answered, and of those, the ones
cancelled for a reason that means "try again" (TransactionConflict, throttling, or a condition on an
account that moved), as opposed to a decision that already existed.
"""

from __future__ import annotations

import threading
from typing import Any

RETRIED_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


class ContentionCounter:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.transactions = 0
        self.conflicts = 0

    def attach(self, client: Any) -> ContentionCounter:
        """Count every TransactWriteItems this botocore client makes."""
        client.meta.events.register("after-call.dynamodb.TransactWriteItems", self._after_call)
        return self

    def snapshot(self) -> tuple[int, int]:
        with self._guard:
            return self.transactions, self.conflicts

    def _after_call(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        reasons = [reason.get("Code", "None") for reason in (parsed or {}).get("CancellationReasons") or []]
        # The decision is always the first action: its ConditionalCheckFailed means "already decided".
        conflict = bool(reasons) and (bool(RETRIED_REASONS & set(reasons)) or "ConditionalCheckFailed" in reasons[1:])
        with self._guard:
            self.transactions += 1
            self.conflicts += conflict
