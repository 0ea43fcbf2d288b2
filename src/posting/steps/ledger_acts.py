"""Operators' acts on the ledger: an account's lifecycle and the period close, and their events.

Each act is decided on the ledger as read (posting.domain.accounts, posting.domain.periods) and
recorded in one transaction with its record (the account's revision, the close) and a note in the
ledger's outbox that it is owed an event. The sweeper publishes what the outbox points at
(`announce`), building each event from the record itself, so an act is announced even when the
operator's session ends right after it, an outbox entry can only ever announce a real record, and a
repeat publishes the same event id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from posting.adapters.event_bus import EventBus, ResultEvent
from posting.domain.accounts import AccountAct, AccountActRefused, decide_act
from posting.domain.events import ACCOUNT_EVENTS, EVENT_ID_NAMESPACE, PeriodClosed
from posting.domain.model import Account, AccountState, utc_timestamp
from posting.domain.outcomes import TransientPostingError
from posting.domain.periods import Period
from posting.steps.ports import LedgerRecords

ATTEMPTS = 5  # an account with a limit may be in postings' transactions: the act waits its turn


def account_event(act: AccountAct) -> ResultEvent:
    model = ACCOUNT_EVENTS[act.act]
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid5(EVENT_ID_NAMESPACE, f"account|{act.account_id}|{act.revision}")),
        "revision": act.revision,
        "recorded_at": act.recorded_at,
        "by": act.by,
        "note": act.note,
        "account_id": act.account_id,
        "currency": act.currency,
        "status": str(act.status),
        "overdraft_limit": act.overdraft_limit,
    }
    if act.act == "limit":
        fields["previous_limit"] = act.previous_limit or 0
    return ResultEvent(model.detail_type, model(**fields).model_dump(mode="json"))


def period_event(period: Period) -> ResultEvent:
    assert period.through and period.in_force_from and period.closed_at
    detail = PeriodClosed(
        event_id=str(uuid.uuid5(EVENT_ID_NAMESPACE, f"period|{period.revision}")),
        revision=period.revision,
        recorded_at=period.closed_at,
        by=period.closed_by or "",
        note=period.note,
        through=period.through,
        in_force_from=period.in_force_from,
        previous_through=period.previous,
    )
    return ResultEvent(PeriodClosed.detail_type, detail.model_dump(mode="json"))


def event_of(record: AccountAct | Period) -> ResultEvent:
    """The event a recorded act owes."""
    return account_event(record) if isinstance(record, AccountAct) else period_event(record)


def open_accounts(
    ledger: LedgerRecords,
    accounts: Iterable[Account],
    now: datetime,
    by: str,
    sleep: Callable[[float], None] = time.sleep,
) -> list[AccountState]:
    """Open each account (revision 1), owing its event; raises AccountAlreadyExists for a taken id.

    Two operators opening one account at once conflict in DynamoDB: the opening is tried again,
    and the one that lost finds the account taken."""
    opened = []
    for account in accounts:
        for attempt in range(ATTEMPTS):
            try:
                opened.append(ledger.open_account(account, utc_timestamp(now), by=by))
                break
            except TransientPostingError:
                if attempt == ATTEMPTS - 1:
                    raise
                sleep(0.05 * 2**attempt)
    return opened


def act_on_account(
    ledger: LedgerRecords,
    account_id: str,
    act: str,
    by: str,
    *,
    note: str = "",
    limit: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    sleep: Callable[[float], None] = time.sleep,
) -> AccountAct:
    """Freeze, unfreeze, close or change the limit of an account; raises AccountActRefused with why.

    Decided on the account as read now, and written on condition it is still so: an account with a
    limit busy with postings is tried again a few times.
    """
    for attempt in range(ATTEMPTS):
        state = ledger.account_figures(account_id)
        if state is None:
            raise AccountActRefused(f"no such account: {account_id}")
        decided = decide_act(state, act, clock(), by, note=note, limit=limit)
        try:
            ledger.record_account_act(decided)
            return decided
        except TransientPostingError:
            sleep(0.05 * 2**attempt)
    raise AccountActRefused(f"account {account_id} kept changing (busy with postings): try again")


def close_period(ledger: LedgerRecords, through: str, now: datetime, by: str, note: str = "") -> Period:
    """Close the books through `through` (UTC text); raises PeriodCloseRefused with why."""
    closed = ledger.read_period().close(through, now, by, note)
    ledger.record_period_close(closed)
    return closed


def announce(ledger: LedgerRecords, bus: EventBus, limit: int = 100) -> int:
    """Publish the events the outbox says are owed, oldest first, each built from its record, and
    forget what the bus took; how many."""
    owed = ledger.announcements(limit)
    if not owed:
        return 0
    delivered = bus.publish([event_of(record) for _, record in owed])
    ledger.forget_announcements([key for (key, _), ok in zip(owed, delivered, strict=True) if ok])
    return sum(delivered)
