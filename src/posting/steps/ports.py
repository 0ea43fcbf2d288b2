"""What the steps need from the ledger, as a Protocol: the steps depend on this, never on DynamoDB.

`posting.adapters.ledger_table.LedgerTable` implements it on the ledger table; the unit tests' fake
ledger (tests/fake_ledger.py) implements it in memory, and one contract suite
(tests/contract/test_ledger_contract.py) proves the two behave alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from posting.domain.accounts import AccountAct
from posting.domain.books import Checkpoint, Figures
from posting.domain.model import Account, AccountState
from posting.domain.outcomes import Decision
from posting.domain.periods import Period
from posting.domain.plan import PostingPlan


class Ledger(Protocol):
    def get_decision(self, posting_id: str) -> Decision | None:
        """The decision recorded under a posting_id, read strongly consistently; None if there is none."""
        ...

    def get_decisions(self, posting_ids: Iterable[str]) -> dict[str, Decision]:
        """The decisions recorded under these posting_ids (those that have one), read strongly consistently."""
        ...

    def read_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The accounts that exist among `account_ids`, read strongly consistently: an account with a
        limit with its figures (`known`), one without with its terms and status only."""
        ...

    def read_period(self) -> Period:
        """The ledger's period close as recorded, read strongly consistently (Period() if never closed)."""
        ...

    def record_posting(self, plan: PostingPlan, request_hash: str, message_id: str) -> Decision:
        """Apply a plan in one transaction, all or nothing, and return its decision.

        Raises PostingAlreadyDecided (the id has a decision: nothing was written), ConcurrentUpdate
        (a condition failed: it carries the accounts as they were found) or TransientPostingError
        (throttling, transaction conflicts, timeouts).
        """
        ...

    def record_rejection(self, decision: Decision) -> Decision:
        """Record a rejection under its posting_id; raises PostingAlreadyDecided if it has a decision."""
        ...

    def expired_holds(self, now: str, limit: int = 500) -> list[tuple[str, str]]:
        """(hold_id, expires_at) of open holds whose expires_at is at or before `now`."""
        ...

    def unlimited_accounts(self) -> list[tuple[str, int]]:
        """(account_id, lanes) of every account without a limit."""
        ...

    def lane_since_checkpoint(self, account_id: str, lane: int, through: str) -> tuple[Checkpoint | None, Figures, int]:
        """A lane's latest checkpoint at or before `through`, the sums of its lines after it up to
        `through`, and how many lines that is."""
        ...

    def write_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Write a lane's checkpoint unless one exists at that instant; True if it was written."""
        ...


class LedgerRecords(Protocol):
    """What operators' acts need from the ledger (posting.steps.ledger_acts)."""

    def open_account(self, account: Account, opened_at: str, *, by: str = "") -> AccountState:
        """Open an account with zero figures and its first revision, owing its event; raises
        AccountAlreadyExists if the id is taken."""
        ...

    def account_figures(self, account_id: str) -> AccountState | None:
        """The account with its figures as of now (an account without a limit: its lines summed)."""
        ...

    def record_account_act(self, act: AccountAct) -> None:
        """Write the act and its revision, owing its event, on condition the account is as it was
        decided on; raises AccountActRefused when it is not (read it again), TransientPostingError
        when a posting held it."""
        ...

    def read_period(self) -> Period: ...

    def record_period_close(self, period: Period) -> None:
        """Write a close, owing its event, on condition no other was recorded since it was decided
        (PeriodCloseRefused)."""
        ...

    def announcements(self, limit: int) -> list[tuple[str, AccountAct | Period]]:
        """The records the outbox says are owed an event, oldest first, each with its outbox key."""
        ...

    def forget_announcements(self, keys: list[str]) -> None: ...
