"""What every reader and writer of the ledger table shares: error translation, paged reads.

DynamoDB errors become domain errors by error code and cancellation reason code, never by message
text: throttling, conflicts, timeouts and lost connections are TransientPostingError (try again).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from posting.adapters.ledger_keys import KEY_NAMES, from_attributes
from posting.domain.outcomes import TransientPostingError

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
TRANSIENT_CANCELLATION_CODES = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
UNPROCESSED_KEY_ATTEMPTS = 5


@contextmanager
def transient_errors() -> Iterator[None]:
    """Re-raise throttling, conflicts, timeouts and lost connections as TransientPostingError."""
    try:
        yield
    except ClientError as error:
        if error_code(error) in TRANSIENT_ERROR_CODES:
            raise TransientPostingError(f"DynamoDB: {error_code(error)}") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise TransientPostingError(f"DynamoDB unreachable: {type(error).__name__}") from error


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def cancellation_codes(error: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in error.response.get("CancellationReasons") or []]


class Table:
    """One DynamoDB table through a botocore client: strongly consistent, paged reads."""

    def __init__(self, client: Any, name: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.name = name
        self._sleep = sleep

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        with transient_errors():
            item = self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")
        return from_attributes(item) if item else None

    def batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every item that exists among `keys` (any number of them), strongly consistent."""
        records: list[dict[str, Any]] = []
        with transient_errors():
            for start in range(0, len(keys), 100):
                request = {self.name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
                for attempt in range(UNPROCESSED_KEY_ATTEMPTS):
                    if attempt:
                        # DynamoDB hands keys back unread when it throttles: back off, then ask again.
                        self._sleep(random.uniform(0, 0.05 * 2**attempt))
                    response = self.client.batch_get_item(RequestItems=request)
                    records += [from_attributes(item) for item in response["Responses"].get(self.name, [])]
                    request = response.get("UnprocessedKeys") or {}
                    if not request:
                        break
                else:
                    raise TransientPostingError("DynamoDB: keys left unprocessed (throttled reads)")
        return records

    def query(
        self,
        partition: str,
        lower: str | None = None,
        upper: str | None = None,
        *,
        newest_first: bool = False,
        limit: int | None = None,
        exclusive_start: str | None = None,
        index: str | None = None,
        key_names: tuple[str, str] = KEY_NAMES,
        consistent: bool = True,
    ) -> Iterator[dict[str, Any]]:
        """Items of one partition with sort key >= lower and <= upper (either may be open), in order;
        `limit` at most."""
        partition_name, sort_name = key_names
        values = {":pk": {"S": partition}}
        condition = "#pk = :pk"
        if lower is not None and upper is not None:
            condition += " AND #sk BETWEEN :lower AND :upper"
        elif lower is not None:
            condition += " AND #sk >= :lower"
        elif upper is not None:
            condition += " AND #sk <= :upper"
        if lower is not None:
            values[":lower"] = {"S": lower}
        if upper is not None:
            values[":upper"] = {"S": upper}
        names = {"#pk": partition_name} | ({"#sk": sort_name} if lower is not None or upper is not None else {})
        query: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ConsistentRead": consistent,
            "ScanIndexForward": not newest_first,
        }
        if index is not None:
            query["IndexName"] = index
        if limit is not None:
            query["Limit"] = limit
        if exclusive_start is not None:
            query["ExclusiveStartKey"] = {partition_name: {"S": partition}, sort_name: {"S": exclusive_start}}
        returned = 0
        while True:
            with transient_errors():
                response = self.client.query(**query)
            for item in response["Items"]:
                yield from_attributes(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            if "LastEvaluatedKey" not in response:
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def scan(self) -> Iterator[dict[str, Any]]:
        """Every item of the table (a full, strongly consistent Scan: for reconciliation only)."""
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            with transient_errors():
                response = self.client.scan(**kwargs)
            for item in response["Items"]:
                yield from_attributes(item)
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
