"""An account's lifecycle: open, freeze, unfreeze, close and a change of limit. Pure.

Each act is an operator's, recorded by the ledger as the account's next revision (who, when, why)
and announced as an event. The rules:

- freeze: an open account stops taking holds and postings; what is held on it may still be released
  (a capture posts, so it needs the account open);
- unfreeze: a frozen account is open again;
- close: for good, and only with nothing posted and nothing pending; else refused, naming what
  remains. An account without a limit keeps no balance item for a posting to check, so it is closed
  from frozen only, once no posting decided before the freeze can still land (a commit horizon on);
- limit: an account with a limit takes a new one (0 or more). The limit covers what is pending: the
  new limit is refused if what the account has posted and holds would already be beyond it. An
  account without a limit keeps its lines in lanes and cannot take one, nor can one with a limit
  drop it (open another account).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from posting.domain.books import COMMIT_HORIZON_SECONDS
from posting.domain.model import MAX_AMOUNT, Account, AccountState, AccountStatus, utc_timestamp

ACTS = ("freeze", "unfreeze", "close", "limit")


class AccountActRefused(ValueError):
    """An act the account's state does not allow, with why."""


@dataclass(frozen=True)
class AccountAct:
    """What an act leaves the account as: its status and limit, the revision it makes, and the
    conditions the write must still find true (the state it was decided on)."""

    account_id: str
    act: str  # "open" or one of ACTS
    status: AccountStatus
    overdraft_limit: int | None
    previous_limit: int | None
    revision: int
    recorded_at: str
    by: str
    note: str = ""
    currency: str = ""
    # What the write requires of the account item besides its revision.
    expect_status: AccountStatus | None = None
    # An account with a limit: the change of headroom (available + limit) the new limit makes; the
    # write requires headroom of at least -delta left, so what holds and postings use stays within it.
    headroom_delta: int = 0
    # Closing an account with a limit: its item must hold zero figures when the write commits.
    must_be_empty: bool = False


def opening(account: Account, opened_at: str, by: str) -> AccountAct:
    """The first act on an account: its opening, as revision 1."""
    return AccountAct(
        account_id=account.account_id,
        act="open",
        status=account.status,
        overdraft_limit=account.overdraft_limit,
        previous_limit=None,
        revision=1,
        recorded_at=opened_at,
        by=by,
        currency=account.currency,
    )


def decide_act(
    state: AccountState,
    act: str,
    now: datetime,
    by: str,
    *,
    note: str = "",
    limit: int | None = None,
) -> AccountAct:
    """The act on an account as read (its figures summed, for one without a limit); raises
    AccountActRefused when its state does not allow it."""
    account = state.account
    status = account.status
    base = AccountAct(
        account_id=account.account_id,
        act=act,
        status=status,
        overdraft_limit=account.overdraft_limit,
        previous_limit=account.overdraft_limit,
        revision=state.revision + 1,
        recorded_at=utc_timestamp(now),
        by=by,
        note=note,
        currency=account.currency,
        expect_status=status,
    )
    if status == AccountStatus.CLOSED:
        raise AccountActRefused(f"account {account.account_id} is closed")
    if act == "freeze":
        if status != AccountStatus.OPEN:
            raise AccountActRefused(f"account {account.account_id} is {status}, not open")
        return replace(base, status=AccountStatus.FROZEN)
    if act == "unfreeze":
        if status != AccountStatus.FROZEN:
            raise AccountActRefused(f"account {account.account_id} is {status}, not frozen")
        return replace(base, status=AccountStatus.OPEN)
    if act == "close":
        _check_empty(state)
        if account.is_unlimited:
            _check_settled_since_freeze(state, now, state.status_since)
        return replace(base, status=AccountStatus.CLOSED, must_be_empty=not account.is_unlimited)
    if act == "limit":
        return _limit(state, limit, base)
    raise AccountActRefused(f"no such act: {act}")


def _check_empty(state: AccountState) -> None:
    remains = [
        f"{name} {figure}"
        for name, figure in (
            ("posted", state.balance),
            ("pending debits", state.pending_debits),
            ("pending credits", state.pending_credits),
        )
        if figure
    ]
    if remains:
        raise AccountActRefused(
            f"account {state.account_id} still has {', '.join(remains)} {state.account.currency}: "
            "move it out and settle its holds first"
        )


def _check_settled_since_freeze(state: AccountState, now: datetime, frozen_at: str | None) -> None:
    account_id = state.account_id
    if state.account.status != AccountStatus.FROZEN or frozen_at is None:
        raise AccountActRefused(
            f"account {account_id} has no limit: freeze it first, then close it once postings decided "
            f"before the freeze have landed ({COMMIT_HORIZON_SECONDS} s later)"
        )
    settled = datetime.fromisoformat(frozen_at.replace("Z", "+00:00")) + timedelta(seconds=COMMIT_HORIZON_SECONDS)
    if now < settled:
        raise AccountActRefused(
            f"account {account_id} was frozen at {frozen_at}: postings decided before then may still land; "
            f"close it from {utc_timestamp(settled)} on"
        )


def _limit(state: AccountState, limit: int | None, base: AccountAct) -> AccountAct:
    account = state.account
    if account.is_unlimited:
        raise AccountActRefused(
            f"account {account.account_id} has no limit and keeps its lines in lanes: it cannot take one"
        )
    if limit is None or not 0 <= limit <= MAX_AMOUNT:
        raise AccountActRefused(f"a limit is a whole number of minor units from 0 to {MAX_AMOUNT}")
    if state.known and state.available + limit < 0:
        raise AccountActRefused(
            f"account {account.account_id} has {state.available} {account.currency} available, holds "
            f"included: a limit below {-state.available} would leave it beyond its limit"
        )
    return replace(base, overdraft_limit=limit, headroom_delta=limit - (account.overdraft_limit or 0))
