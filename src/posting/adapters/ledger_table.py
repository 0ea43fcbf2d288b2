"""The ledger on its DynamoDB table, as the steps use it (the steps' Ledger Protocol): one transaction
per request, and the reads that planning and the sweeper need. The layout is ledger_keys.py's.

A request is one TransactWriteItems: the decision (`attribute_not_exists`, so a posting_id is
decided once), the hold or original it settles (conditioned on its state), one update per account
with a limit (figures added, conditioned on what DynamoDB finds: open, enough headroom, recorded in
order, and unmoved since the read the plan was made from if it was made from one) and one put per
line. All or nothing: a retry, a duplicate or a crash never applies a request twice or half.

An account without a limit has no item in the transaction at all, only its own new lines, whose
keys no other request shares: under DynamoDB's rule that two transactions touching one item cancel
each other, such an account never makes a request wait or retry.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from posting.adapters import ledger_keys as keys
from posting.adapters.clock import ClockWatch
from posting.adapters.dynamodb import Table, cancellation_codes, error_code, transient_errors
from posting.adapters.ledger_acts import LedgerActs
from posting.adapters.ledger_books import LedgerBooks, since_checkpoint
from posting.domain.books import Checkpoint, Figures
from posting.domain.model import MAX_FIGURE, Account, AccountState, AccountStatus
from posting.domain.outcomes import (
    ConcurrentUpdate,
    Decision,
    PostingAlreadyDecided,
    TransientPostingError,
)
from posting.domain.periods import Period
from posting.domain.plan import AccountChange, HoldSettlement, HoldState, PostingPlan, ReversalMark, records_of

_NEW = f"attribute_not_exists({keys.KEY_NAMES[0]})"  # a new item: none has its key yet
_EXISTS = f"attribute_exists({keys.KEY_NAMES[0]})"


class LedgerTable:
    """Reads and writes the ledger table through a botocore DynamoDB client."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        sleep: Callable[[float], None] = time.sleep,
        clock: ClockWatch | None = None,
    ) -> None:
        self.table = Table(client, table_name, sleep)
        # Lines and checkpoints are dated by this host's clock: with a watch, none is written while
        # the clock is known to be off (posting.adapters.clock).
        self.clock = clock
        self.table_name = table_name
        self.books = LedgerBooks(client, table_name)  # balances, statements and reconciliation reads
        self.acts = LedgerActs(self.table, self.books)  # operators' acts: accounts, period close, outbox

    # -- accounts -------------------------------------------------------------------------------

    def open_account(self, account: Account, opened_at: str, *, by: str = "") -> AccountState:
        """Create an account with zero figures and its first revision (owing its event); raises
        AccountAlreadyExists if the id is taken."""
        return self.acts.open_account(account, opened_at, by=by)

    def read_period(self) -> Period:
        """The ledger's period close as recorded (Period() if the books were never closed)."""
        return self.acts.read_period()

    def set_account_status(self, account_id: str, status: AccountStatus) -> None:
        """Freeze, close or reopen an account. An account with a limit may be in a posting's
        transaction: then DynamoDB refuses the write for a moment (TransientPostingError)."""
        with transient_errors():
            self.table.client.update_item(
                TableName=self.table_name,
                Key=keys.account_key(account_id),
                UpdateExpression="SET #status = :status",
                ConditionExpression=_EXISTS,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": {"S": str(status)}},
            )

    def read_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The accounts that exist among `account_ids`, from one strongly consistent BatchGetItem: an
        account with a limit with its figures, one without with its terms and status."""
        ids = list(dict.fromkeys(account_ids))
        records = self.table.batch_get([keys.account_key(a) for a in ids])
        states = [keys.account_state(record) for record in records]
        return {state.account_id: state for state in states}

    def unlimited_accounts(self) -> list[tuple[str, int]]:
        """(account_id, lanes) of every account without a limit (the sparse UnlimitedAccounts index)."""
        found = []
        for record in self.table.query(
            keys.UNLIMITED_VALUE,
            index=keys.UNLIMITED_INDEX,
            key_names=(keys.UNLIMITED_KEY, keys.KEY_NAMES[0]),
            consistent=False,
        ):
            found.append((keys.account_id_of(str(record[keys.KEY_NAMES[0]])), int(record.get("lanes", 1))))
        return found

    # -- decisions ------------------------------------------------------------------------------

    def get_decision(self, posting_id: str) -> Decision | None:
        record = self.table.get(keys.posting_key(posting_id))
        return keys.decision_from(record) if record else None

    def get_decisions(self, posting_ids: Iterable[str]) -> dict[str, Decision]:
        """The decisions among `posting_ids` that exist, from one strongly consistent BatchGetItem."""
        records = self.table.batch_get([keys.posting_key(p) for p in dict.fromkeys(posting_ids)])
        decisions = [keys.decision_from(record) for record in records]
        return {decision.posting_id: decision for decision in decisions}

    def record_posting(self, plan: PostingPlan, request_hash: str, message_id: str) -> Decision:
        """Apply a planned request of any kind in one transaction and return its decision.

        Raises PostingAlreadyDecided when the posting_id has a decision already (nothing was
        written); ConcurrentUpdate when a condition on an account, a hold, an original or a chain
        member's id failed, with the accounts as DynamoDB found them; TransientPostingError for
        throttling, transaction conflicts and timeouts.
        """
        if self.clock is not None:
            self.clock.check()
        records = records_of(plan, request_hash, message_id)
        actions: list[dict[str, Any]] = [{"Put": self._decision_put(decision)} for decision in records.decisions]
        actions += [{"Update": self._settle(settlement)} for settlement in records.settlements]
        actions += [{"Update": self._mark_reversed(mark)} for mark in records.reversals]
        accounts_from = len(actions)
        for change in plan.changes:
            actions.append({"Update": self._account_update(change, plan)})
        for entry in plan.entries:
            actions.append(
                {"Put": {"TableName": self.table_name, "Item": keys.entry_item(entry), "ConditionExpression": _NEW}}
            )
        self._transact(actions, plan.changes, accounts_from)
        return records.decisions[0]

    def record_rejection(self, decision: Decision) -> Decision:
        """Record a rejection under its posting_id, so a retry of the same request gets the same answer.

        Raises PostingAlreadyDecided when the posting_id already has a decision.
        """
        with transient_errors():
            try:
                self.table.client.put_item(**self._decision_put(decision))
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException" and "Item" in error.response:
                    old = keys.from_attributes(error.response["Item"])
                    raise PostingAlreadyDecided(keys.decision_from(old)) from error
                if error_code(error) == "ConditionalCheckFailedException":
                    raise TransientPostingError("the posting record exists but was not returned") from error
                raise
        return decision

    # -- holds and checkpoints (the sweeper's) --------------------------------------------------

    def expired_holds(self, now: str, limit: int = 500) -> list[tuple[str, str]]:
        """(hold_id, expires_at) of open holds whose expires_at is at or before `now`: one Query per
        bucket of the sparse OpenHoldsByExpiry index (eventually consistent; the expiry re-checks)."""
        found: list[tuple[str, str]] = []
        for bucket in range(keys.OPEN_HOLD_BUCKETS):
            for record in self.table.query(
                keys.open_hold_bucket_name(bucket),
                upper=now,
                index=keys.OPEN_HOLDS_INDEX,
                key_names=("open_hold_bucket", "open_hold_expires_at"),
                consistent=False,
                limit=limit - len(found),
            ):
                hold_id = keys.posting_id_of(str(record[keys.KEY_NAMES[0]]))
                found.append((hold_id, str(record["open_hold_expires_at"])))
            if len(found) >= limit:
                break
        return found[:limit]

    def write_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Write a lane's checkpoint (immutable: an existing one is left as it is); True if written."""
        if self.clock is not None:
            self.clock.check()
        with transient_errors():
            try:
                self.table.client.put_item(
                    TableName=self.table_name, Item=keys.checkpoint_item(checkpoint), ConditionExpression=_NEW
                )
            except ClientError as error:
                if error_code(error) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def lane_since_checkpoint(self, account_id: str, lane: int, through: str) -> tuple[Checkpoint | None, Figures, int]:
        """A lane's latest checkpoint at or before `through`, the sums of its lines after it up to
        `through`, and how many lines that is."""
        return since_checkpoint(self.table, account_id, lane, through)

    # -- transaction building -------------------------------------------------------------------

    def _decision_put(self, decision: Decision) -> dict[str, Any]:
        item = keys.decision_item(decision)
        if decision.expires_at is not None and decision.hold_state == HoldState.OPEN:
            # Only an open hold with an expiry is in the sparse index the sweeper reads.
            item |= keys.to_attributes(
                {
                    "open_hold_bucket": keys.open_hold_bucket(decision.posting_id),
                    "open_hold_expires_at": decision.expires_at,
                }
            )
        return {
            "TableName": self.table_name,
            "Item": item,
            "ConditionExpression": _NEW,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _settle(self, settlement: HoldSettlement) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": keys.posting_key(settlement.hold_id),
            "UpdateExpression": "SET hold_state = :state, settled_by = :by "
            "REMOVE open_hold_bucket, open_hold_expires_at",
            "ConditionExpression": "hold_state = :open",
            "ExpressionAttributeValues": {
                ":state": {"S": settlement.state},
                ":by": {"S": settlement.by},
                ":open": {"S": HoldState.OPEN},
            },
        }

    def _mark_reversed(self, mark: ReversalMark) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":reversed": keys.to_attributes({"r": mark.reversed})["r"],
            ":next": {"N": str(mark.expected_version + 1)},
            ":me": {"L": [{"S": by} for by in mark.by]},
            ":none": {"L": []},
        }
        if mark.expected_version:
            condition = "version = :expected"
            values[":expected"] = {"N": str(mark.expected_version)}
        else:
            condition = "attribute_not_exists(version)"
        return {
            "TableName": self.table_name,
            "Key": keys.posting_key(mark.original_id),
            "UpdateExpression": "SET reversed = :reversed, version = :next, "
            "reversed_by = list_append(if_not_exists(reversed_by, :none), :me)",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }

    def _account_update(self, change: AccountChange, plan: PostingPlan) -> dict[str, Any]:
        """Add the change to the account's balance item: no read needed, DynamoDB checks the rest."""
        conditions = [
            _EXISTS,
            # Lines of an account sort in the order its balance moved: each after the last one.
            "(attribute_not_exists(last_recorded_at) OR last_recorded_at < :recorded)",
        ]
        names: dict[str, str] = {}
        values: dict[str, Any] = {
            ":posted": {"N": str(change.posted)},
            ":pd": {"N": str(change.pending_debits)},
            ":pc": {"N": str(change.pending_credits)},
            ":headroom": {"N": str(change.available)},
            ":entries": {"N": str(change.entries)},
            ":recorded": {"S": plan.decided_at},
            ":last": {"S": change.last_recorded_at or plan.decided_at},
            ":posting": {"S": plan.request.posting_id},
        }
        if change.require_open:
            conditions.append("#status = :open")
            names["#status"] = "status"
            values[":open"] = {"S": str(AccountStatus.OPEN)}
        if change.min_headroom is not None:
            conditions.append("headroom >= :needed")
            values[":needed"] = {"N": str(change.min_headroom)}
        # Every figure it moves stays within what a JSON reader holds exactly (2^53 - 1).
        if change.posted:
            conditions.append("balance BETWEEN :posted_low AND :posted_high")
            values[":posted_low"] = {"N": str(-MAX_FIGURE - change.posted)}
            values[":posted_high"] = {"N": str(MAX_FIGURE - change.posted)}
        for name, moved in (("pending_debits", change.pending_debits), ("pending_credits", change.pending_credits)):
            if moved > 0:
                conditions.append(f"{name} <= :{name}_high")
                values[f":{name}_high"] = {"N": str(MAX_FIGURE - moved)}
        if change.pinned is not None:
            # Nothing moved since the read: every change of the account, posted or pending, records
            # a later last_recorded_at (the entry count alone misses holds and releases).
            if change.pinned.last_recorded_at:
                conditions.append("last_recorded_at = :read_last")
                values[":read_last"] = {"S": change.pinned.last_recorded_at}
            else:
                conditions.append("attribute_not_exists(last_recorded_at)")
        return {
            "TableName": self.table_name,
            "Key": keys.account_key(change.account_id),
            "UpdateExpression": "ADD balance :posted, pending_debits :pd, pending_credits :pc, headroom :headroom, "
            "version :entries SET last_recorded_at = :last, last_posting_id = :posting",
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
            **({"ExpressionAttributeNames": names} if names else {}),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _transact(self, actions: list[dict[str, Any]], changes: tuple[AccountChange, ...], accounts_from: int) -> None:
        # The token lets the SDK's own retries of this exact call (after a timeout) succeed instead
        # of failing on the decision they already wrote. A re-plan sends other items, hence another token.
        token = hashlib.sha256(json.dumps(actions, sort_keys=True, default=_binary_text).encode()).hexdigest()[:36]
        with transient_errors():
            try:
                self.table.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            except ClientError as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                _raise_for_cancellation(error, changes, accounts_from)
                raise


def _raise_for_cancellation(error: ClientError, changes: tuple[AccountChange, ...], accounts_from: int) -> None:
    """Turn a cancelled transaction into the domain error its cancellation reason codes mean."""
    reasons = error.response.get("CancellationReasons") or []
    codes = cancellation_codes(error)
    if codes and codes[0] == "ConditionalCheckFailed":
        old = reasons[0].get("Item")
        if old:
            raise PostingAlreadyDecided(keys.decision_from(keys.from_attributes(old))) from error
        raise TransientPostingError("the posting record exists but was not returned; read it again") from error
    if "ConditionalCheckFailed" in codes:
        # An account, the hold or the original is not as the plan needs it: say how they are now.
        found: dict[str, AccountState] = {}
        for offset, change in enumerate(changes):
            reason = reasons[accounts_from + offset]
            if reason.get("Code") == "ConditionalCheckFailed" and reason.get("Item"):
                found[change.account_id] = keys.account_state(keys.from_attributes(reason["Item"]))
        moved = ", ".join(sorted(found)) or "a hold or an original"
        raise ConcurrentUpdate(f"moved since it was read: {moved}", found) from error
    if any(code in {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"} for code in codes):
        raise TransientPostingError(f"transaction cancelled: {', '.join(sorted(set(codes) - {'None'}))}") from error
    raise RuntimeError(f"transaction cancelled: {', '.join(codes) or 'no reasons'}") from error


def _binary_text(value: Any) -> str:
    """Binary attribute values (bytes) in the JSON that derives a transaction's token."""
    import base64

    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
