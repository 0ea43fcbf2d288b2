"""Reading the books of the ledger table: balances, statements, balances as of an instant, and the
whole table for reconciliation. The layout is ledger_keys.py's.

- An account with a limit: its balance is its balance item (one GetItem); its lines are one Query
  on its partition, in the order its balance moved.
- An account without a limit: its figures are, per lane, the lane's latest checkpoint plus the lines
  after it (one Query per lane, newest first, stopping at the checkpoint); its lines are one Query
  per lane, merged in recorded order.
- Figures as of an instant walk back from that instant, per partition, to the nearest figures they
  know: a line that recorded the figures after it, or a checkpoint.
- Figures as of a value date are the figures as recorded then, corrected by the lines recorded on
  the other side of that date from their value date (the ValueDatedLines index).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from posting.adapters import ledger_keys as keys
from posting.adapters.dynamodb import Table
from posting.domain.books import (
    Checkpoint,
    Figures,
    figures_after,
    lane_figures,
    statement_order,
    value_order,
    with_figures,
    with_running_balance,
    with_value_running_balance,
)
from posting.domain.model import AccountState, utc_timestamp
from posting.domain.outcomes import Decision
from posting.domain.plan import Entry

LATEST = "~"  # an instant after every recorded one
_LANE_READERS = 8  # an account's lanes are read in parallel


class LedgerBooks:
    """What operators read from the ledger table, through a botocore DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.table = Table(client, table_name)

    # -- balances -------------------------------------------------------------------------------

    def get_account(self, account_id: str) -> AccountState | None:
        return self.get_accounts([account_id]).get(account_id)

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The accounts that exist among `account_ids`, each with its figures as of now."""
        records = self.table.batch_get([keys.account_key(a) for a in dict.fromkeys(account_ids)])
        found = {}
        for record in records:
            state = keys.account_state(record)
            if state.account.is_unlimited:
                state = with_figures(state, self._lanes_total(state, LATEST))
            found[state.account_id] = state
        return found

    def balance_as_of(self, account_id: str, moment: str) -> int:
        """The posted balance from the lines recorded at or before `moment` (UTC text)."""
        return self.figures_as_of(account_id, moment).posted

    def figures_as_of(self, account_id: str, moment: str) -> Figures:
        """The account's figures as the ledger knew them at `moment`: its lines recorded by then."""
        return self._recorded(self._terms(account_id), moment)

    def figures_by_value_date(self, account_id: str, moment: str) -> Figures:
        """The account's figures as of value date `moment`: its lines dated at or before it, whenever
        recorded. The figures as recorded at `moment`, plus the lines recorded later but dated by
        then, less the lines recorded by then but dated later: both from the sparse ValueDatedLines
        index, bounded by the period close (nothing dated in a closed period is recorded after the
        close is in force). The index is eventually consistent: a line is in it within moments."""
        state = self._terms(account_id)
        total = self._recorded(state, moment)
        settled = self._settled_by(moment)
        for partition in _partitions(state):
            for line in self._value_dated(partition, *keys.back_dated_range(moment, settled)):
                if line.effective_at <= moment:
                    total += Figures.of([line])
            for line in self._value_dated(partition, *keys.forward_dated_range(moment, None)):
                if line.recorded_at <= moment:
                    total -= Figures.of([line])
        return total

    def _recorded(self, state: AccountState, moment: str) -> Figures:
        if state.account.is_unlimited:
            return self._lanes_total(state, moment)
        return self._walk_back(keys.account_partition(state.account_id), moment)

    def _settled_by(self, moment: str) -> str | None:
        """When the earliest period close covering `moment` came in force: no line dated at or before
        `moment` is recorded after it. None: no close covers it (yet)."""
        lower = f"{keys.CLOSE_PREFIX}{moment}"
        for record in self.table.query(keys.PERIOD_PARTITION, lower, f"{keys.CLOSE_PREFIX}~", limit=1):
            return str(record["in_force_from"])
        return None

    def _value_dated(self, partition: str, lower: str, upper: str) -> Iterator[Entry]:
        for record in self.table.query(
            partition, lower, upper, index=keys.VALUE_INDEX, key_names=keys.VALUE_KEYS, consistent=False
        ):
            yield keys.entry_of(record)

    def _lanes_total(self, state: AccountState, moment: str) -> Figures:
        account = state.account

        def lane_total(lane: int) -> Figures:
            checkpoint, after, _ = since_checkpoint(self.table, account.account_id, lane, moment)
            return lane_figures(checkpoint, []) + after

        lanes = range(account.lanes)
        if account.lanes == 1:
            return lane_total(0)
        with ThreadPoolExecutor(max_workers=min(_LANE_READERS, account.lanes)) as pool:
            return sum(pool.map(lane_total, lanes), Figures())

    def _walk_back(self, partition: str, moment: str) -> Figures:
        """An account with a limit: its figures after its last line recorded at or before `moment`,
        from the nearest line back that recorded them (all its lines, if none did)."""
        since = Figures()
        for record in self.table.query(partition, keys.ENTRY_PREFIX, keys.at_or_before(moment), newest_first=True):
            if record.get("entity") != "entry":
                continue
            line = keys.entry_of(record)
            if (found := figures_after(line, since)) is not None:
                return found
            since += Figures.of([line])
        return since

    def _terms(self, account_id: str) -> AccountState:
        record = self.table.get(keys.account_key(account_id))
        if record is None:
            raise KeyError(account_id)
        return keys.account_state(record)

    # -- statements -----------------------------------------------------------------------------

    def statement(self, account_id: str) -> tuple[AccountState | None, list[Entry]]:
        """The account and all its posted lines in order, each with the balance right after it."""
        state = self.get_account(account_id)
        if state is None:
            return None, []
        return state, with_running_balance(self._lines(state, None, None), 0)

    def statement_page(
        self,
        account_id: str,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        *,
        by_value_date: bool = False,
    ) -> tuple[list[Entry], str | None]:
        """Posted lines recorded in [since, until], `limit` at a time, in order, each with its running
        balance. Returns the page and the cursor of the next one (None at the end).

        `by_value_date`: the lines dated in [since, until] instead, in value-date order, each with the
        balance by value date right after it."""
        state = self.get_account(account_id)
        if state is None:
            return [], None
        position_of = _value_position if by_value_date else _position
        if cursor:
            position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            after, running = str(position["after"]), int(position["balance"])
        elif since and by_value_date:
            after, running = "", self.figures_by_value_date(account_id, _just_before(since)).posted
        else:
            after = ""
            running = self.balance_as_of(account_id, _just_before(since)) if since else 0
        if by_value_date:
            lines = [line for line in self._dated_lines(state, since, until) if position_of(line) > after]
            page = with_value_running_balance(lines[:limit], running)
        else:
            lines = [line for line in self._lines(state, since, until) if position_of(line) > after]
            page = with_running_balance(lines[:limit], running)
        if len(lines) <= limit or not page:
            return page, None
        position = {"after": position_of(page[-1]), "balance": page[-1].balance_after or 0}
        return page, base64.urlsafe_b64encode(json.dumps(position).encode()).decode()

    def _dated_lines(self, state: AccountState, since: str | None, until: str | None) -> list[Entry]:
        """An account's posted lines dated in [since, until], in value-date order: those recorded in
        the window and dated in it, those recorded after it but dated in it (back-valued), and those
        recorded before it but dated in it (forward-valued)."""
        low, high = since or "", until or LATEST

        def dated_within(line: Entry) -> bool:
            return not line.pending and low <= line.effective_at <= high

        found = [line for line in self._lines(state, since, until) if dated_within(line)]
        settled = self._settled_by(high) if until else None
        for partition in _partitions(state):
            if until:
                for line in self._value_dated(partition, *keys.back_dated_range(high, settled)):
                    if dated_within(line):
                        found.append(line)
            if since:
                lower, upper = keys.forward_dated_range(_just_before(since), until)
                for line in self._value_dated(partition, lower, upper):
                    if dated_within(line) and line.recorded_at < low:
                        found.append(line)
        return value_order(found)

    def _lines(self, state: AccountState, since: str | None, until: str | None) -> list[Entry]:
        """An account's posted lines recorded in [since, until], in order (lanes merged)."""
        lower = f"{keys.ENTRY_PREFIX}{since}" if since else keys.ENTRY_PREFIX
        upper = keys.at_or_before(until) if until else keys.ENTRIES_END
        lines = [
            keys.entry_of(record)
            for partition in _partitions(state)
            for record in self.table.query(partition, lower, upper)
            if record.get("entity") == "entry" and not record.get("pending")
        ]
        return statement_order(lines)

    # -- decisions by reference -----------------------------------------------------------------

    def find_by_ref(self, external_ref: str) -> list[Decision]:
        """Every decision whose request carried `external_ref`, oldest first: one Query of the sparse
        ByExternalRef index (eventually consistent: a decision just written shows within moments)."""
        return [
            keys.decision_from(record)
            for record in self.table.query(
                external_ref, index=keys.EXTERNAL_REF_INDEX, key_names=keys.EXTERNAL_REF_KEYS, consistent=False
            )
        ]

    # -- the whole table ------------------------------------------------------------------------

    def scan(self) -> Iterator[AccountState | Entry | Checkpoint | Decision]:
        """Every account (as stored), line, checkpoint and decision in the table: for reconciliation."""
        for record in self.table.scan():
            entity = record.get("entity")
            if entity == "account":
                yield keys.account_state(record)
            elif entity == "entry":
                yield keys.entry_of(record)
            elif entity == "checkpoint":
                yield keys.checkpoint_of(record)
            elif entity == "posting":
                yield keys.decision_from(record)


def since_checkpoint(table: Table, account_id: str, lane: int, moment: str) -> tuple[Checkpoint | None, Figures, int]:
    """A lane's latest checkpoint at or before `moment`, the sums of its lines after that checkpoint
    up to `moment`, and how many lines that is: one Query, newest first, that stops at the checkpoint."""
    figures, lines = Figures(), 0
    for record in table.query(
        keys.lane_partition(account_id, lane), keys.ENTRY_PREFIX, keys.at_or_before(moment), newest_first=True
    ):
        if record.get("entity") == "checkpoint":
            return keys.checkpoint_of(record), figures, lines
        figures += Figures.of([keys.entry_of(record)])
        lines += 1
    return None, figures, lines


def _partitions(state: AccountState) -> list[str]:
    """The partitions an account's lines are in: its own, or each of its lanes."""
    account = state.account
    if account.is_unlimited:
        return [keys.lane_partition(account.account_id, lane) for lane in range(account.lanes)]
    return [keys.account_partition(account.account_id)]


def _value_position(line: Entry) -> str:
    return f"{line.effective_at}#{line.recorded_at}#{line.posting_id}#{line.leg:02d}"


def _position(line: Entry) -> str:
    return f"{line.recorded_at}#{line.posting_id}#{line.leg:02d}"


def _just_before(moment: str) -> str:
    """The instant one millisecond before `moment` (UTC text): lines recorded before it."""
    return utc_timestamp(datetime.fromisoformat(moment.replace("Z", "+00:00")) - timedelta(milliseconds=1))
