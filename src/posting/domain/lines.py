"""The lines a request writes to the accounts it changes. Pure.

Every change of an account's figures is a line, on accounts with and without a limit alike, so an
account's books add up to its figures at any instant, as recorded or as of a value date:

- a posted leg is one line (`signed_amount`), as a statement lists it;
- what a request holds or releases on an account is added up per account, and carried by the
  account's first posted line in the request, or else by a line of its own (`pending`: it moves no
  posted money). A capture's release therefore costs no item of its own.

Lines of an account planned from a read of it (pinned) carry the figures right after them, so a
balance at an instant walks back to the nearest such line instead of summing the account's history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from posting.domain.model import MAX_LEGS, AccountState, Leg, Side, utc_timestamp
from posting.domain.plan import Entry, lane_of
from posting.domain.requests import Request, kind_of


@dataclass
class _Running:
    """An account's figures as its lines in one request move them (pinned accounts only)."""

    posted: int
    pending_debits: int
    pending_credits: int
    version: int

    def move(self, line: Entry) -> Entry:
        self.posted += line.signed_amount
        self.pending_debits += line.pending_debits
        self.pending_credits += line.pending_credits
        self.version += 0 if line.pending else 1
        return replace(
            line,
            balance_after=self.posted,
            pending_debits_after=self.pending_debits,
            pending_credits_after=self.pending_credits,
            sequence=self.version,
        )


def request_lines(
    request: Request,
    accounts: Mapping[str, AccountState],
    *,
    recorded_at: str,
    releases: Sequence[Leg],
    holds: Sequence[Leg],
    posts: Sequence[Leg],
) -> list[Entry]:
    """The request's lines, in the order they sort in their partitions (by leg number): posted legs
    first, then what is held or released on an account where nothing was posted."""
    kind = kind_of(request)
    effective_at = utc_timestamp(request.effective_at) if request.effective_at is not None else recorded_at
    lane_key = getattr(request, "hold_id", None) or request.posting_id

    def line(leg: Leg, index: int, **figures: Any) -> Entry:
        account = accounts[leg.account_id].account
        return Entry(
            account_id=leg.account_id,
            posting_id=request.posting_id,
            side=leg.side,
            amount=leg.amount,
            currency=leg.currency,
            kind=kind,
            leg=index,
            lane=lane_of(lane_key, account.lanes) if account.is_unlimited else None,
            recorded_at=recorded_at,
            effective_at=effective_at,
            **figures,
        )

    # What is held (+) or released (-) per account, debits and credits, in the order legs name them.
    pending: dict[str, list[int]] = {}
    for sign, legs in ((-1, releases), (1, holds)):
        for leg in legs:
            moved = pending.setdefault(leg.account_id, [0, 0])
            moved[0 if leg.side == Side.DEBIT else 1] += sign * leg.amount

    def pending_figures(account_id: str) -> dict[str, int]:
        debits, credits = pending.pop(account_id, [0, 0])
        return {"pending_debits": debits, "pending_credits": credits}

    lines = [
        line(
            leg,
            index,
            signed_amount=accounts[leg.account_id].signed_amount(leg),
            **pending_figures(leg.account_id),
        )
        for index, leg in enumerate(posts)
    ]
    index = MAX_LEGS  # lines of pending money alone are numbered after every posted leg
    legs_by_account = {leg.account_id: leg for leg in [*holds, *releases]}
    for account_id, (debits, credits) in pending.items():
        if debits or credits:
            side = Side.DEBIT if debits else Side.CREDIT
            shown = legs_by_account[account_id].model_copy(update={"side": side, "amount": abs(debits or credits)})
            lines.append(line(shown, index, pending=True, pending_debits=debits, pending_credits=credits))
            index += 1
    return _with_figures_after(lines, accounts)


def _with_figures_after(lines: list[Entry], accounts: Mapping[str, AccountState]) -> list[Entry]:
    running = {
        account_id: _Running(state.balance, state.pending_debits, state.pending_credits, state.version)
        for account_id, state in accounts.items()
        if state.known and not state.account.is_unlimited
    }
    return [running[line.account_id].move(line) if line.account_id in running else line for line in lines]
