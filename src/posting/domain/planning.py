"""Planning any request: what it needs read, and its plan. The one entry the post step uses.

A request of any kind but a chain acts on at most one earlier decision (the hold it settles, the
original it reverses) and is planned by posting.domain.ledger; a chain acts on its members'
references and is planned member by member by posting.domain.chains.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from posting.domain.chains import chain_accounts, chain_references, plan_chain
from posting.domain.content import referenced_id
from posting.domain.ledger import accounts_touched, needs_read, plan_request
from posting.domain.model import AccountState, utc_timestamp
from posting.domain.outcomes import Decision, PostingRejected, Reason
from posting.domain.periods import Period, after_close, check_period
from posting.domain.plan import PostingPlan, transaction_items
from posting.domain.requests import MAX_TRANSACTION_ITEMS, ChainRequest, Request


def references_of(request: Request) -> list[str]:
    """The earlier decisions the request acts on, to be read before it is planned."""
    if isinstance(request, ChainRequest):
        return chain_references(request)
    reference = referenced_id(request)
    return [reference] if reference else []


def accounts_of(request: Request, references: Mapping[str, Decision | None] | None = None) -> list[str]:
    """The accounts the request may change, given the decisions it acts on (when read)."""
    found = references or {}
    if isinstance(request, ChainRequest):
        return chain_accounts(request, found)
    reference = referenced_id(request)
    return accounts_touched(request, found.get(reference) if reference else None)


def member_ids(request: Request) -> list[str]:
    """The posting_ids a request decides besides its own: a chain's members'."""
    return [member.posting_id for member in request.requests] if isinstance(request, ChainRequest) else []


def names_value_date(request: Request) -> bool:
    """Whether the request names a value date of its own (a chain's member may): only such a request
    needs the period close read to be decided."""
    members = request.requests if isinstance(request, ChainRequest) else [request]
    return any(member.effective_at is not None for member in [request, *members])


def must_read(request: Request) -> bool:
    """Whether it is only ever decided on figures read for it (see ledger.needs_read)."""
    if isinstance(request, ChainRequest):
        return needs_read(request) or any(needs_read(member) for member in request.requests)
    return needs_read(request)


def plan(
    request: Request,
    accounts: Mapping[str, AccountState],
    references: Mapping[str, Decision | None],
    decided_at: datetime,
    period: Period | None = None,
) -> PostingPlan:
    """The request's plan at decided_at; raises PostingRejected when the ledger must refuse it.

    `period` is the ledger's period close, read when the request names a value date of its own
    (else its value date is the instant it is decided, after any closed period)."""
    closed_through = period.closed_through(utc_timestamp(decided_at)) if period is not None else None
    check_period(request, closed_through)
    if isinstance(request, ChainRequest):
        return plan_chain(request, accounts, references, decided_at)
    reference = referenced_id(request)
    planned = plan_request(request, accounts, references.get(reference) if reference else None, decided_at)
    planned = after_close(planned, closed_through)
    items = transaction_items(planned)
    if items > MAX_TRANSACTION_ITEMS:
        # Only a capture that splits its legs over some of its hold's accounts, leaving others to a
        # release of their own, can come this far: every other request fits by its leg limit.
        raise PostingRejected(
            Reason.TRANSACTION_TOO_LARGE,
            f"it needs {items} items in its transaction; one transaction holds {MAX_TRANSACTION_ITEMS}",
        )
    return planned
