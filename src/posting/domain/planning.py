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
from posting.domain.model import AccountState
from posting.domain.outcomes import Decision
from posting.domain.plan import PostingPlan
from posting.domain.requests import ChainRequest, Request


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
) -> PostingPlan:
    """The request's plan at decided_at; raises PostingRejected when the ledger must refuse it."""
    if isinstance(request, ChainRequest):
        return plan_chain(request, accounts, references, decided_at)
    reference = referenced_id(request)
    return plan_request(request, accounts, references.get(reference) if reference else None, decided_at)
