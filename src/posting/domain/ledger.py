"""Ledger rules: balance per currency, account checks, and the plan of balance changes a posting makes.

Pure functions over the models; the adapter turns a plan into one DynamoDB transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from posting.domain.model import AccountState, AccountStatus, PostingRequest, Side
from posting.domain.outcomes import PostingRejected, Reason


@dataclass(frozen=True)
class Entry:
    """One line of an account statement: a leg as booked, with the balance right after it."""

    account_id: str
    sequence: int
    posting_id: str
    side: Side
    amount: int
    currency: str
    balance_after: int


@dataclass(frozen=True)
class BalanceChange:
    """Replace an account's balance, provided it is still at `expected_version` (optimistic lock)."""

    account_id: str
    currency: str
    expected_version: int
    version: int
    balance: int


@dataclass(frozen=True)
class PostingPlan:
    request: PostingRequest
    changes: tuple[BalanceChange, ...]
    entries: tuple[Entry, ...]


def check_balanced(request: PostingRequest) -> None:
    """Per currency, the debits must equal the credits."""
    net: dict[str, int] = defaultdict(int)
    for leg in request.legs:
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


def plan_posting(request: PostingRequest, accounts: Mapping[str, AccountState]) -> PostingPlan:
    """Check the request against the accounts it touches and compute every balance it leaves behind.

    `accounts` holds the current state of the accounts that exist. Legs are booked in request order;
    several legs on one account become several entries and one balance change. A leg that lowers a
    balance below the account's overdraft limit rejects the whole posting; legs that raise a balance
    are always allowed, even on an account already beyond its limit.
    """
    check_balanced(request)
    involved = list(dict.fromkeys(leg.account_id for leg in request.legs))
    missing = [account_id for account_id in involved if account_id not in accounts]
    if missing:
        raise PostingRejected(Reason.ACCOUNT_NOT_FOUND, f"no such account: {', '.join(missing)}")
    for account_id in involved:
        status = accounts[account_id].account.status
        if status != AccountStatus.OPEN:
            raise PostingRejected(Reason.ACCOUNT_NOT_OPEN, f"account {account_id} is {status}")
    for leg in request.legs:
        currency = accounts[leg.account_id].account.currency
        if leg.currency != currency:
            raise PostingRejected(
                Reason.CURRENCY_MISMATCH, f"leg in {leg.currency} on account {leg.account_id}, which holds {currency}"
            )

    balance = {account_id: accounts[account_id].balance for account_id in involved}
    version = {account_id: accounts[account_id].version for account_id in involved}
    entries = []
    for leg in request.legs:
        state = accounts[leg.account_id]
        change = state.signed_amount(leg)
        balance[leg.account_id] += change
        version[leg.account_id] += 1
        limit = state.account.overdraft_limit
        if change < 0 and limit is not None and balance[leg.account_id] < -limit:
            raise PostingRejected(
                Reason.INSUFFICIENT_FUNDS,
                f"account {leg.account_id} would be at {balance[leg.account_id]} {leg.currency}, "
                f"beyond its overdraft limit of {limit}",
            )
        entries.append(
            Entry(
                account_id=leg.account_id,
                sequence=version[leg.account_id],
                posting_id=request.posting_id,
                side=leg.side,
                amount=leg.amount,
                currency=leg.currency,
                balance_after=balance[leg.account_id],
            )
        )
    changes = tuple(
        BalanceChange(
            account_id=account_id,
            currency=accounts[account_id].account.currency,
            expected_version=accounts[account_id].version,
            version=version[account_id],
            balance=balance[account_id],
        )
        for account_id in involved
    )
    return PostingPlan(request=request, changes=changes, entries=tuple(entries))
