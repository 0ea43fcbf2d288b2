"""Reading the books of the ledger table: balances, statements, balances as of an instant, and the
whole table for reconciliation. The layout is ledger_keys.py's.

- An account with a limit: its balance is its balance item (one GetItem); its lines are one Query
  on its partition, in the order its balance moved.
- An account without a limit: its figures are, per lane, the lane's latest checkpoint plus the lines
  after it (one Query per lane, newest first, stopping at the checkpoint); its lines are one Query
  per lane, merged in recorded order.
- A balance as of an instant walks back from that instant, per partition, to the nearest figure it
  knows: a line that recorded the balance after it, or a checkpoint.
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
    lane_figures,
    statement_order,
    with_figures,
    with_running_balance,
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
        state = self._terms(account_id)
        if state.account.is_unlimited:
            return self._lanes_total(state, moment).posted
        return self._walk_back(keys.account_partition(account_id), moment)

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

    def _walk_back(self, partition: str, moment: str) -> int:
        """An account with a limit: the balance after its last line recorded at or before `moment`,
        from the nearest line back that recorded its balance (all its lines, if none did)."""
        since = 0
        for record in self.table.query(partition, keys.ENTRY_PREFIX, keys.at_or_before(moment), newest_first=True):
            if record.get("entity") != "entry":
                continue
            line = keys.entry_of(record)
            if line.balance_after is not None:
                return line.balance_after + since
            since += line.signed_amount
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
    ) -> tuple[list[Entry], str | None]:
        """Posted lines recorded in [since, until], `limit` at a time, in order, each with its running
        balance. Returns the page and the cursor of the next one (None at the end)."""
        state = self.get_account(account_id)
        if state is None:
            return [], None
        if cursor:
            position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            after, running = str(position["after"]), int(position["balance"])
        else:
            after = ""
            running = self.balance_as_of(account_id, _just_before(since)) if since else 0
        lines = [line for line in self._lines(state, since, until) if _position(line) > after]
        page = with_running_balance(lines[:limit], running)
        if len(lines) <= limit or not page:
            return page, None
        position = {"after": _position(page[-1]), "balance": page[-1].balance_after or 0}
        return page, base64.urlsafe_b64encode(json.dumps(position).encode()).decode()

    def _lines(self, state: AccountState, since: str | None, until: str | None) -> list[Entry]:
        """An account's posted lines recorded in [since, until], in order (lanes merged)."""
        lower = f"{keys.ENTRY_PREFIX}{since}" if since else keys.ENTRY_PREFIX
        upper = keys.at_or_before(until) if until else keys.ENTRIES_END
        account = state.account
        partitions = (
            [keys.lane_partition(account.account_id, lane) for lane in range(account.lanes)]
            if account.is_unlimited
            else [keys.account_partition(account.account_id)]
        )
        lines = [
            keys.entry_of(record)
            for partition in partitions
            for record in self.table.query(partition, lower, upper)
            if record.get("entity") == "entry" and not record.get("pending")
        ]
        return statement_order(lines)

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


def _position(line: Entry) -> str:
    return f"{line.recorded_at}#{line.posting_id}#{line.leg:02d}"


def _just_before(moment: str) -> str:
    """The instant one millisecond before `moment` (UTC text): lines recorded before it."""
    return utc_timestamp(datetime.fromisoformat(moment.replace("Z", "+00:00")) - timedelta(milliseconds=1))
