"""Ledger rules: balance per currency, account checks, holds and reversals, and the plan
(posting.domain.plan) of the changes every kind of request makes.

Pure functions over the models; the adapter turns a plan into one DynamoDB transaction.

Every kind reduces to three lists of legs applied in this order: `releases` (pending amounts a hold
gave up), `holds` (new pending amounts) and `posts` (posted movements, one statement entry each).
An account's available balance is posted less what holds may still take out (model.available_balance).
A request whose legs on an account net to a decrease of its available balance is refused when that
would take it beyond its overdraft limit, for postings, holds and reversals alike; the order of the
legs never changes the outcome.

The two kinds of account are written differently (docs/design/contention.md):

- an account with a limit keeps one balance item, which each request changes by adding to it
  (`AccountChange`), on conditions DynamoDB checks when it commits: open, enough headroom, and, when
  the request was planned from a read of the account, that nothing moved since (`pinned`);
- an account without a limit keeps no balance item at all: each request writes its lines to one of
  the account's lanes (`Entry.lane`), so no two requests ever share an item on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from posting.domain.content import check_balanced, check_content
from posting.domain.lines import request_lines
from posting.domain.model import (
    AccountState,
    AccountStatus,
    Leg,
    PostingRequest,
    Side,
    available_balance,
    utc_timestamp,
)
from posting.domain.outcomes import (
    ConcurrentUpdate,
    Decision,
    PostingRejected,
    Reason,
    Status,
    TransientPostingError,
)
from posting.domain.plan import (
    REVERSIBLE_KINDS,
    AccountChange,
    HoldSettlement,
    HoldState,
    PostingPlan,
    ReversalMark,
    reversal_key,
)
from posting.domain.requests import (
    CaptureRequest,
    ExpiryRequest,
    HoldRequest,
    Request,
    ReversalRequest,
    VoidRequest,
)


def accounts_touched(request: Request, reference: Decision | None = None) -> list[str]:
    """The accounts a request may change, in order (a void or capture touches its hold's)."""
    legs: list[dict[str, Any] | Leg] = list(getattr(request, "legs", None) or [])
    if reference is not None:
        if isinstance(request, CaptureRequest | VoidRequest | ExpiryRequest):
            legs += _legs_of(reference, "pending_legs")
        if isinstance(request, ReversalRequest) and not legs:
            legs += _legs_of(reference, "posted_legs")
    return list(dict.fromkeys(leg.account_id for leg in _as_legs(legs)))


def plan_posting(request: PostingRequest, accounts: Mapping[str, AccountState], decided_at: str = "") -> PostingPlan:
    """Check a posting against the accounts it touches and compute what it changes on each.

    `accounts` holds the accounts that exist. Legs are booked in request order, one entry each; the
    legs on one account net to one change of its balance. A posting that nets to a decrease of an
    account's available balance is refused when that would take it beyond its overdraft limit,
    whatever the order of its legs; one that nets to an increase is always allowed, even on an
    account already beyond its limit.
    """
    check_balanced(request.legs)
    return _plan(request, accounts, decided_at, posts=_balancing(request.legs, accounts))


def needs_read(request: Request) -> bool:
    """Whether the request can only be decided on figures read for it (never added blind): it has
    expectations, or a balancing leg whose amount depends on what the account has."""
    return bool(request.expect) or any(getattr(leg, "balancing", None) for leg in getattr(request, "legs", None) or ())


def _balancing(legs: Sequence[Leg], accounts: Mapping[str, AccountState]) -> Sequence[Leg]:
    """The legs with a balancing leg's amount set to what its account can give, up to what it asks
    (the other leg follows). A leg that does not lower its account's available balance moves all of it."""
    balancing = next((leg for leg in legs if leg.balancing), None)
    if balancing is None or balancing.account_id not in accounts:
        return legs  # no balancing leg; or an unknown account, refused by planning
    state = accounts[balancing.account_id]
    if state.account.is_unlimited or state.signed_amount(balancing) > 0:
        return legs
    if not state.known:
        raise ConcurrentUpdate(f"a balancing leg needs {balancing.account_id}'s figures read")
    headroom = state.headroom or 0
    moved = min(balancing.amount, headroom)
    if moved <= 0:
        raise PostingRejected(
            Reason.INSUFFICIENT_FUNDS,
            f"account {balancing.account_id} has nothing available for its balancing leg",
        )
    return [leg.model_copy(update={"amount": moved}) for leg in legs]


def check_expectations(request: Request, accounts: Mapping[str, AccountState], plan: PostingPlan) -> None:
    """Each of the request's expectations holds on the figures the plan was made from (and pins)."""
    changed = {change.account_id for change in plan.changes}
    touched = {entry.account_id for entry in plan.entries} | changed
    for expectation in request.expect or ():
        account_id = expectation.account_id
        said = f"it expects {expectation.describe()}"
        state = accounts.get(account_id)
        if state is None or account_id not in touched:
            raise PostingRejected(Reason.PRECONDITION_FAILED, f"{said}, an account it does not change")
        if state.account.is_unlimited:
            raise PostingRejected(
                Reason.PRECONDITION_FAILED, f"{said}, but {account_id} has no limit: its figures are not read"
            )
        if not state.known:
            raise ConcurrentUpdate(f"an expectation needs {account_id}'s figures read")
        held = (expectation.version is None or state.version == expectation.version) and (
            expectation.available_at_least is None or state.available >= expectation.available_at_least
        )
        if not held:
            raise PostingRejected(Reason.PRECONDITION_FAILED, f"{said}, which does not hold")


def plan_request(
    request: Request,
    accounts: Mapping[str, AccountState],
    reference: Decision | None,
    decided_at: datetime,
) -> PostingPlan:
    """Plan a request of any kind at `decided_at`, given the decision it refers to (hold or original)."""
    plan = _plan_kind(request, accounts, reference, decided_at)
    check_expectations(request, accounts, plan)
    return plan


def _plan_kind(
    request: Request,
    accounts: Mapping[str, AccountState],
    reference: Decision | None,
    decided_at: datetime,
) -> PostingPlan:
    recorded_at = utc_timestamp(decided_at)
    if isinstance(request, PostingRequest):
        return plan_posting(request, accounts, recorded_at)
    check_content(request)
    if isinstance(request, HoldRequest):
        if request.expires_at is not None and request.expires_at <= decided_at:
            raise PostingRejected(Reason.HOLD_EXPIRED, f"hold {request.posting_id} expires before it is decided")
        plan = _plan(request, accounts, recorded_at, holds=request.legs)
        return replace(plan, pending_legs=tuple(request.legs))
    if isinstance(request, CaptureRequest | VoidRequest | ExpiryRequest):
        return _plan_settlement(request, accounts, reference, decided_at)
    if isinstance(request, ReversalRequest):
        return _plan_reversal(request, accounts, reference, recorded_at)
    raise TypeError("a chain is planned member by member (posting.domain.chains)")


def _plan_settlement(
    request: CaptureRequest | VoidRequest | ExpiryRequest,
    accounts: Mapping[str, AccountState],
    hold: Decision | None,
    decided_at: datetime,
) -> PostingPlan:
    hold_id = request.hold_id
    recorded_at = utc_timestamp(decided_at)
    if hold is None or hold.status != Status.POSTED:
        state = "was rejected" if hold is not None else "does not exist"
        raise PostingRejected(Reason.HOLD_NOT_FOUND, f"hold {hold_id} {state}")
    if (hold.kind or "posting") != "hold":
        raise PostingRejected(Reason.NOT_A_HOLD, f"{hold_id} is a {hold.kind or 'posting'}, not a hold")
    if hold.hold_state == HoldState.CAPTURED:
        raise PostingRejected(Reason.HOLD_ALREADY_CAPTURED, f"hold {hold_id} was captured by {hold.settled_by}")
    if hold.hold_state == HoldState.VOIDED:
        raise PostingRejected(Reason.HOLD_ALREADY_VOIDED, f"hold {hold_id} was voided by {hold.settled_by}")
    expired = hold.expires_at is not None and datetime.fromisoformat(hold.expires_at) <= decided_at
    if hold.hold_state == HoldState.EXPIRED or (expired and not isinstance(request, ExpiryRequest)):
        raise PostingRejected(Reason.HOLD_EXPIRED, f"hold {hold_id} expired at {hold.expires_at}")
    if isinstance(request, ExpiryRequest) and not expired:
        # Not a rejection: that would consume the sweeper's derived id for good. Try again later.
        raise TransientPostingError(f"hold {hold_id} does not expire until {hold.expires_at}")
    held = _as_legs(_legs_of(hold, "pending_legs"))
    if isinstance(request, CaptureRequest):
        captured = list(request.legs) if request.legs else held
        allowed = _totals(held)
        for key, amount in _totals(captured).items():
            if amount > allowed.get(key, 0):
                account_id, side, currency = key
                raise PostingRejected(
                    Reason.EXCEEDS_HOLD,
                    f"{side} of {amount} {currency} on {account_id} exceeds the hold's {allowed.get(key, 0)}",
                )
        # A capture never lowers what is available: it releases at least what it posts.
        plan = _plan(request, accounts, recorded_at, releases=held, posts=captured)
        settlement = HoldSettlement(hold_id, HoldState.CAPTURED, request.posting_id)
        return replace(plan, settlement=settlement, posted_legs=tuple(captured))
    state = HoldState.EXPIRED if isinstance(request, ExpiryRequest) else HoldState.VOIDED
    plan = _plan(request, accounts, recorded_at, releases=held)
    return replace(plan, settlement=HoldSettlement(hold_id, state, request.posting_id))


def _plan_reversal(
    request: ReversalRequest, accounts: Mapping[str, AccountState], original: Decision | None, recorded_at: str
) -> PostingPlan:
    original_id = request.reverses
    if original is None:
        raise PostingRejected(Reason.POSTING_NOT_FOUND, f"posting {original_id} does not exist")
    kind = original.kind or "posting"
    if original.status != Status.POSTED or kind not in REVERSIBLE_KINDS:
        what = "was rejected" if original.status != Status.POSTED else f"is a {kind}"
        raise PostingRejected(
            Reason.NOT_REVERSIBLE, f"posting {original_id} {what}: only posted postings and captures reverse"
        )
    posted = _as_legs(_legs_of(original, "posted_legs"))
    legs = list(request.legs) if request.legs else [_mirror(leg) for leg in posted]
    room = _totals(posted)
    already = dict(original.reversed or {})
    reversed_now = dict(already)
    for (account_id, side, currency), amount in _totals(legs).items():
        mirrored = (account_id, _opposite(side), currency)
        key = reversal_key(*mirrored)
        total = already.get(key, 0) + amount
        if total > room.get(mirrored, 0):
            raise PostingRejected(
                Reason.EXCEEDS_ORIGINAL,
                f"reversing {total} {currency} of the {mirrored[1]} on {account_id} exceeds the original's "
                f"{room.get(mirrored, 0)}",
            )
        reversed_now[key] = total
    plan = _plan(request, accounts, recorded_at, posts=legs)
    mark = ReversalMark(original_id, original.version or 0, reversed_now, (request.posting_id,))
    return replace(plan, reversal=mark, posted_legs=tuple(legs))


def _plan(
    request: Request,
    accounts: Mapping[str, AccountState],
    recorded_at: str,
    *,
    releases: Sequence[Leg] = (),
    holds: Sequence[Leg] = (),
    posts: Sequence[Leg] = (),
) -> PostingPlan:
    """The changes of three lists of legs applied in order: pending released, pending held, posted."""
    involved = list(dict.fromkeys(leg.account_id for leg in [*releases, *holds, *posts]))
    missing = [account_id for account_id in involved if account_id not in accounts]
    if missing:
        raise PostingRejected(Reason.ACCOUNT_NOT_FOUND, f"no such account: {', '.join(missing)}")
    # Only giving money back (a release) may touch an account that is no longer open. The status of
    # an account with a limit planned from its terms alone is checked by DynamoDB when it commits.
    needs_open = {leg.account_id for leg in [*holds, *posts]}
    for account_id in involved:
        state = accounts[account_id]
        status = state.account.status
        checked_here = state.known or state.account.is_unlimited
        if account_id in needs_open and checked_here and status != AccountStatus.OPEN:
            raise PostingRejected(Reason.ACCOUNT_NOT_OPEN, f"account {account_id} is {status}")
    for leg in [*holds, *posts]:
        currency = accounts[leg.account_id].account.currency
        if leg.currency != currency:
            raise PostingRejected(
                Reason.CURRENCY_MISMATCH, f"leg in {leg.currency} on account {leg.account_id}, which holds {currency}"
            )
    moved = {a: _Moves() for a in involved}
    for leg in releases:
        moved[leg.account_id].pend(leg, -leg.amount)
    for leg in holds:
        moved[leg.account_id].pend(leg, leg.amount)
    for leg in posts:
        moved[leg.account_id].post(accounts[leg.account_id].signed_amount(leg))

    changes = []
    for account_id in involved:
        state = accounts[account_id]
        if state.account.is_unlimited:
            continue
        change = moved[account_id].change(state, require_open=account_id in needs_open)
        _check_figures(change, state)
        changes.append(change)
    return PostingPlan(
        request=request,
        decided_at=recorded_at,
        changes=tuple(changes),
        entries=tuple(
            request_lines(request, accounts, recorded_at=recorded_at, releases=releases, holds=holds, posts=posts)
        ),
        posted_legs=tuple(posts),
    )


def _check_figures(change: AccountChange, state: AccountState) -> None:
    """What a change planned from a read of the account must leave: figures in range, and (when it
    lowers available) no less than the limit allows. Without a read, DynamoDB checks both."""
    after = change.after()
    if after is None:
        return
    if after.pending_debits < 0 or after.pending_credits < 0:
        # It releases more than the account holds pending: the hold was read before another
        # request released it, and the account after. Both are read again.
        raise ConcurrentUpdate(f"account {change.account_id} was read after its hold was settled")
    if not change.within_range(after):
        raise PostingRejected(
            Reason.BALANCE_OUT_OF_RANGE,
            f"it would take a figure of account {change.account_id} beyond 2^53 - 1, the most a balance may hold",
        )
    headroom = state.headroom
    if change.min_headroom is not None and headroom is not None and headroom < change.min_headroom:
        raise PostingRejected(
            Reason.INSUFFICIENT_FUNDS,
            # No figures: the event goes to every consumer of the bus, and no party to a posting
            # learns another account's balance or limit from a rejection.
            f"account {change.account_id} has not enough {state.account.currency} available for this posting",
        )


@dataclass
class _Moves:
    """What one request adds to one account's figures."""

    posted: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    entries: int = 0

    def pend(self, leg: Leg, amount: int) -> None:
        if leg.side == Side.DEBIT:
            self.pending_debits += amount
        else:
            self.pending_credits += amount

    def post(self, signed: int) -> None:
        self.posted += signed
        self.entries += 1

    def change(self, state: AccountState, require_open: bool) -> AccountChange:
        normal = state.account.normal_balance
        available = available_balance(normal, self.posted, self.pending_debits, self.pending_credits)
        return AccountChange(
            account_id=state.account_id,
            currency=state.account.currency,
            posted=self.posted,
            pending_debits=self.pending_debits,
            pending_credits=self.pending_credits,
            available=available,
            entries=self.entries,
            require_open=require_open,
            min_headroom=-available if available < 0 else None,
            pinned=state if state.known else None,
        )


def _legs_of(decision: Decision, name: str) -> list[dict[str, Any]]:
    legs = getattr(decision, name, None)
    if legs is None:
        legs = (decision.request or {}).get("legs") or []
    return list(legs)


def _as_legs(legs: Sequence[dict[str, Any] | Leg]) -> list[Leg]:
    return [leg if isinstance(leg, Leg) else Leg.model_validate(leg, strict=False) for leg in legs]


def _totals(legs: Sequence[Leg]) -> dict[tuple[str, str, str], int]:
    totals: dict[tuple[str, str, str], int] = defaultdict(int)
    for leg in legs:
        totals[(leg.account_id, str(leg.side), leg.currency)] += leg.amount
    return dict(totals)


def _opposite(side: str) -> str:
    return str(Side.CREDIT) if side == Side.DEBIT else str(Side.DEBIT)


def _mirror(leg: Leg) -> Leg:
    return leg.model_copy(update={"side": Side(_opposite(leg.side))})
