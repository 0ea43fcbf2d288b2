"""DynamoDB attribute values to and from plain Python values, for the types the ledger stores.

S (str), N (int; an exact Decimal for a number that is not an integer), B (bytes), BOOL, NULL, M (dict)
and L (list). It writes what boto3's TypeSerializer writes and reads what its TypeDeserializer reads
(tests/unit/test_attribute_values.py checks both), except that integers read back as int and binary
as bytes. It exists so that the functions need no boto3 (its import, with s3transfer's, was about a
third of the post function's cold start); the clients come from botocore alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

# DynamoDB's number range and precision, as boto3 defines it: a number that does not fit raises
# (Inexact, Rounded...) rather than being rounded, so an amount is stored exactly or not at all.
DYNAMODB_CONTEXT = Context(Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow])
MAX_DIGITS = 38
_INTEGER = re.compile(r"-?[0-9]+")


def to_attribute_value(value: Any) -> dict[str, Any]:  # noqa: PLR0911 - one return per type, in test order
    """The attribute value for `value` (what TypeSerializer().serialize returns for it).

    Raises TypeError for a type the ledger does not store (float, set...) and an ArithmeticError for
    a number DynamoDB cannot hold exactly (more than 38 digits).
    """
    # bool before int: True is an int too.
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        text = str(value)
        if len(text.lstrip("-")) > MAX_DIGITS:
            raise Rounded(f"{MAX_DIGITS} digits at most in a DynamoDB number, not {len(text.lstrip('-'))}")
        return {"N": text}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError("Infinity and NaN not supported")
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    if isinstance(value, bytes | bytearray):
        return {"B": value}
    if isinstance(value, Mapping):
        return {"M": {key: to_attribute_value(element) for key, element in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute_value(element) for element in value]}
    raise TypeError(f"no DynamoDB attribute value for {type(value).__name__} in the ledger")


def from_attribute_value(attribute: Mapping[str, Any]) -> Any:  # noqa: PLR0911 - one return per type
    """The value an attribute value holds: None, bool, int or Decimal, str, bytes, dict or list."""
    ((kind, held),) = attribute.items()
    if kind == "S":
        return held
    if kind == "N":
        return int(held) if _INTEGER.fullmatch(held) else DYNAMODB_CONTEXT.create_decimal(held)
    if kind == "M":
        return {key: from_attribute_value(element) for key, element in held.items()}
    if kind == "L":
        return [from_attribute_value(element) for element in held]
    if kind == "BOOL":
        return held
    if kind == "NULL":
        return None
    if kind == "B":
        return bytes(held)
    raise TypeError(f"the ledger stores no {kind} attribute")
