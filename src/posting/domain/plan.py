"""What a request does to the ledger, as planned: its lines, the changes to accounts with a limit,
the hold it settles or the original it reverses, and the decision it records. Pure data.

posting.domain.ledger computes a plan from a request and the accounts; the ledger adapter writes a
plan as one transaction (and the fake ledger applies it in memory).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from posting.domain.model import MAX_FIGURE, AccountState, Leg, Side, utc_timestamp
from posting.domain.outcomes import BalanceAfter, Decision, Status
from posting.domain.requests import Request, kind_of


class HoldState:
    OPEN = "open"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"
    ALL = ("open", "captured", "voided", "expired")


REVERSIBLE_KINDS = ("posting", "capture")


@dataclass(frozen=True)
class Entry:
    """One line an account's books keep of a request: a posted leg (which may also carry what the
    request holds or releases on that account and side), or a change of what is pending alone
    (`pending`). Every change of an account's figures is a line (posting.domain.lines).

    An account with a limit records each line in its own partition, in the order its balance moved;
    `balance_after`, the pending figures after and `sequence` (its entry count right after the line)
    are known when the request was planned from the account's figures, else None and 0 (a statement
    rebuilds the running balance from `signed_amount`). An account without a limit writes each line
    to one of its `lane`s, with no shared item: its figures are the sums of its lines.
    """

    account_id: str
    posting_id: str
    side: Side
    amount: int
    currency: str
    kind: str = "posting"
    leg: int = 0
    signed_amount: int = 0  # what it moves the posted balance by
    pending_debits: int = 0  # what it moves the pending figures by
    pending_credits: int = 0
    pending: bool = False  # a hold's or a release's line (no posted money moves)
    lane: int | None = None
    recorded_at: str = ""
    effective_at: str = ""
    balance_after: int | None = None
    pending_debits_after: int | None = None
    pending_credits_after: int | None = None
    sequence: int = 0

    def figures_after(self) -> tuple[int, int, int] | None:
        """(posted, pending debits, pending credits) of its account right after it, when recorded."""
        if self.balance_after is None or self.pending_debits_after is None or self.pending_credits_after is None:
            return None
        return self.balance_after, self.pending_debits_after, self.pending_credits_after


@dataclass(frozen=True)
class AccountChange:
    """What a request does to the balance item of an account with a limit: figures added (DynamoDB's
    ADD, no read needed), on conditions DynamoDB itself evaluates.

    `min_headroom` is set when the request's legs on the account net to a decrease of its available
    balance: the item must have at least that much headroom (available + limit) left. `pinned` is the
    read the change was planned from, when there is one: the write then also requires that the
    account has not moved since, so the figures after it are known exactly.
    """

    account_id: str
    currency: str
    posted: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    available: int = 0
    entries: int = 0
    # Releasing a hold is allowed on a frozen or closed account; anything else needs it open.
    require_open: bool = True
    min_headroom: int | None = None
    pinned: AccountState | None = None
    # When its last line is recorded, if later than the plan's decision time (a chain's later members).
    last_recorded_at: str = ""

    def within_range(self, state: AccountState) -> bool:
        """Whether figures stay where a balance may be: posted within +/-(2^53 - 1), pending within
        0..2^53 - 1 (what the write also asks DynamoDB to check, for every figure this change moves)."""
        return (
            (not self.posted or -MAX_FIGURE <= state.balance <= MAX_FIGURE)
            and (self.pending_debits <= 0 or state.pending_debits <= MAX_FIGURE)
            and (self.pending_credits <= 0 or state.pending_credits <= MAX_FIGURE)
        )

    def after(self) -> AccountState | None:
        """The account's figures right after this change, when it was planned from a read."""
        if self.pinned is None:
            return None
        state = self.pinned
        return state.model_copy(
            update={
                "balance": state.balance + self.posted,
                "pending_debits": state.pending_debits + self.pending_debits,
                "pending_credits": state.pending_credits + self.pending_credits,
                "version": state.version + self.entries,
            }
        )


@dataclass(frozen=True)
class HoldSettlement:
    """Move the hold `hold_id` from open to `state`, settled by `by`, on condition it is still open."""

    hold_id: str
    state: str
    by: str


@dataclass(frozen=True)
class ReversalMark:
    """Record on the original how much of it is now reversed, on condition it moved no further meanwhile."""

    original_id: str
    expected_version: int
    reversed: dict[str, int]
    by: tuple[str, ...]  # the reversals this mark records, in order


@dataclass(frozen=True)
class PostingPlan:
    request: Request
    decided_at: str
    changes: tuple[AccountChange, ...]
    entries: tuple[Entry, ...]
    settlement: HoldSettlement | None = None
    reversal: ReversalMark | None = None
    posted_legs: tuple[Leg, ...] = ()
    pending_legs: tuple[Leg, ...] = ()
    # A chain's members, in order, each planned on the state the members before it left.
    members: tuple[PostingPlan, ...] = ()

    @property
    def kind(self) -> str:
        return kind_of(self.request)

    @property
    def pinned(self) -> bool:
        return any(change.pinned is not None for change in self.changes)

    def blind(self) -> PostingPlan:
        """The same plan without its pins: it takes what DynamoDB finds, within the same conditions."""
        changes = tuple(replace(change, pinned=None) for change in self.changes)
        entries = tuple(
            replace(entry, balance_after=None, pending_debits_after=None, pending_credits_after=None, sequence=0)
            for entry in self.entries
        )
        members = tuple(member.blind() for member in self.members)
        return replace(self, changes=changes, entries=entries, members=members)


def lane_of(key: str, lanes: int) -> int:
    """A stable lane for a key (a posting_id): spreads an unlimited account's lines over its lanes."""
    if lanes <= 1:
        return 0
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % lanes


def decision_for(plan: PostingPlan, request_hash: str, message_id: str | None) -> Decision:
    """The decision an accepted plan records under its posting_id, with what its kind must remember.

    Its balances are the figures right after it of the accounts it was planned from a read of (the
    ones it pinned); an account it changed without reading it is not listed.
    """
    request = plan.request
    kind = plan.kind
    expires_at = getattr(request, "expires_at", None)
    balances = []
    for change in plan.changes:
        after = change.after()
        if after is not None:
            balances.append(
                BalanceAfter(
                    account_id=change.account_id,
                    currency=change.currency,
                    balance=after.balance,
                    version=after.version,
                    posted=after.balance,
                    pending_debits=after.pending_debits,
                    pending_credits=after.pending_credits,
                    available=after.available,
                )
            )
    return Decision(
        posting_id=request.posting_id,
        status=Status.POSTED,
        request_hash=request_hash,
        balances=tuple(balances),
        decided_at=plan.decided_at,
        message_id=message_id,
        request=request.model_dump(mode="json", exclude_none=True),
        kind=None if kind == "posting" else kind,
        hold_id=getattr(request, "hold_id", None),
        reverses=getattr(request, "reverses", None),
        posted_legs=[_leg_record(leg) for leg in plan.posted_legs] if _posts_other_legs(plan) else None,
        pending_legs=[_leg_record(leg) for leg in plan.pending_legs] if kind == "hold" else None,
        expires_at=utc_timestamp(expires_at) if expires_at is not None else None,
        hold_state=HoldState.OPEN if kind == "hold" else None,
        members=[_member(m) for m in plan.members] or None,
        external_ref=request.external_ref,
    )


def _member(member: PostingPlan) -> dict[str, Any]:
    """A chain's member as its decision and event list it; with the legs as posted when a
    balancing leg moved less than it asked."""
    found: dict[str, Any] = {"posting_id": member.request.posting_id, "kind": member.kind}
    if member.kind == "posting" and _posts_other_legs(member):
        found["moved"] = [_leg_record(leg) for leg in member.posted_legs]
    return found


@dataclass(frozen=True)
class Records:
    """What a plan writes besides accounts and lines: the decisions it puts (its own first), and the
    holds and originals outside it that it settles or marks reversed."""

    decisions: tuple[Decision, ...]
    settlements: tuple[HoldSettlement, ...]
    reversals: tuple[ReversalMark, ...]


def records_of(plan: PostingPlan, request_hash: str, message_id: str | None) -> Records:
    """The records of a plan. A chain's members are decided in the same transaction: a hold one
    member places and another settles is put already settled, and an original reversed within the
    chain is put with its reversals, since one transaction may not write one item twice."""
    decision = decision_for(plan, request_hash, message_id)
    if not plan.members:
        settlements = (plan.settlement,) if plan.settlement else ()
        reversals = (plan.reversal,) if plan.reversal else ()
        return Records((decision,), settlements, reversals)
    members: dict[str, Decision] = {}
    settlements_out: dict[str, HoldSettlement] = {}
    reversals_out: dict[str, ReversalMark] = {}
    for member in plan.members:
        request = member.request
        members[request.posting_id] = replace_decision(
            decision_for(member, request.content_hash(), message_id), chain_id=plan.request.posting_id
        )
        if member.settlement is not None:
            hold = members.get(member.settlement.hold_id)
            if hold is not None:
                members[hold.posting_id] = replace_decision(
                    hold, hold_state=member.settlement.state, settled_by=member.settlement.by
                )
            else:
                settlements_out[member.settlement.hold_id] = member.settlement
        if member.reversal is not None:
            mark = member.reversal
            original = members.get(mark.original_id)
            if original is not None:
                members[original.posting_id] = replace_decision(
                    original,
                    reversed=mark.reversed,
                    version=(original.version or 0) + 1,
                    reversed_by=[*(original.reversed_by or []), *mark.by],
                )
            elif mark.original_id in reversals_out:
                earlier = reversals_out[mark.original_id]  # reversed twice in one chain: one write
                reversals_out[mark.original_id] = replace(
                    mark, expected_version=earlier.expected_version, by=(*earlier.by, *mark.by)
                )
            else:
                reversals_out[mark.original_id] = mark
    return Records((decision, *members.values()), tuple(settlements_out.values()), tuple(reversals_out.values()))


def transaction_items(plan: PostingPlan) -> int:
    """How many items the plan's one transaction writes (what DynamoDB's 100-item limit counts)."""
    records = records_of(plan, "0" * 64, None)
    return (
        len(records.decisions)
        + len(records.settlements)
        + len(records.reversals)
        + len(plan.changes)
        + len(plan.entries)
    )


def replace_decision(decision: Decision, **fields: Any) -> Decision:
    return decision.model_copy(update=fields)


def _posts_other_legs(plan: PostingPlan) -> bool:
    """Whether what it posted is not its request's legs as sent: a capture's or a reversal's, and a
    posting's whose balancing leg moved less than it asked."""
    if plan.kind in ("capture", "reversal"):
        return True
    return plan.kind == "posting" and list(plan.posted_legs) != list(getattr(plan.request, "legs", []))


def _leg_record(leg: Leg) -> dict[str, Any]:
    return leg.model_dump(mode="json", exclude_none=True)


def reversal_key(account_id: str, side: str, currency: str) -> str:
    return f"{account_id}|{side}|{currency}"
