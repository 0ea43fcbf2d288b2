"""The ledger table in DynamoDB: accounts, their statement entries, and one decision per posting_id.

Single-table layout (keys `PK`, `SK`, both strings):

  PK             SK                                     item
  ACCOUNT#<id>   ACCOUNT                                terms, `balance` (posted), `pending_debits`,
                                                        `pending_credits`, `version` (= entries so far)
  ACCOUNT#<id>   SHARD#<k>                              hot accounts: one of N shards of those figures
  ACCOUNT#<id>   ENTRY#<recorded_at>#<sequence>         one statement line, with the balance right after it
  ACCOUNT#<id>   ENTRY#<recorded_at>#<posting_id>#<leg> one line of a hot account: its signed amount
  POSTING#<id>   POSTING                                the decision for a posting_id: POSTED or REJECTED,
                                                        final; a hold's state; an original's reversals
                                                        (layout: decision_record.py, under 1 KB typically)

A balance is one GetItem (a hot account: one BatchGetItem of the account and its shards), a
statement one Query on `ACCOUNT#<id>` (entries sort by the time they were recorded, so a past
balance is one more Query). A request is one TransactWriteItems: the decision
(`attribute_not_exists`), the hold or original it settles (conditioned on its state), every balance
change (conditioned on the figures read; a shard takes an ADD with no read) and every entry, all or
nothing. So a retry, a duplicate or a crash can never apply a request twice or half, and a balance
never moves past a limit checked against a stale read.

This module owns boto3 for the table and turns DynamoDB errors into domain errors by error code
and cancellation reason code, never by message text.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from posting.adapters.attribute_values import from_attribute_value, to_attribute_value
from posting.adapters.decision_record import decision_fields, decision_of
from posting.domain.ledger import (
    BalanceChange,
    Entry,
    HoldSettlement,
    HoldState,
    PostingPlan,
    ReversalMark,
    ShardChange,
    decision_for,
    shard_of,
)
from posting.domain.model import Account, AccountState, AccountStatus, Side, utc_timestamp
from posting.domain.outcomes import (
    AccountAlreadyExists,
    ConcurrentUpdate,
    Decision,
    PostingAlreadyDecided,
    TransientPostingError,
)

# Error codes that mean "try again", as single-item errors and as transaction cancellation reasons.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        "TransactionInProgressException",
    }
)
UNPROCESSED_KEY_ATTEMPTS = 5
TRANSIENT_CANCELLATION_CODES = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})

_serialize = to_attribute_value
_deserialize = from_attribute_value


def account_key(account_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": "ACCOUNT"}}


def posting_key(posting_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"POSTING#{posting_id}"}, "SK": {"S": "POSTING"}}


OPEN_HOLDS_INDEX = "OpenHoldsByExpiry"
OPEN_HOLD_BUCKETS = 16  # spreads the sparse index's writes; the sweeper queries each bucket


def shard_partition(account_id: str, shard: int) -> str:
    """A hot account's shard is its own partition key, with that shard's entries: N shards spread
    over N partitions, so the account is not capped by one partition's write units."""
    return f"ACCOUNT#{account_id}#SHARD#{shard:02d}"


def shard_key(account_id: str, shard: int) -> dict[str, Any]:
    return {"PK": {"S": shard_partition(account_id, shard)}, "SK": {"S": "SHARD"}}


def entry_key(
    account_id: str,
    sequence: int,
    *,
    recorded_at: str = "2026-01-01T00:00:00.000Z",
    posting_id: str = "",
    leg: int = 0,
    shard: int | None = None,
) -> dict[str, Any]:
    """Entries sort by the time they were recorded: an unsharded account's by its sequence within
    that; a hot account's (no shared sequence) by posting and leg, in its shard's partition."""
    if shard is None:
        return {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": f"ENTRY#{recorded_at}#{sequence:015d}"}}
    return {"PK": {"S": shard_partition(account_id, shard)}, "SK": {"S": f"ENTRY#{recorded_at}#{posting_id}#{leg:02d}"}}


def open_hold_bucket(hold_id: str) -> str:
    return f"HOLDS#{shard_of(hold_id, OPEN_HOLD_BUCKETS):02d}"


@dataclass(frozen=True)
class Shard:
    """One shard of a hot account, as stored."""

    account_id: str
    shard: int
    balance: int
    pending_debits: int
    pending_credits: int
    entries: int
    status: str


class LedgerTable:
    """Reads and writes the ledger table through a boto3 DynamoDB client.

    It remembers the terms of hot accounts it has read (terms never change except the status, which
    every shard update checks), so a posting through a hot, unlimited account reads nothing of it.
    """

    def __init__(self, client: Any, table_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.table_name = table_name
        self._sleep = sleep
        self._hot_terms: dict[str, Account] = {}
        self._hot_guard = threading.Lock()

    # -- accounts -------------------------------------------------------------------------------

    def open_account(self, account: Account, opened_at: str) -> AccountState:
        """Create an account with a zero balance; raises AccountAlreadyExists if the id is taken.

        A hot account (balance_shards > 1) is created with its shard items in one transaction.
        """
        item = account_key(account.account_id) | _to_attributes(
            {
                "entity": "account",
                **account.model_dump(mode="json"),
                "balance": 0,
                "pending_debits": 0,
                "pending_credits": 0,
                "version": 0,
                "opened_at": opened_at,
            }
        )
        with _transient_errors():
            try:
                if not account.is_hot:
                    self._client.put_item(
                        TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(PK)"
                    )
                else:
                    first = {
                        "TableName": self.table_name,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                    actions: list[dict[str, Any]] = [{"Put": first}]
                    for shard in range(account.balance_shards):
                        shard_item = shard_key(account.account_id, shard) | _to_attributes(
                            {
                                "entity": "shard",
                                "account_id": account.account_id,
                                "shard": shard,
                                "balance": 0,
                                "pending_debits": 0,
                                "pending_credits": 0,
                                "entries": 0,
                                "status": str(account.status),
                            }
                        )
                        actions.append({"Put": {"TableName": self.table_name, "Item": shard_item}})
                    self._client.transact_write_items(TransactItems=actions)
            except ClientError as error:
                if _code(error) == "ConditionalCheckFailedException":
                    raise AccountAlreadyExists(account.account_id) from error
                if _code(error) == "TransactionCanceledException" and any(
                    reason.get("Code") == "ConditionalCheckFailed"
                    for reason in error.response.get("CancellationReasons", [])
                ):
                    raise AccountAlreadyExists(account.account_id) from error
                raise
        return AccountState(account=account)

    def set_account_status(self, account_id: str, status: AccountStatus) -> None:
        """Freeze, close or reopen an account (and every shard of a hot one, in one transaction)."""
        update = {
            "TableName": self.table_name,
            "Key": account_key(account_id),
            "UpdateExpression": "SET #status = :status",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": {"S": str(status)}},
        }
        state = self.get_account(account_id)
        with self._hot_guard:
            self._hot_terms.pop(account_id, None)
        with _transient_errors():
            if state is None or not state.account.is_hot:
                self._client.update_item(**update)
                return
            actions = [{"Update": update}]
            for shard in range(state.account.balance_shards):
                actions.append({"Update": update | {"Key": shard_key(account_id, shard)}})
            self._client.transact_write_items(TransactItems=actions)

    def get_account(self, account_id: str) -> AccountState | None:
        return self.get_accounts([account_id]).get(account_id)

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The current state of the accounts that exist among `account_ids` (strongly consistent).

        A hot account's figures are the sums of its shards (read in the same BatchGetItem when its
        terms are known already, else in a second one).
        """
        ids = list(dict.fromkeys(account_ids))
        with self._hot_guard:
            known_hot = {a: self._hot_terms[a] for a in ids if a in self._hot_terms}
        keys = [account_key(a) for a in ids]
        for account_id, terms in known_hot.items():
            keys += [shard_key(account_id, k) for k in range(terms.balance_shards)]
        records = self._batch_get(keys)
        found: dict[str, AccountState] = {}
        shards: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            if record.get("entity") == "shard":
                shards[record["account_id"]].append(record)
            else:
                state = _account_state(record)
                found[state.account_id] = state
        unread = [a for a, s in found.items() if s.account.is_hot and a not in known_hot]
        if unread:
            for record in self._batch_get(
                [shard_key(a, k) for a in unread for k in range(found[a].account.balance_shards)]
            ):
                shards[record["account_id"]].append(record)
        for account_id, state in list(found.items()):
            if state.account.is_hot:
                self._remember_hot(state.account)
                found[account_id] = _summed(state, shards.get(account_id, []))
        return found

    def accounts_for_planning(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """What planning needs: unsharded accounts as stored; hot accounts' terms only, from memory.

        Hot accounts have no limit, so planning never needs their balances; their status is checked
        by the shard update itself.
        """
        ids = list(dict.fromkeys(account_ids))
        with self._hot_guard:
            found = {a: AccountState(account=self._hot_terms[a]) for a in ids if a in self._hot_terms}
        for record in self._batch_get([account_key(a) for a in ids if a not in found]):
            state = _account_state(record)
            if state.account.is_hot:
                self._remember_hot(state.account)
                state = AccountState(account=state.account)
            found[state.account_id] = state
        return found

    def is_known_hot(self, account_id: str) -> bool:
        with self._hot_guard:
            return account_id in self._hot_terms

    def forget_hot(self, account_ids: Iterable[str]) -> None:
        with self._hot_guard:
            for account_id in account_ids:
                self._hot_terms.pop(account_id, None)

    def _remember_hot(self, account: Account) -> None:
        with self._hot_guard:
            self._hot_terms[account.account_id] = account

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        with _transient_errors():
            for start in range(0, len(keys), 100):
                request = {self.table_name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
                for attempt in range(UNPROCESSED_KEY_ATTEMPTS):
                    if attempt:
                        # DynamoDB hands keys back unread when it throttles: back off, then ask again.
                        self._sleep(random.uniform(0, 0.05 * 2**attempt))
                    response = self._client.batch_get_item(RequestItems=request)
                    records += [_from_attributes(item) for item in response["Responses"].get(self.table_name, [])]
                    request = response.get("UnprocessedKeys") or {}
                    if not request:
                        break
                else:
                    raise TransientPostingError("DynamoDB: keys left unprocessed (throttled reads)")
        return records

    # -- postings -------------------------------------------------------------------------------

    def get_decision(self, posting_id: str) -> Decision | None:
        with _transient_errors():
            response = self._client.get_item(
                TableName=self.table_name, Key=posting_key(posting_id), ConsistentRead=True
            )
        item = response.get("Item")
        return _decision(_from_attributes(item)) if item else None

    def record_posting(self, plan: PostingPlan, request_hash: str, message_id: str, decided_at: str) -> Decision:
        """Apply a planned request of any kind in one transaction and return its decision.

        Raises PostingAlreadyDecided when the posting_id has a decision already (a duplicate or a
        conflict: nothing was written), ConcurrentUpdate when an account, a hold or an original
        moved since it was read, and TransientPostingError for throttling, conflicts and timeouts.
        """
        request = plan.request
        decision = decision_for(plan, request_hash, message_id, decided_at)
        put = self._decision_put(decision)
        if decision.expires_at is not None:
            put["Item"] |= _to_attributes(
                {
                    "open_hold_bucket": open_hold_bucket(decision.posting_id),
                    "open_hold_expires_at": decision.expires_at,
                }
            )
        actions: list[dict[str, Any]] = [{"Put": put}]
        if plan.settlement is not None:
            actions.append({"Update": self._settle(plan.settlement, request.posting_id)})
        if plan.reversal is not None:
            actions.append({"Update": self._mark_reversed(plan.reversal, request.posting_id)})
        for change in plan.changes:
            actions.append({"Update": self._balance_update(change, request.posting_id, decided_at)})
        for shard in plan.shard_changes:
            actions.append({"Update": self._shard_update(shard)})
        for entry in plan.entries:
            actions.append({"Put": self._entry_put(entry, request, decided_at)})
        try:
            self._transact(actions)
        except ConcurrentUpdate:
            # A shard may have refused because the account is no longer open: read its terms again.
            self.forget_hot(plan.hot_accounts)
            raise
        return decision

    def _settle(self, settlement: HoldSettlement, posting_id: str) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": posting_key(settlement.hold_id),
            "UpdateExpression": "SET hold_state = :state, settled_by = :by "
            "REMOVE open_hold_bucket, open_hold_expires_at",
            "ConditionExpression": "hold_state = :open",
            "ExpressionAttributeValues": {
                ":state": {"S": settlement.state},
                ":by": {"S": posting_id},
                ":open": {"S": HoldState.OPEN},
            },
        }

    def _mark_reversed(self, mark: ReversalMark, posting_id: str) -> dict[str, Any]:
        values: dict[str, Any] = {
            ":reversed": _serialize(mark.reversed),
            ":next": {"N": str(mark.expected_version + 1)},
            ":me": {"L": [{"S": posting_id}]},
            ":none": {"L": []},
        }
        if mark.expected_version:
            condition = "version = :expected"
            values[":expected"] = {"N": str(mark.expected_version)}
        else:
            condition = "attribute_not_exists(version)"
        return {
            "TableName": self.table_name,
            "Key": posting_key(mark.original_id),
            "UpdateExpression": "SET reversed = :reversed, version = :next, "
            "reversed_by = list_append(if_not_exists(reversed_by, :none), :me)",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }

    def _balance_update(self, change: BalanceChange, posting_id: str, decided_at: str) -> dict[str, Any]:
        condition = (
            "version = :expected"
            " AND (attribute_not_exists(pending_debits) OR pending_debits = :expected_pd)"
            " AND (attribute_not_exists(pending_credits) OR pending_credits = :expected_pc)"
        )
        values = {
            ":balance": {"N": str(change.balance)},
            ":version": {"N": str(change.version)},
            ":expected": {"N": str(change.expected_version)},
            ":pd": {"N": str(change.pending_debits)},
            ":pc": {"N": str(change.pending_credits)},
            ":expected_pd": {"N": str(change.expected_pending_debits)},
            ":expected_pc": {"N": str(change.expected_pending_credits)},
            ":posting": {"S": posting_id},
            ":recorded": {"S": decided_at},
        }
        names = {}
        if change.require_open:
            condition += " AND #status = :open"
            names["#status"] = "status"
            values[":open"] = {"S": str(AccountStatus.OPEN)}
        return {
            "TableName": self.table_name,
            "Key": account_key(change.account_id),
            "UpdateExpression": "SET balance = :balance, version = :version, pending_debits = :pd, "
            "pending_credits = :pc, last_posting_id = :posting, last_recorded_at = :recorded",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            **({"ExpressionAttributeNames": names} if names else {}),
        }

    def _shard_update(self, shard: ShardChange) -> dict[str, Any]:
        condition = "attribute_exists(PK)"
        names = {}
        values = {
            ":posted": {"N": str(shard.posted)},
            ":pd": {"N": str(shard.pending_debits)},
            ":pc": {"N": str(shard.pending_credits)},
            ":entries": {"N": str(shard.entries)},
        }
        if shard.require_open:
            condition += " AND #status = :open"
            names["#status"] = "status"
            values[":open"] = {"S": str(AccountStatus.OPEN)}
        return {
            "TableName": self.table_name,
            "Key": shard_key(shard.account_id, shard.shard),
            # ADD: no read, no version. Concurrent postings on other shards never meet this item.
            "UpdateExpression": "ADD balance :posted, pending_debits :pd, pending_credits :pc, entries :entries",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": values,
            **({"ExpressionAttributeNames": names} if names else {}),
        }

    def _entry_put(self, entry: Entry, request: Any, decided_at: str) -> dict[str, Any]:
        record = {
            "entity": "entry",
            "account_id": entry.account_id,
            "sequence": entry.sequence,
            "posting_id": entry.posting_id,
            "side": str(entry.side),
            "amount": entry.amount,
            "currency": entry.currency,
            "signed_amount": entry.signed_amount,
            "kind": entry.kind,
            "leg": entry.leg,
            # A request without effective_at takes effect when it is decided.
            "effective_at": request.effective_at.isoformat() if request.effective_at else decided_at,
            "recorded_at": decided_at,
        }
        if entry.balance_after is not None:
            record["balance_after"] = entry.balance_after
        if entry.shard is not None:
            record["shard"] = entry.shard
        return {
            "TableName": self.table_name,
            "Item": entry_key(
                entry.account_id,
                entry.sequence,
                recorded_at=decided_at,
                posting_id=entry.posting_id,
                leg=entry.leg,
                shard=entry.shard,
            )
            | _to_attributes(record),
            "ConditionExpression": "attribute_not_exists(PK)",
        }

    def record_rejection(self, decision: Decision) -> Decision:
        """Record a rejection under its posting_id, so a retry of the same request gets the same answer.

        Raises PostingAlreadyDecided when the posting_id already has a decision.
        """
        with _transient_errors():
            try:
                self._client.put_item(**self._decision_put(decision))
            except ClientError as error:
                if _code(error) == "ConditionalCheckFailedException" and "Item" in error.response:
                    raise PostingAlreadyDecided(_decision(_from_attributes(error.response["Item"]))) from error
                if _code(error) == "ConditionalCheckFailedException":
                    raise TransientPostingError("the posting record exists but was not returned") from error
                raise
        return decision

    def _decision_put(self, decision: Decision) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Item": posting_key(decision.posting_id)
            | _to_attributes({"entity": "posting", **decision_fields(decision)}),
            "ConditionExpression": "attribute_not_exists(PK)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        # The token lets the SDK's own retries of this exact call (after a timeout) succeed instead
        # of failing on the decision they already wrote. Our re-plans send different items, hence
        # a different token.
        token = hashlib.sha256(json.dumps(actions, sort_keys=True, default=_binary_text).encode()).hexdigest()[:36]
        with _transient_errors():
            try:
                self._client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            except ClientError as error:
                if _code(error) != "TransactionCanceledException":
                    raise
                _raise_for_cancellation(error, actions)
                raise

    # -- holds ----------------------------------------------------------------------------------

    def expired_holds(self, now: str, limit: int = 500) -> list[tuple[str, str]]:
        """(hold_id, expires_at) of open holds whose expires_at is at or before `now`: one Query per
        bucket of the sparse OpenHoldsByExpiry index (eventually consistent; the expiry re-checks)."""
        found: list[tuple[str, str]] = []
        with _transient_errors():
            for bucket in range(OPEN_HOLD_BUCKETS):
                query: dict[str, Any] = {
                    "TableName": self.table_name,
                    "IndexName": OPEN_HOLDS_INDEX,
                    "KeyConditionExpression": "open_hold_bucket = :bucket AND open_hold_expires_at <= :now",
                    "ExpressionAttributeValues": {":bucket": {"S": f"HOLDS#{bucket:02d}"}, ":now": {"S": now}},
                }
                while len(found) < limit:
                    response = self._client.query(**query)
                    found += [
                        (item["PK"]["S"].removeprefix("POSTING#"), item["open_hold_expires_at"]["S"])
                        for item in response["Items"]
                    ]
                    if "LastEvaluatedKey" not in response:
                        break
                    query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return found[:limit]

    # -- reading the books ----------------------------------------------------------------------

    def statement(self, account_id: str, after_sequence: int = 0) -> tuple[AccountState | None, list[Entry]]:
        """The account and all its entries in recorded order, from one Query (paged); a hot account's
        from one Query per shard, merged in recorded order, with their running balance rebuilt.

        With `after_sequence`, only the entries after that sequence (unsharded accounts).
        """
        state: AccountState | None = None
        entries: list[Entry] = []
        for record in self._query(f"ACCOUNT#{account_id}", "ACCOUNT", None):
            if record["entity"] == "account":
                state = _account_state(record)
            elif record["entity"] == "entry":
                entries.append(_entry(record))
        if state is not None and state.account.is_hot:
            state = self.get_account(account_id)
            assert state is not None
            entries = [_entry(r) for r in self._merged_shards(state.account, "ENTRY#", "ENTRY#~")]
        entries = _with_running_balance(entries, 0)
        if after_sequence:
            entries = [entry for entry in entries if entry.sequence > after_sequence]
        return state, entries

    def balance_as_of(self, account_id: str, moment: str) -> int:
        """The posted balance right after the last entry recorded at or before `moment` (UTC text).

        Unsharded: one Query for one item (the last entry, whose balance_after it is). Hot: one Query
        per shard over its entries up to `moment` (paged), summing their signed amounts.
        """
        state = self.get_account(account_id)
        if state is None:
            raise KeyError(account_id)
        upper = f"ENTRY#{moment}~"
        if not state.account.is_hot:
            records = list(self._query(f"ACCOUNT#{account_id}", "ENTRY#", upper, newest_first=True, limit=1))
            return int(records[0]["balance_after"]) if records else 0
        return sum(
            int(record["signed_amount"])
            for shard in range(state.account.balance_shards)
            for record in self._query(shard_partition(account_id, shard), "ENTRY#", upper, projection="signed_amount")
        )

    def statement_page(
        self,
        account_id: str,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[Entry], str | None]:
        """Entries recorded in [since, until], `limit` at a time, in order, each with its running
        balance. Returns the page and the cursor of the next one (None at the end).

        Unsharded: one Query per page, from the cursor's key. Hot: the shards' entries in the range,
        merged, then the page after the cursor's key (the cursor carries the running balance).
        """
        state = self.get_account(account_id)
        if state is None:
            return [], None
        if cursor:
            position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            after, running = str(position["after"]), int(position["balance"])
        else:
            after = ""
            running = self.balance_as_of(account_id, _just_before(since)) if since else 0
        lower = f"ENTRY#{since}" if since else "ENTRY#"
        upper = f"ENTRY#{until}~" if until else "ENTRY#~"
        if state.account.is_hot:
            records = [r for r in self._merged_shards(state.account, lower, upper) if _sort_key(r) > after][: limit + 1]
        else:
            records = list(
                self._query(f"ACCOUNT#{account_id}", lower, upper, limit=limit + 1, exclusive_start=after or None)
            )
        more = len(records) > limit
        records = records[:limit]
        page = _with_running_balance([_entry(r) for r in records], running)
        if not more or not page:
            return page, None
        position = {"after": _sort_key(records[-1]), "balance": page[-1].balance_after or 0}
        return page, base64.urlsafe_b64encode(json.dumps(position).encode()).decode()

    def _merged_shards(self, account: Account, lower: str, upper: str) -> list[dict[str, Any]]:
        """A hot account's entries in [lower, upper] from each of its shards, in recorded order."""
        records = [
            record
            for shard in range(account.balance_shards)
            for record in self._query(shard_partition(account.account_id, shard), lower, upper)
            if record.get("entity") == "entry"
        ]
        return sorted(records, key=_sort_key)

    def _query(
        self,
        partition: str,
        lower: str,
        upper: str | None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
        projection: str | None = None,
        exclusive_start: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Items of one partition with SK >= lower (and <= upper), in SK order; `limit` items at most."""
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "ExpressionAttributeValues": {":pk": {"S": partition}, ":lower": {"S": lower}},
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
        }
        if upper is None:
            query["KeyConditionExpression"] = "PK = :pk AND SK >= :lower"
        else:
            query["KeyConditionExpression"] = "PK = :pk AND SK BETWEEN :lower AND :upper"
            query["ExpressionAttributeValues"][":upper"] = {"S": upper}
        if limit is not None:
            query["Limit"] = limit
        if projection is not None:
            query["ProjectionExpression"] = projection + ", SK"
        if exclusive_start is not None:
            query["ExclusiveStartKey"] = {"PK": {"S": partition}, "SK": {"S": exclusive_start}}
        returned = 0
        with _transient_errors():
            while True:
                response = self._client.query(**query)
                for item in response["Items"]:
                    yield _from_attributes(item)
                    returned += 1
                if "LastEvaluatedKey" not in response or (limit is not None and returned >= limit):
                    return
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def scan(self) -> Iterator[AccountState | Entry | Decision | Shard]:
        """Every account, shard, entry and decision in the table (a full Scan: for reconciliation).

        Accounts come as stored: a hot account's figures live in its Shard records.
        """
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            with _transient_errors():
                response = self._client.scan(**kwargs)
            for item in response["Items"]:
                record = _from_attributes(item)
                entity = record.get("entity")
                if entity == "account":
                    yield _account_state(record)
                elif entity == "shard":
                    yield _shard(record)
                elif entity == "entry":
                    yield _entry(record)
                elif entity == "posting":
                    yield _decision(record)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _raise_for_cancellation(error: ClientError, actions: list[dict[str, Any]]) -> None:
    """Turn a cancelled transaction into the domain error its cancellation reason codes mean."""
    reasons = error.response.get("CancellationReasons") or []
    codes = [reason.get("Code", "None") for reason in reasons]
    if codes and codes[0] == "ConditionalCheckFailed":
        old = reasons[0].get("Item")
        if old:
            raise PostingAlreadyDecided(_decision(_from_attributes(old))) from error
        raise TransientPostingError("the posting record exists but was not returned; read it again") from error
    if "ConditionalCheckFailed" in codes:
        # A balance version (or an entry key derived from it) moved since we read it.
        raise ConcurrentUpdate(", ".join(sorted(set(codes)))) from error
    if any(code in TRANSIENT_CANCELLATION_CODES for code in codes):
        raise TransientPostingError(f"transaction cancelled: {', '.join(codes)}") from error
    raise RuntimeError(f"transaction of {len(actions)} items cancelled: {', '.join(codes) or 'no reasons'}") from error


@contextmanager
def _transient_errors() -> Iterator[None]:
    """Re-raise throttling, timeouts and lost connections as TransientPostingError."""
    try:
        yield
    except ClientError as error:
        if _code(error) in TRANSIENT_ERROR_CODES:
            raise TransientPostingError(f"DynamoDB: {_code(error)}") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise TransientPostingError(f"DynamoDB unreachable: {type(error).__name__}") from error


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _to_attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {name: _serialize(value) for name, value in record.items()}


def _from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _plain(_deserialize(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the ledger only ever stores integers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(element) for element in value]
    if isinstance(value, dict):
        return {key: _plain(element) for key, element in value.items()}
    return value


def _account_state(record: dict[str, Any]) -> AccountState:
    account = Account.model_validate(
        {field: record[field] for field in Account.model_fields if field in record}, strict=False
    )
    return AccountState(
        account=account,
        balance=record["balance"],
        version=record["version"],
        pending_debits=record.get("pending_debits", 0),
        pending_credits=record.get("pending_credits", 0),
        last_recorded_at=record.get("last_recorded_at", ""),
    )


def _shard(record: dict[str, Any]) -> Shard:
    return Shard(
        account_id=record["account_id"],
        shard=record["shard"],
        balance=record.get("balance", 0),
        pending_debits=record.get("pending_debits", 0),
        pending_credits=record.get("pending_credits", 0),
        entries=record.get("entries", 0),
        status=record.get("status", ""),
    )


def _summed(state: AccountState, shard_records: Iterable[dict[str, Any] | Shard]) -> AccountState:
    """A hot account's figures: the sums over its shards (its version: their entry counts)."""
    shards = [s if isinstance(s, Shard) else _shard(s) for s in shard_records]
    return state.model_copy(
        update={
            "balance": sum(s.balance for s in shards),
            "pending_debits": sum(s.pending_debits for s in shards),
            "pending_credits": sum(s.pending_credits for s in shards),
            "version": sum(s.entries for s in shards),
        }
    )


def _with_running_balance(entries: list[Entry], opening: int) -> list[Entry]:
    """Fill in the running balance of entries written without one (a hot account's), in order."""
    running = opening
    result = []
    for entry in entries:
        if entry.balance_after is None:
            running += entry.signed_amount
            result.append(replace(entry, balance_after=running))
        else:
            running = entry.balance_after
            result.append(entry)
    return result


def _sort_key(record: dict[str, Any]) -> str:
    return str(record["SK"])


def _just_before(moment: str) -> str:
    """The instant one millisecond before `moment` (UTC text): entries recorded before it."""
    return utc_timestamp(datetime.fromisoformat(moment.replace("Z", "+00:00")) - timedelta(milliseconds=1))


def _entry(record: dict[str, Any]) -> Entry:
    side = Side(record["side"])
    return Entry(
        account_id=record["account_id"],
        sequence=record.get("sequence", 0),
        posting_id=record["posting_id"],
        side=side,
        amount=record["amount"],
        currency=record["currency"],
        balance_after=record.get("balance_after"),
        kind=record.get("kind", "posting"),
        recorded_at=record.get("recorded_at", ""),
        leg=record.get("leg", 0),
        shard=record.get("shard"),
        signed_amount=record.get("signed_amount", 0),
    )


def _binary_text(value: Any) -> str:
    """Binary attribute values (bytes) in the JSON that derives a transaction's token."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _decision(record: dict[str, Any]) -> Decision:
    return decision_of(record)
