"""Period close: the books up to an instant are final. Pure.

An operator closes the ledger's books through an instant (`through`). From then on a request whose
value date (`effective_at`) is at or before it is refused with PERIOD_CLOSED, and the figures as of
any value date up to it no longer change.

A close is recorded at once but comes in force one commit horizon later (`in_force_from`): a
request decided before that instant applies the close before it. So no request needs the period in
its transaction (no item every request would share), and yet nothing dated in the closed period
commits once the close is in force: a request that read the period before the close was recorded
commits within the horizon, and one that read it after applies it from `in_force_from` on.

An expiry is the ledger's own act, not a client's: a hold that expired within a closed period is
released on the first instant after it, never refused (else the hold could never be released).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from posting.domain.books import COMMIT_HORIZON_SECONDS
from posting.domain.model import utc_timestamp
from posting.domain.outcomes import PostingRejected, Reason
from posting.domain.plan import PostingPlan
from posting.domain.requests import ChainRequest, ExpiryRequest, Request


class PeriodCloseRefused(ValueError):
    """An operator's close that the ledger does not take, with why."""


@dataclass(frozen=True)
class Period:
    """The ledger's period close as recorded: closed through `through` from `in_force_from` on, and
    through `previous` before that. `revision` counts the closes so far."""

    through: str | None = None
    in_force_from: str | None = None
    previous: str | None = None
    revision: int = 0
    closed_at: str | None = None
    closed_by: str | None = None
    note: str = ""

    def closed_through(self, decided_at: str) -> str | None:
        """What is closed for a request decided at `decided_at` (UTC text): None if nothing."""
        if self.in_force_from is not None and decided_at >= self.in_force_from:
            return self.through
        return self.previous

    def close(self, through: str, now: datetime, by: str, note: str = "") -> Period:
        """This period closed further, through `through`, by an operator at `now`.

        Raises PeriodCloseRefused when the instant is not yet past, is not after what is closed, or
        the close before is not yet in force (a close is in force before the next one is recorded).
        """
        recorded = utc_timestamp(now)
        if through > recorded:
            raise PeriodCloseRefused(f"{through} is not past yet: a period is closed once it has ended")
        if self.through is not None and through <= self.through:
            raise PeriodCloseRefused(f"the books are already closed through {self.through}")
        if self.in_force_from is not None and recorded < self.in_force_from:
            raise PeriodCloseRefused(
                f"the close through {self.through} comes in force at {self.in_force_from}; close again after it"
            )
        return Period(
            through=through,
            in_force_from=utc_timestamp(now + timedelta(seconds=COMMIT_HORIZON_SECONDS)),
            previous=self.through,
            revision=self.revision + 1,
            closed_at=recorded,
            closed_by=by,
            note=note,
        )


def check_period(request: Request, closed_through: str | None) -> None:
    """Refuse a request dated in the closed period (any member of a chain, too); an expiry is never
    refused (see after_close)."""
    if closed_through is None:
        return
    for each in [request, *request.requests] if isinstance(request, ChainRequest) else [request]:
        if isinstance(each, ExpiryRequest) or each.effective_at is None:
            continue
        effective_at = utc_timestamp(each.effective_at)
        if effective_at <= closed_through:
            where = f"{each.posting_id}: " if each is not request else ""
            raise PostingRejected(
                Reason.PERIOD_CLOSED,
                f"{where}effective_at {effective_at} falls in the period closed through {closed_through}",
            )


def after_close(plan: PostingPlan, closed_through: str | None) -> PostingPlan:
    """An expiry's plan with its lines dated on the first instant after the closed period when its
    hold expired within it; any other plan as it is."""
    if closed_through is None or not isinstance(plan.request, ExpiryRequest):
        return plan
    moment = datetime.fromisoformat(closed_through.replace("Z", "+00:00")) + timedelta(milliseconds=1)
    first_open = utc_timestamp(moment)
    entries = tuple(
        replace(entry, effective_at=first_open) if entry.effective_at <= closed_through else entry
        for entry in plan.entries
    )
    return replace(plan, entries=entries)
