"""DynamoDB item sizes by the documented rules, and the sizes of real postings read back from DynamoDB Local."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from posting.adapters.ledger_table import account_key, entry_key, posting_key
from posting.steps.emit import EVENT_SOURCE, result_event
from posting.steps.post import post_item
from posting.steps.validate import validate_record
from posting_cli.bench.cost_model import read_units, write_units
from posting_cli.bench.workload import open_unlimited_accounts, posting_id, sqs_record, ten_leg_body, two_leg_body


def number_size(text: str) -> int:
    """Bytes DynamoDB uses for a number: 1 per two significant digits, plus 1 (leading/trailing zeros trimmed)."""
    digits = text.lstrip("+-").replace(".", "").lstrip("0").rstrip("0")
    return math.ceil(len(digits) / 2) + 1


_SCALAR_SIZE: dict[str, Callable[[Any], int]] = {
    "S": lambda text: len(text.encode()),
    "N": number_size,
    "B": len,  # boto3 hands binaries over as raw bytes
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
}


def attribute_value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one DynamoDB AttributeValue (`{"S": ...}`, `{"N": ...}`, `{"M": ...}`...) without its name.

    The rules of the DynamoDB Developer Guide, "Item sizes and formats": strings and binaries by
    their UTF-8 / raw bytes, numbers by significant digits, null and booleans 1 byte, a list or map
    3 bytes plus 1 byte per element plus its elements (map keys count as attribute names).
    """
    ((kind, content),) = value.items()
    if kind in _SCALAR_SIZE:
        return _SCALAR_SIZE[kind](content)
    if kind in ("SS", "NS", "BS"):  # sets: the sum of their members
        return sum(_SCALAR_SIZE[kind[0]](member) for member in content)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(element) for element in content)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + attribute_value_size(element) for name, element in content.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of a DynamoDB item: the sum of its attribute names and values (keys included)."""
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def measure_stored_sizes(ledger: Any, client: Any, table: str) -> dict[str, Any]:
    """Post one 2-leg and one 10-leg request for real, read every item back, and size them by DynamoDB's rules."""

    def stored(key: dict[str, Any]) -> dict[str, Any]:
        return client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]

    accounts = [f"acc-size-{n:04d}" for n in range(10)]
    open_unlimited_accounts(ledger, accounts)
    sizes: dict[str, Any] = {}
    for case, body in (
        ("2-leg", two_leg_body(posting_id(), accounts[0], accounts[1])),
        ("10-leg", ten_leg_body(posting_id(), accounts)),
    ):
        item = post_item(validate_record(sqs_record(body)), ledger)
        assert item.outcome is not None and item.posting_id is not None, item.failure
        balances = item.outcome.balances
        decision = item_size(stored(posting_key(item.posting_id)))
        account_items = [item_size(stored(account_key(b.account_id))) for b in balances]
        entry_items = [item_size(stored(entry_key(b.account_id, b.version))) for b in balances]
        event = result_event(item, item.outcome)
        # PutEvents bills an entry by Source + DetailType + Detail (+ Resources, Time: not set here).
        event_bytes = len(EVENT_SOURCE) + len(event.detail_type) + len(json.dumps(event.detail, separators=(",", ":")))
        write_items = [decision, *account_items, *entry_items]
        sizes[case] = {
            "message_bytes": len(body.encode()),
            "posting_item_bytes": decision,
            "account_item_bytes": account_items,
            "entry_item_bytes": entry_items,
            "transaction_items": len(write_items),
            "transaction_write_units": sum(write_units(size, transactional=True) for size in write_items),
            "read_item_bytes": account_items,
            "read_units": sum(read_units(size, consistent=True) for size in account_items),
            "event_bytes": event_bytes,
        }
    return sizes
