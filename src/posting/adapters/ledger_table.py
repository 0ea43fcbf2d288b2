"""The ledger table in DynamoDB: accounts, their statement entries, and one decision per posting_id.

Single-table layout (keys `PK`, `SK`, both strings):

  PK                  SK                    item
  ACCOUNT#<id>        ACCOUNT               the account: terms, `balance`, `version` (= entries so far)
  ACCOUNT#<id>        ENTRY#<sequence>      one statement line: the leg and the balance right after it
  POSTING#<id>        POSTING               the decision for a posting_id: POSTED or REJECTED, final

A balance is one GetItem, a statement one Query on `ACCOUNT#<id>` (account first, then entries in
order). A posting is one TransactWriteItems: the decision (`attribute_not_exists`), every balance
change (conditioned on the version read) and every entry, all or nothing. So a retry, a duplicate
or a crash can never apply a posting twice or half, and a balance never moves past a limit checked
against a stale read.

This module owns boto3 for the table and turns DynamoDB errors into domain errors by error code
and cancellation reason code, never by message text.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from posting.domain.ledger import Entry, PostingPlan
from posting.domain.model import Account, AccountState, AccountStatus, Side
from posting.domain.outcomes import BalanceAfter, Decision, Reason, Status, TransientPostingError

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

_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


class ConcurrentUpdate(Exception):
    """An account changed between our read and our write: read again and re-plan."""


class PostingAlreadyDecided(Exception):
    """The posting_id already has a decision; it comes with the exception."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"posting {decision.posting_id} was already {decision.status}")
        self.decision = decision


class AccountAlreadyExists(Exception):
    pass


def account_key(account_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": "ACCOUNT"}}


def posting_key(posting_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"POSTING#{posting_id}"}, "SK": {"S": "POSTING"}}


def entry_key(account_id: str, sequence: int) -> dict[str, Any]:
    return {"PK": {"S": f"ACCOUNT#{account_id}"}, "SK": {"S": f"ENTRY#{sequence:015d}"}}


class LedgerTable:
    """Reads and writes the ledger table through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.table_name = table_name
        self._sleep = sleep

    # -- accounts -------------------------------------------------------------------------------

    def open_account(self, account: Account, opened_at: str) -> AccountState:
        """Create an account with a zero balance; raises AccountAlreadyExists if the id is taken."""
        item = account_key(account.account_id) | _to_attributes(
            {"entity": "account", **account.model_dump(mode="json"), "balance": 0, "version": 0, "opened_at": opened_at}
        )
        with _transient_errors():
            try:
                self._client.put_item(
                    TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(PK)"
                )
            except ClientError as error:
                if _code(error) == "ConditionalCheckFailedException":
                    raise AccountAlreadyExists(account.account_id) from error
                raise
        return AccountState(account=account)

    def set_account_status(self, account_id: str, status: AccountStatus) -> None:
        """Freeze, close or reopen an account. Bumps nothing but the status: postings re-check it."""
        with _transient_errors():
            self._client.update_item(
                TableName=self.table_name,
                Key=account_key(account_id),
                UpdateExpression="SET #status = :status",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":status": {"S": str(status)}},
            )

    def get_account(self, account_id: str) -> AccountState | None:
        return self.get_accounts([account_id]).get(account_id)

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The current state of the accounts that exist among `account_ids` (strongly consistent)."""
        keys = [account_key(account_id) for account_id in dict.fromkeys(account_ids)]
        found: dict[str, AccountState] = {}
        with _transient_errors():
            for start in range(0, len(keys), 100):
                request = {self.table_name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
                for attempt in range(UNPROCESSED_KEY_ATTEMPTS):
                    if attempt:
                        # DynamoDB hands keys back unread when it throttles: back off, then ask again.
                        self._sleep(random.uniform(0, 0.05 * 2**attempt))
                    response = self._client.batch_get_item(RequestItems=request)
                    for item in response["Responses"].get(self.table_name, []):
                        state = _account_state(_from_attributes(item))
                        found[state.account_id] = state
                    request = response.get("UnprocessedKeys") or {}
                    if not request:
                        break
                else:
                    raise TransientPostingError("DynamoDB: keys left unprocessed (throttled reads)")
        return found

    # -- postings -------------------------------------------------------------------------------

    def get_decision(self, posting_id: str) -> Decision | None:
        with _transient_errors():
            response = self._client.get_item(
                TableName=self.table_name, Key=posting_key(posting_id), ConsistentRead=True
            )
        item = response.get("Item")
        return _decision(_from_attributes(item)) if item else None

    def record_posting(self, plan: PostingPlan, request_hash: str, message_id: str, decided_at: str) -> Decision:
        """Apply a planned posting in one transaction and return its decision.

        Raises PostingAlreadyDecided when the posting_id has a decision already (a duplicate or a
        conflict: nothing was written), ConcurrentUpdate when an account moved since it was read,
        and TransientPostingError for throttling, transaction conflicts and timeouts.
        """
        request = plan.request
        balances = tuple(
            BalanceAfter(account_id=c.account_id, currency=c.currency, balance=c.balance, version=c.version)
            for c in plan.changes
        )
        decision = Decision(
            posting_id=request.posting_id,
            status=Status.POSTED,
            request_hash=request_hash,
            balances=balances,
            decided_at=decided_at,
            message_id=message_id,
            request=request.model_dump(mode="json"),
        )
        actions: list[dict[str, Any]] = [{"Put": self._decision_put(decision)}]
        for change in plan.changes:
            actions.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": account_key(change.account_id),
                        "UpdateExpression": "SET balance = :balance, version = :version, last_posting_id = :posting",
                        "ConditionExpression": "version = :expected AND #status = :open",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":balance": {"N": str(change.balance)},
                            ":version": {"N": str(change.version)},
                            ":expected": {"N": str(change.expected_version)},
                            ":open": {"S": str(AccountStatus.OPEN)},
                            ":posting": {"S": request.posting_id},
                        },
                    }
                }
            )
        for entry in plan.entries:
            actions.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": entry_key(entry.account_id, entry.sequence)
                        | _to_attributes(
                            {
                                "entity": "entry",
                                "account_id": entry.account_id,
                                "sequence": entry.sequence,
                                "posting_id": entry.posting_id,
                                "side": str(entry.side),
                                "amount": entry.amount,
                                "currency": entry.currency,
                                "balance_after": entry.balance_after,
                                # A request without effective_at takes effect when it is decided.
                                "effective_at": request.effective_at.isoformat()
                                if request.effective_at
                                else decided_at,
                                "recorded_at": decided_at,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        self._transact(actions)
        return decision

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
            | _to_attributes({"entity": "posting", **decision.model_dump(mode="json", exclude_none=True)}),
            "ConditionExpression": "attribute_not_exists(PK)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _transact(self, actions: list[dict[str, Any]]) -> None:
        # The token lets the SDK's own retries of this exact call (after a timeout) succeed instead
        # of failing on the decision they already wrote. Our re-plans send different items, hence
        # a different token.
        token = hashlib.sha256(json.dumps(actions, sort_keys=True).encode()).hexdigest()[:36]
        with _transient_errors():
            try:
                self._client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
            except ClientError as error:
                if _code(error) != "TransactionCanceledException":
                    raise
                _raise_for_cancellation(error, actions)
                raise

    # -- reading the books ----------------------------------------------------------------------

    def statement(self, account_id: str, after_sequence: int = 0) -> tuple[AccountState | None, list[Entry]]:
        """The account and its entries in posting order, from one Query (paged).

        With `after_sequence`, only the entries after it (the account item sorts before them, so it
        is read separately).
        """
        state: AccountState | None = self.get_account(account_id) if after_sequence else None
        entries: list[Entry] = []
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK >= :from",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"ACCOUNT#{account_id}"},
                ":from": {"S": "ACCOUNT" if after_sequence == 0 else f"ENTRY#{after_sequence + 1:015d}"},
            },
            "ConsistentRead": True,
        }
        with _transient_errors():
            while True:
                response = self._client.query(**query)
                for item in response["Items"]:
                    record = _from_attributes(item)
                    if record["entity"] == "account":
                        state = _account_state(record)
                    else:
                        entries.append(_entry(record))
                if "LastEvaluatedKey" not in response:
                    break
                query["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return state, entries

    def scan(self) -> Iterator[AccountState | Entry | Decision]:
        """Every account, entry and decision in the table (a full Scan: for reconciliation tooling)."""
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            with _transient_errors():
                response = self._client.scan(**kwargs)
            for item in response["Items"]:
                record = _from_attributes(item)
                entity = record.get("entity")
                if entity == "account":
                    yield _account_state(record)
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
    account = Account.model_validate({field: record.get(field) for field in Account.model_fields}, strict=False)
    return AccountState(account=account, balance=record["balance"], version=record["version"])


def _entry(record: dict[str, Any]) -> Entry:
    return Entry(
        account_id=record["account_id"],
        sequence=record["sequence"],
        posting_id=record["posting_id"],
        side=Side(record["side"]),
        amount=record["amount"],
        currency=record["currency"],
        balance_after=record["balance_after"],
    )


def _decision(record: dict[str, Any]) -> Decision:
    fields = {field: record[field] for field in Decision.model_fields if field in record}
    if "reason" in fields:
        fields["reason"] = Reason(fields["reason"])
    return Decision.model_validate(fields)
