"""The ledger's DynamoDB table on a local endpoint, as the template declares it: created, or reused
when it exists with the template's keys (a retained table on AWS keeps its items the same way)."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from posting_cli.local.template import TemplateError


class ExistingTableMismatch(TemplateError):
    """A table of that name exists, but not with the template's keys: it is not our ledger."""


def ensure_table(dynamodb: Any, name: str, props: dict[str, Any], *, fresh: bool = False) -> dict[str, Any]:
    """The table `name`, reused if it exists (its items kept), else created; returns its description.

    Books survive: a table that already exists is never deleted or recreated, the way a retained
    table outlives its stack on AWS, unless `fresh` asks for empty books explicitly. Two stacks
    starting at once against one endpoint both end up using the one table.
    """
    description = _describe_table(dynamodb, name)
    if description is not None and fresh:
        dynamodb.delete_table(TableName=name)
        _wait_for_table(dynamodb, name, gone=True)
        description = None
    if description is None:
        try:
            description = create_table(dynamodb, name, props)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
            description = _describe_table(dynamodb, name)  # another stack created it meanwhile
            if description is None:
                raise
    wanted = sorted((key["AttributeName"], key["KeyType"]) for key in props["KeySchema"])
    found = sorted((key["AttributeName"], key["KeyType"]) for key in description["KeySchema"])
    if wanted != found:
        raise ExistingTableMismatch(
            f"table {name} already exists with keys {found}, not the template's {wanted}; it is left "
            "untouched. Use another endpoint, or --fresh-books to replace it with empty books"
        )
    if description.get("TableStatus") != "ACTIVE":
        description = _wait_for_table(dynamodb, name)
    return description


def _describe_table(dynamodb: Any, name: str) -> dict[str, Any] | None:
    try:
        table: dict[str, Any] = dynamodb.describe_table(TableName=name)["Table"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return table


def _wait_for_table(dynamodb: Any, name: str, gone: bool = False, timeout: float = 30.0) -> dict[str, Any]:
    """Poll until the table is ACTIVE (or, with `gone`, deleted). DynamoDB Local is near-instant."""
    deadline = time.monotonic() + timeout
    while True:
        description = _describe_table(dynamodb, name)
        if (description is None) if gone else (description or {}).get("TableStatus") == "ACTIVE":
            return description or {}
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} did not become {'deleted' if gone else 'ACTIVE'} in {timeout:.0f} s")
        time.sleep(0.1)


def create_table(dynamodb: Any, name: str, props: dict[str, Any]) -> dict[str, Any]:
    """Create a table as a template's AWS::DynamoDB::Table properties describe it; returns its description."""
    kwargs: dict[str, Any] = {
        "TableName": name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"):
        if optional in props:
            kwargs[optional] = props[optional]
    if "ProvisionedThroughput" in kwargs:
        kwargs["ProvisionedThroughput"] = _units(kwargs["ProvisionedThroughput"])
    if "GlobalSecondaryIndexes" in kwargs:
        kwargs["GlobalSecondaryIndexes"] = [
            {**index, "ProvisionedThroughput": _units(index["ProvisionedThroughput"])}
            if "ProvisionedThroughput" in index
            else index
            for index in kwargs["GlobalSecondaryIndexes"]
        ]
    description: dict[str, Any] = dynamodb.create_table(**kwargs)["TableDescription"]
    return description


def _units(throughput: dict[str, Any]) -> dict[str, int]:
    """Capacity units as numbers (a template parameter resolves to a string)."""
    return {name: int(value) for name, value in throughput.items()}
