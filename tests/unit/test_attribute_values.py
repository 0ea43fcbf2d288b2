"""The ledger's own DynamoDB attribute-value converter agrees with boto3's TypeSerializer/TypeDeserializer.

For every type the ledger stores (S, N as int, B, BOOL, NULL, M, L) and for exact Decimals, both ways;
numbers come back as int when they are integers, so money never passes through a float or a rounding.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from posting.adapters.attribute_values import from_attribute_value, to_attribute_value

# DynamoDB numbers: at most 38 significant digits, exponents from -130 to +125.
money = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
exact_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: len(d.as_tuple().digits) <= 38 and -120 <= d.adjusted() <= 120
)
scalars = st.none() | st.booleans() | money | st.text() | st.binary()
stored_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)

boto3_serialize = TypeSerializer().serialize
boto3_deserialize = TypeDeserializer().deserialize


def _unwrapped(value: Any) -> Any:
    """boto3's reading with its Binary wrapper removed (the ledger reads bytes)."""
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, list):
        return [_unwrapped(element) for element in value]
    if isinstance(value, dict):
        return {key: _unwrapped(element) for key, element in value.items()}
    return value


def _same_types(left: Any, right: Any) -> bool:
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(map(_same_types, left, right))
    if isinstance(left, dict):
        return (
            isinstance(right, dict)
            and left.keys() == right.keys()
            and all(_same_types(left[k], right[k]) for k in left)
        )
    return type(left) is type(right)


@given(stored_values)
def test_writes_what_boto3_writes(value: Any) -> None:
    assert to_attribute_value(value) == boto3_serialize(value)


@given(stored_values)
def test_reads_what_boto3_reads_with_integers_as_int(value: Any) -> None:
    attribute = boto3_serialize(value)
    read = from_attribute_value(attribute)
    assert read == _unwrapped(boto3_deserialize(attribute))
    # Round trip: the value itself, with the same types (int stays int, bytes stay bytes).
    assert read == value
    assert _same_types(read, value)


@given(exact_decimals)
def test_decimals_are_exact_both_ways(number: Decimal) -> None:
    attribute = to_attribute_value(number)
    assert attribute == boto3_serialize(number)
    read = from_attribute_value(attribute)
    assert read == boto3_deserialize(attribute) == number
    # Written without a point or an exponent, a number reads as int; otherwise as the exact Decimal.
    assert type(read) is (int if re.fullmatch(r"-?[0-9]+", attribute["N"]) else Decimal)


@given(money)
def test_integers_read_back_as_int(amount: int) -> None:
    read = from_attribute_value({"N": str(amount)})
    assert type(read) is int
    assert read == amount


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        ({"N": "1250"}, 1250),
        ({"N": "-0"}, 0),
        ({"N": "1E+3"}, Decimal("1E+3")),
        ({"N": "12.50"}, Decimal("12.50")),
        ({"N": "0.1"}, Decimal("0.1")),
        ({"N": "99999999999999999999999999999999999999"}, 10**38 - 1),
        ({"S": ""}, ""),
        ({"B": b"\x00\xff"}, b"\x00\xff"),
        ({"NULL": True}, None),
        ({"BOOL": False}, False),
        ({"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}}, {"a": [1, "x"]}),
    ],
)
def test_reads_each_type(attribute: dict[str, Any], expected: Any) -> None:
    read = from_attribute_value(attribute)
    assert read == expected
    assert type(read) is type(expected)


@pytest.mark.parametrize(
    "value",
    [
        1.5,  # floats are never money: refused, as boto3 does
        float("nan"),
        Decimal("NaN"),
        Decimal("Infinity"),
        10**38,  # 39 digits: more than DynamoDB holds, refused rather than rounded
        Decimal("1." + "1" * 38),
        object(),
    ],
)
def test_refuses_what_it_cannot_write_exactly(value: Any) -> None:
    with pytest.raises((TypeError, ArithmeticError)):
        boto3_serialize(value)
    with pytest.raises((TypeError, ArithmeticError)):
        to_attribute_value(value)


def test_refuses_sets_which_the_ledger_never_stores() -> None:
    with pytest.raises(TypeError, match="set"):
        to_attribute_value({"a", "b"})
    with pytest.raises(TypeError, match="SS"):
        from_attribute_value({"SS": ["a"]})
