"""Ledger rules: balance per currency, account checks, holds and reversals, and the plan of changes
every kind of request makes.

Pure functions over the models; the adapter turns a plan into one DynamoDB transaction.

Every kind reduces to three lists of legs applied in this order: `releases` (pending amounts a hold
gave up), `holds` (new pending amounts) and `posts` (posted movements, one statement entry each).
An account's available balance is posted less what holds may still take out (model.available_balance);
a leg that lowers it is refused beyond the overdraft limit, for postings and holds alike.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from posting.domain.model import AccountState, AccountStatus, Leg, PostingRequest, Side, utc_timestamp
from posting.domain.outcomes import BalanceAfter, Decision, PostingRejected, Reason, Status, TransientPostingError
from posting.domain.requests import (
    CaptureRequest,
    ExpiryRequest,
    HoldRequest,
    Request,
    ReversalRequest,
    VoidRequest,
    kind_of,
)


class HoldState:
    OPEN = "open"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"
    ALL = ("open", "captured", "voided", "expired")


REVERSIBLE_KINDS = ("posting", "capture")


@dataclass(frozen=True)
class Entry:
    """One line of an account statement: a leg as booked, with the balance right after it.

    On an unsharded account `sequence` counts the account's entries and `balance_after` is exact when
    written. A hot account's entries have no shared sequence (0) and are written without knowing the
    balance (None): a statement rebuilds it from `signed_amount`, merging in recorded order.
    """

    account_id: str
    sequence: int
    posting_id: str
    side: Side
    amount: int
    currency: str
    balance_after: int | None
    kind: str = "posting"
    recorded_at: str = ""
    leg: int = 0
    shard: int | None = None
    signed_amount: int = 0


@dataclass(frozen=True)
class BalanceChange:
    """Replace an unsharded account's figures, provided they are still the ones read (optimistic lock)."""

    account_id: str
    currency: str
    expected_version: int
    version: int
    balance: int
    expected_pending_debits: int = 0
    expected_pending_credits: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    # Releasing a hold is allowed on a frozen or closed account; anything else needs it open.
    require_open: bool = True
    available: int = 0


@dataclass(frozen=True)
class ShardChange:
    """Add to one shard of a hot account: no prior read, no version; only its status is checked."""

    account_id: str
    shard: int
    posted: int
    pending_debits: int
    pending_credits: int
    entries: int
    require_open: bool = True


@dataclass(frozen=True)
class HoldSettlement:
    """Move the hold `hold_id` from open to `state`, on condition that it is still open."""

    hold_id: str
    state: str


@dataclass(frozen=True)
class ReversalMark:
    """Record on the original how much of it is now reversed, on condition it moved no further meanwhile."""

    original_id: str
    expected_version: int
    reversed: dict[str, int]


@dataclass(frozen=True)
class PostingPlan:
    request: Request
    changes: tuple[BalanceChange, ...]
    entries: tuple[Entry, ...]
    shard_changes: tuple[ShardChange, ...] = ()
    settlement: HoldSettlement | None = None
    reversal: ReversalMark | None = None
    posted_legs: tuple[Leg, ...] = ()
    pending_legs: tuple[Leg, ...] = ()
    hot_accounts: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> str:
        return kind_of(self.request)


def check_balanced(legs: Sequence[Leg] | PostingRequest) -> None:
    """Per currency, the debits must equal the credits."""
    if not isinstance(legs, Sequence):
        legs = legs.legs
    net: dict[str, int] = defaultdict(int)
    for leg in legs:
        net[leg.currency] += leg.amount if leg.side == Side.DEBIT else -leg.amount
    off = {currency: amount for currency, amount in sorted(net.items()) if amount}
    if off:
        summary = ", ".join(
            f"{currency} debits exceed credits by {amount}"
            if amount > 0
            else f"{currency} credits exceed debits by {-amount}"
            for currency, amount in off.items()
        )
        raise PostingRejected(Reason.UNBALANCED, summary)


def check_content(request: Request) -> None:
    """Everything decidable from the request alone, beyond its schema: its legs balance."""
    legs = getattr(request, "legs", None)
    if legs:
        check_balanced(legs)


def shard_of(key: str, shards: int) -> int:
    """A stable shard for a key (a posting_id, or a hold's id for everything that settles it)."""
    if shards <= 1:
        return 0
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % shards


def referenced_id(request: Request) -> str | None:
    """The posting_id whose decision this request acts on: the hold, or the reversed original."""
    if isinstance(request, CaptureRequest | VoidRequest | ExpiryRequest):
        return request.hold_id
    if isinstance(request, ReversalRequest):
        return request.reverses
    return None


def accounts_touched(request: Request, reference: Decision | None = None) -> list[str]:
    """The accounts a request may change, in order (a void or capture touches its hold's)."""
    legs: list[dict[str, Any] | Leg] = list(getattr(request, "legs", None) or [])
    if reference is not None:
        if isinstance(request, CaptureRequest | VoidRequest | ExpiryRequest):
            legs += _legs_of(reference, "pending_legs")
        if isinstance(request, ReversalRequest) and not legs:
            legs += _legs_of(reference, "posted_legs")
    return list(dict.fromkeys(leg.account_id for leg in _as_legs(legs)))


def plan_posting(request: PostingRequest, accounts: Mapping[str, AccountState]) -> PostingPlan:
    """Check a posting against the accounts it touches and compute every balance it leaves behind.

    `accounts` holds the current state of the accounts that exist. Legs are booked in request order;
    several legs on one account become several entries and one balance change. A leg that lowers an
    account's available balance below its overdraft limit rejects the whole posting; legs that raise
    a balance are always allowed, even on an account already beyond its limit.
    """
    check_balanced(request.legs)
    return _plan(request, accounts, posts=request.legs, shard_key=request.posting_id)


def plan_request(
    request: Request,
    accounts: Mapping[str, AccountState],
    reference: Decision | None,
    decided_at: datetime,
) -> PostingPlan:
    """Plan a request of any kind at `decided_at`, given the decision it refers to (hold or original)."""
    if isinstance(request, PostingRequest):
        return plan_posting(request, accounts)
    check_content(request)
    if isinstance(request, HoldRequest):
        if request.expires_at is not None and request.expires_at <= decided_at:
            raise PostingRejected(Reason.HOLD_EXPIRED, f"hold {request.posting_id} expires before it is decided")
        plan = _plan(request, accounts, holds=request.legs, shard_key=request.posting_id)
        return _with(plan, pending_legs=tuple(request.legs))
    if isinstance(request, CaptureRequest | VoidRequest | ExpiryRequest):
        return _plan_settlement(request, accounts, reference, decided_at)
    return _plan_reversal(request, accounts, reference)


def _plan_settlement(
    request: CaptureRequest | VoidRequest | ExpiryRequest,
    accounts: Mapping[str, AccountState],
    hold: Decision | None,
    decided_at: datetime,
) -> PostingPlan:
    hold_id = request.hold_id
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
        plan = _plan(request, accounts, releases=held, posts=captured, shard_key=hold_id, check_posts=False)
        return _with(plan, settlement=HoldSettlement(hold_id, HoldState.CAPTURED), posted_legs=tuple(captured))
    state = HoldState.EXPIRED if isinstance(request, ExpiryRequest) else HoldState.VOIDED
    plan = _plan(request, accounts, releases=held, shard_key=hold_id)
    return _with(plan, settlement=HoldSettlement(hold_id, state))


def _plan_reversal(
    request: ReversalRequest, accounts: Mapping[str, AccountState], original: Decision | None
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
    plan = _plan(request, accounts, posts=legs, shard_key=request.posting_id)
    mark = ReversalMark(original_id, original.version or 0, reversed_now)
    return _with(plan, reversal=mark, posted_legs=tuple(legs))


def decision_for(plan: PostingPlan, request_hash: str, message_id: str | None, decided_at: str) -> Decision:
    """The decision an accepted plan records under its posting_id, with what its kind must remember."""
    request = plan.request
    kind = plan.kind
    expires_at = getattr(request, "expires_at", None)
    return Decision(
        posting_id=request.posting_id,
        status=Status.POSTED,
        request_hash=request_hash,
        balances=tuple(
            BalanceAfter(
                account_id=c.account_id,
                currency=c.currency,
                balance=c.balance,
                version=c.version,
                posted=c.balance,
                pending_debits=c.pending_debits,
                pending_credits=c.pending_credits,
                available=c.available,
            )
            for c in plan.changes
        ),
        decided_at=decided_at,
        message_id=message_id,
        request=request.model_dump(mode="json", exclude_none=kind != "posting"),
        kind=None if kind == "posting" else kind,
        hold_id=getattr(request, "hold_id", None),
        reverses=getattr(request, "reverses", None),
        posted_legs=[leg.model_dump(mode="json") for leg in plan.posted_legs]
        if kind in ("capture", "reversal")
        else None,
        pending_legs=[leg.model_dump(mode="json") for leg in plan.pending_legs] if kind == "hold" else None,
        expires_at=utc_timestamp(expires_at) if expires_at is not None else None,
        hold_state=HoldState.OPEN if kind == "hold" else None,
    )


def reversal_key(account_id: str, side: str, currency: str) -> str:
    return f"{account_id}|{side}|{currency}"


def _plan(  # noqa: PLR0912 - one pass over the three lists of legs reads best as one function
    request: Request,
    accounts: Mapping[str, AccountState],
    *,
    releases: Sequence[Leg] = (),
    holds: Sequence[Leg] = (),
    posts: Sequence[Leg] = (),
    shard_key: str,
    check_posts: bool = True,
) -> PostingPlan:
    involved = list(dict.fromkeys(leg.account_id for leg in [*releases, *holds, *posts]))
    missing = [account_id for account_id in involved if account_id not in accounts]
    if missing:
        raise PostingRejected(Reason.ACCOUNT_NOT_FOUND, f"no such account: {', '.join(missing)}")
    # Only giving money back (a release) may touch an account that is no longer open.
    needs_open = {leg.account_id for leg in [*holds, *posts]}
    for account_id in involved:
        status = accounts[account_id].account.status
        if account_id in needs_open and status != AccountStatus.OPEN:
            raise PostingRejected(Reason.ACCOUNT_NOT_OPEN, f"account {account_id} is {status}")
    for leg in [*holds, *posts]:
        currency = accounts[leg.account_id].account.currency
        if leg.currency != currency:
            raise PostingRejected(
                Reason.CURRENCY_MISMATCH, f"leg in {leg.currency} on account {leg.account_id}, which holds {currency}"
            )

    posted = {a: accounts[a].balance for a in involved}
    pending = {a: [accounts[a].pending_debits, accounts[a].pending_credits] for a in involved}
    version = {a: accounts[a].version for a in involved}
    moved: dict[str, list[int]] = {a: [0, 0, 0, 0] for a in involved}  # posted, pending D, pending C, entries

    def available(account_id: str) -> int:
        state = accounts[account_id]
        debits, credits = pending[account_id]
        return posted[account_id] - (debits if state.account.normal_balance == Side.CREDIT else credits)

    def check(account_id: str, leg: Leg) -> None:
        limit = accounts[account_id].account.overdraft_limit
        if limit is not None and available(account_id) < -limit:
            raise PostingRejected(
                Reason.INSUFFICIENT_FUNDS,
                # No figures: the event goes to every consumer of the bus, and no party to a posting
                # learns another account's balance or limit from a rejection.
                f"account {account_id} has not enough {leg.currency} available for this posting",
            )

    for leg in releases:
        index = 0 if leg.side == Side.DEBIT else 1
        pending[leg.account_id][index] -= leg.amount
        moved[leg.account_id][1 + index] -= leg.amount
    for leg in holds:
        index = 0 if leg.side == Side.DEBIT else 1
        pending[leg.account_id][index] += leg.amount
        moved[leg.account_id][1 + index] += leg.amount
        if leg.side != accounts[leg.account_id].account.normal_balance:
            check(leg.account_id, leg)
    entries = []
    for index, leg in enumerate(posts):
        state = accounts[leg.account_id]
        change = state.signed_amount(leg)
        posted[leg.account_id] += change
        moved[leg.account_id][0] += change
        moved[leg.account_id][3] += 1
        hot = state.account.is_hot
        if not hot:
            version[leg.account_id] += 1
        if check_posts and change < 0:
            check(leg.account_id, leg)
        entries.append(
            Entry(
                account_id=leg.account_id,
                sequence=0 if hot else version[leg.account_id],
                posting_id=request.posting_id,
                side=leg.side,
                amount=leg.amount,
                currency=leg.currency,
                balance_after=None if hot else posted[leg.account_id],
                kind=kind_of(request),
                leg=index,
                shard=shard_of(shard_key, state.account.balance_shards) if hot else None,
                signed_amount=change,
            )
        )
    changes = []
    shard_changes = []
    for account_id in involved:
        state = accounts[account_id]
        if state.account.is_hot:
            shard_changes.append(
                ShardChange(
                    account_id=account_id,
                    shard=shard_of(shard_key, state.account.balance_shards),
                    posted=moved[account_id][0],
                    pending_debits=moved[account_id][1],
                    pending_credits=moved[account_id][2],
                    entries=moved[account_id][3],
                    require_open=account_id in needs_open,
                )
            )
            continue
        changes.append(
            BalanceChange(
                account_id=account_id,
                currency=state.account.currency,
                expected_version=state.version,
                version=version[account_id],
                balance=posted[account_id],
                expected_pending_debits=state.pending_debits,
                expected_pending_credits=state.pending_credits,
                pending_debits=pending[account_id][0],
                pending_credits=pending[account_id][1],
                require_open=account_id in needs_open,
                available=available(account_id),
            )
        )
    return PostingPlan(
        request=request,
        changes=tuple(changes),
        entries=tuple(entries),
        shard_changes=tuple(shard_changes),
        posted_legs=tuple(posts),
        hot_accounts=tuple(a for a in involved if accounts[a].account.is_hot),
    )


def _with(plan: PostingPlan, **fields: Any) -> PostingPlan:
    from dataclasses import replace

    return replace(plan, **fields)


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
