"""Operators' acts on the ledger table: an account's lifecycle, the period close, and the outbox of
the events they owe. Each act is one transaction: the change, its record, and a note in the outbox
pointing at the record.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from posting.adapters import ledger_keys as keys
from posting.adapters.dynamodb import Table, cancellation_codes, error_code, transient_errors
from posting.adapters.ledger_books import LedgerBooks
from posting.domain.accounts import AccountAct, AccountActRefused, opening
from posting.domain.model import Account, AccountState
from posting.domain.outcomes import AccountAlreadyExists, TransientPostingError
from posting.domain.periods import Period, PeriodCloseRefused

_NEW = f"attribute_not_exists({keys.KEY_NAMES[0]})"


class LedgerActs:
    """Implements posting.steps.ports.LedgerRecords on the ledger table."""

    def __init__(self, table: Table, books: LedgerBooks) -> None:
        self.table = table
        self.books = books

    # -- accounts -------------------------------------------------------------------------------

    def open_account(self, account: Account, opened_at: str, *, by: str = "") -> AccountState:
        act = opening(account, opened_at, by)
        actions: list[dict[str, Any]] = [
            {"Put": self._put(keys.account_item(account, opened_at), _NEW)},
            {"Put": self._put(keys.revision_item(act), _NEW)},
            {"Put": self._put(keys.announcement_item(opened_at, keys.revision_key(act.account_id, 1)))},
        ]
        try:
            self._transact(actions)
        except _Cancelled as cancelled:
            if cancelled.codes and cancelled.codes[0] == "ConditionalCheckFailed":
                raise AccountAlreadyExists(account.account_id) from None
            raise TransientPostingError(f"opening {account.account_id}: {', '.join(cancelled.codes)}") from None
        return AccountState(account=account, known=True, status_since=opened_at)

    def account_figures(self, account_id: str) -> AccountState | None:
        return self.books.get_account(account_id)

    def record_account_act(self, act: AccountAct) -> None:
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": {"S": str(act.status)},
            ":revision": {"N": str(act.revision)},
            ":previous": {"N": str(act.revision - 1)},
            ":since": {"S": act.recorded_at},
            ":expected": {"S": str(act.expect_status)},
        }
        update = "SET #status = :status, revision = :revision, status_since = :since"
        conditions = [
            # Accounts opened before revisions were recorded are at their first one.
            "(revision = :previous OR attribute_not_exists(revision))" if act.revision == 2 else "revision = :previous",
            "#status = :expected",
        ]
        if act.act == "limit":
            update += ", overdraft_limit = :limit ADD headroom :delta"
            values |= {":limit": {"N": str(act.overdraft_limit)}, ":delta": {"N": str(act.headroom_delta)}}
            if act.headroom_delta < 0:
                conditions.append("headroom >= :needed")
                values[":needed"] = {"N": str(-act.headroom_delta)}
        if act.must_be_empty:
            conditions.append("balance = :zero AND pending_debits = :zero AND pending_credits = :zero")
            values[":zero"] = {"N": "0"}
        actions = [
            {
                "Update": {
                    "TableName": self.table.name,
                    "Key": keys.account_key(act.account_id),
                    "UpdateExpression": update,
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            },
            {"Put": self._put(keys.revision_item(act), _NEW)},
            {
                "Put": self._put(
                    keys.announcement_item(act.recorded_at, keys.revision_key(act.account_id, act.revision))
                )
            },
        ]
        try:
            self._transact(actions)
        except _Cancelled as cancelled:
            if "ConditionalCheckFailed" in cancelled.codes:
                raise AccountActRefused(
                    f"account {act.account_id} changed while the act was decided: read it and try again"
                ) from None
            raise TransientPostingError(f"account {act.account_id}: {', '.join(cancelled.codes)}") from None

    def account_revisions(self, account_id: str) -> list[AccountAct]:
        """Every act on the account, oldest first (its audit trail)."""
        lower, upper = keys.revisions_range()
        return [keys.act_of(record) for record in self.table.query(keys.account_partition(account_id), lower, upper)]

    # -- the period close -----------------------------------------------------------------------

    def read_period(self) -> Period:
        return keys.period_of(self.table.get(keys.period_key()))

    def record_period_close(self, period: Period) -> None:
        assert period.closed_at is not None
        if period.revision == 1:
            condition, values = "attribute_not_exists(revision)", {}
        else:
            condition, values = "revision = :previous", {":previous": {"N": str(period.revision - 1)}}
        put = self._put(keys.period_item(period), condition) | ({"ExpressionAttributeValues": values} if values else {})
        actions = [
            {"Put": put},
            {"Put": self._put(keys.close_item(period), _NEW)},
            {"Put": self._put(keys.announcement_item(period.closed_at, keys.close_key(period.through or "")))},
        ]
        try:
            self._transact(actions)
        except _Cancelled as cancelled:
            if "ConditionalCheckFailed" in cancelled.codes:
                raise PeriodCloseRefused(
                    "another close was recorded meanwhile: read the period and try again"
                ) from None
            raise TransientPostingError(f"period close: {', '.join(cancelled.codes)}") from None

    def period_closes(self) -> list[Period]:
        """Every close recorded, in order."""
        return [
            keys.period_of(record)
            for record in self.table.query(keys.PERIOD_PARTITION, keys.CLOSE_PREFIX, f"{keys.CLOSE_PREFIX}~")
        ]

    # -- the outbox -----------------------------------------------------------------------------

    def announcements(self, limit: int) -> list[tuple[str, AccountAct | Period]]:
        notes = list(self.table.query(keys.OUTBOX_PARTITION, limit=limit))
        records = {
            (str(r[keys.KEY_NAMES[0]]), str(r[keys.KEY_NAMES[1]])): r
            for r in self.table.batch_get([keys.announced_record_key(note) for note in notes])
        }
        owed: list[tuple[str, AccountAct | Period]] = []
        for note in notes:
            record = records.get((str(note["record_pk"]), str(note["record_sk"])))
            if record is None:
                continue  # points at nothing: there is no event to owe (forget_announcements drops it)
            found = keys.act_of(record) if record.get("entity") == "account_revision" else keys.period_of(record)
            owed.append((str(note[keys.KEY_NAMES[1]]), found))
        return owed

    def forget_announcements(self, sort_keys: list[str]) -> None:
        for sort_key in sort_keys:
            with transient_errors():
                self.table.client.delete_item(
                    TableName=self.table.name,
                    Key={keys.KEY_NAMES[0]: {"S": keys.OUTBOX_PARTITION}, keys.KEY_NAMES[1]: {"S": sort_key}},
                )

    # -- helpers --------------------------------------------------------------------------------

    def _put(self, item: dict[str, Any], condition: str | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table.name, "Item": item}
        if condition:
            put["ConditionExpression"] = condition
        return put

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        with transient_errors():
            try:
                self.table.client.transact_write_items(TransactItems=actions)
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                codes = cancellation_codes(error)
                if any(code in {"TransactionConflict", "ThrottlingError"} for code in codes):
                    raise TransientPostingError(f"cancelled: {', '.join(codes)}") from error
                raise _Cancelled(codes) from error


class _Cancelled(Exception):
    def __init__(self, codes: list[str]) -> None:
        super().__init__(", ".join(codes))
        self.codes = codes
