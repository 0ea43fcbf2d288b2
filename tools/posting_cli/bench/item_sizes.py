"""DynamoDB item sizes by the documented rules, and the sizes of real postings read back from DynamoDB Local."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from posting.adapters.ledger_keys import KEY_NAMES, is_line, posting_key
from posting.steps.emit import EVENT_SOURCE, result_event
from posting.steps.post import post_item
from posting.steps.validate import validate_record
from posting_cli.bench.cost_model import read_units, write_units
from posting_cli.bench.workload import (
    leg,
    open_unlimited_accounts,
    posting_id,
    request_body,
    sqs_record,
    ten_leg_body,
    two_leg_body,
)


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


def demo_bodies(counter: int = 123) -> dict[str, str]:
    """One request of each posted shape of the demo's traffic (posting_cli.demo.Traffic), with its ids."""

    def body(label: str, legs: list[dict[str, Any]]) -> str:
        text = json.loads(request_body(f"demo-{label}-{counter:06d}", legs))
        text["description"] = label.replace("-", " ")
        text["metadata"] = {"channel": "batch"}
        return json.dumps(text)

    fx_usd = {"account_id": "fx-USD", "side": "debit", "amount": 8_640, "currency": "USD"}
    customer_usd = {"account_id": "cust-0100", "side": "credit", "amount": 8_640, "currency": "USD"}
    return {
        "card payment (2-leg)": body(
            "card-payment", [leg("cust-0041", "debit", 4_210), leg("settlement-EUR", "credit", 4_210)]
        ),
        "payout (3-leg)": body(
            "payout",
            [
                leg("settlement-EUR", "debit", 12_300),
                leg("merchant-007", "credit", 12_177),
                leg("fees-EUR", "credit", 123),
            ],
        ),
        "transfer (2-leg)": body("transfer", [leg("cust-0041", "debit", 15_000), leg("cust-0042", "credit", 15_000)]),
        "FX (4-leg, 2 currencies)": body(
            "fx", [leg("cust-0041", "debit", 8_000), leg("fx-EUR", "credit", 8_000), fx_usd, customer_usd]
        ),
    }


def realistic_four_leg_body(accounts: Sequence[str]) -> str:
    """A card settlement as a bank would send it: uuid ids, a full description, five metadata keys."""
    legs = [
        leg(accounts[0], "debit", 10_000),
        leg(accounts[1], "credit", 9_800),
        leg(accounts[2], "credit", 150),
        leg(accounts[3], "credit", 50),
    ]
    body = json.loads(request_body(f"pay-{uuid.uuid4()}", legs))
    body["description"] = "Card payment 4929 **** **** 1234 at ACME GROCERIES LTD, LONDON GB, terminal 88123401"
    body["metadata"] = {
        "channel": "card",
        "merchant_id": "MID-0004567812",
        "terminal_id": "T-88123401",
        "authorization_code": "A1B2C3",
        "acquirer_reference": "74000012345678901234567",
    }
    return json.dumps(body)


def table_items(client: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every item of a (small) table by its key."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            partition, sort = KEY_NAMES
            items[(item[partition]["S"], item[sort]["S"])] = item
    return items


def measure_stored_sizes(ledger: Any, client: Any, table: str) -> dict[str, Any]:
    """Post 2-, 4- and 10-leg requests for real and size every item each one wrote, by DynamoDB's rules.

    Items are found by comparing the table before and after each posting, so the sizes follow
    whatever the ledger's item layout is: the decision item (its posting key), entries, account items.
    """
    accounts = [f"acc-size-{n:04d}" for n in range(10)]
    realistic = [f"acc-{uuid.uuid4()}" for _ in range(4)]
    demo = demo_bodies()
    demo_accounts = sorted({leg["account_id"] for body in demo.values() for leg in json.loads(body)["legs"]})
    open_unlimited_accounts(ledger, [*accounts, *realistic])
    open_unlimited_accounts(ledger, [a for a in demo_accounts if not a.endswith("USD") and a != "cust-0100"])
    open_unlimited_accounts(ledger, ["fx-USD", "cust-0100"], currency="USD")
    sizes: dict[str, Any] = {}
    for case, body in (
        ("2-leg", two_leg_body(posting_id(), accounts[0], accounts[1])),
        ("4-leg realistic", realistic_four_leg_body(realistic)),
        ("10-leg", ten_leg_body(posting_id(), accounts)),
        *demo.items(),
    ):
        before = table_items(client, table)
        item = post_item(validate_record(sqs_record(body)), ledger)
        assert item.outcome is not None and item.posting_id is not None, item.failure
        written = {key: value for key, value in table_items(client, table).items() if before.get(key) != value}
        decision_key = posting_key(item.posting_id)
        decision_pk_sk = tuple(decision_key[name]["S"] for name in KEY_NAMES)
        decision = item_size(written.pop(decision_pk_sk))
        entry_items = [item_size(v) for (_, sk), v in sorted(written.items()) if is_line(sk)]
        account_items = [item_size(v) for (_, sk), v in sorted(written.items()) if not is_line(sk)]
        event = result_event(item, item.outcome)
        detail = json.dumps(event.detail, separators=(",", ":"))
        # PutEvents bills an entry by Source + DetailType + Detail (+ Resources, Time: not set here).
        event_bytes = len(EVENT_SOURCE) + len(event.detail_type) + len(detail.encode())
        # What CloudWatch Logs (the audit rule) and the archive keep: the whole event with its envelope.
        envelope = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": event.detail_type,
            "source": EVENT_SOURCE,
            "account": "123456789012",
            "time": "2026-11-27T10:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": event.detail,
        }
        write_items = [decision, *account_items, *entry_items]
        sizes[case] = {
            "message_bytes": len(body.encode()),
            "posting_item_bytes": decision,
            "posting_item_over_1kb": decision > 1024,
            "account_item_bytes": account_items,
            "entry_item_bytes": entry_items,
            "transaction_items": len(write_items),
            "transaction_write_units": sum(write_units(size, transactional=True) for size in write_items),
            "read_item_bytes": account_items,
            "read_units": sum(read_units(size, consistent=True) for size in account_items),
            "event_bytes": event_bytes,
            "event_envelope_bytes": len(json.dumps(envelope, separators=(",", ":")).encode()),
            "stored_item_bytes": [decision, *entry_items],
        }
    return sizes
