"""What the steps need from the ledger, as a Protocol: the steps depend on this, never on DynamoDB.

`posting.adapters.ledger_table.DynamoLedger` implements it on the ledger table; the unit tests' fake
ledger implements it in memory, and one contract suite proves the two behave alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from posting.domain.ledger import PostingPlan
from posting.domain.model import AccountState
from posting.domain.outcomes import Decision


class Ledger(Protocol):
    def get_decision(self, posting_id: str) -> Decision | None:
        """The decision recorded under a posting_id, read strongly consistently; None if there is none."""
        ...

    def accounts_for_planning(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The state of the accounts that exist among `account_ids`, as planning needs it."""
        ...

    def is_known_hot(self, account_id: str) -> bool:
        """Whether the account is known to take postings without a shared item (no in-batch lock)."""
        ...

    def record_posting(self, plan: PostingPlan, request_hash: str, message_id: str, decided_at: str) -> Decision:
        """Apply a plan in one transaction, all or nothing, and return its decision.

        Raises PostingAlreadyDecided (the id has a decision: nothing was written), ConcurrentUpdate
        (something the plan read has moved) or TransientPostingError (throttling, conflicts, timeouts).
        """
        ...

    def record_rejection(self, decision: Decision) -> Decision:
        """Record a rejection under its posting_id; raises PostingAlreadyDecided if it has a decision."""
        ...

    def expired_holds(self, now: str, limit: int = 500) -> list[tuple[str, str]]:
        """(hold_id, expires_at) of open holds whose expires_at is at or before `now`."""
        ...
