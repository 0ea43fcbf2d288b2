"""The posting request contract: what is accepted, what is refused, and how content is compared."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from posting.domain.model import MAX_LEGS, differing_fields, parse_posting_request
from tests.builders import leg, request

# The canonical form (version 1) of tests.builders.request(): see test_the_content_hash_is_pinned.
PINNED_HASH = "33aacde461ac13fc1a4bf69f9daec22e8968fd8b55b1e061591c38b7ce89398a"


def parses(body: dict) -> bool:
    try:
        parse_posting_request(json.dumps(body))
    except ValidationError:
        return False
    return True


def test_the_documented_example_parses():
    parsed = parse_posting_request(json.dumps(request()))
    assert parsed.posting_id == "pay-1"
    assert parsed.legs[0].amount == 1250
    assert isinstance(parsed.legs[0].amount, int)


@pytest.mark.parametrize("amount", [12.5, 1250.0, "1250", "12.50", True, 0, -5, 10**15 + 1, None])
def test_amount_must_be_a_positive_integer_of_minor_units(amount):
    assert not parses(request("p", leg("a", "debit", amount), leg("b", "credit", 1250)))


@pytest.mark.parametrize("currency", ["eur", "EURO", "XXX", "ABC", "", 978])
def test_currency_must_be_an_iso_4217_code(currency):
    assert not parses(request("p", leg("a", "debit", 1, currency), leg("b", "credit", 1, currency)))


@pytest.mark.parametrize("posting_id", ["", " pay", "pay 1", "-pay", "x" * 129, "pay/1", 123, None])
def test_posting_id_is_bounded_in_length_and_charset(posting_id):
    assert not parses(request(posting_id))


def test_posting_id_limits_accepted():
    assert parses(request("x" * 128))
    assert parses(request("pay-2026:000123_A.b"))


def test_unknown_fields_are_rejected_everywhere():
    assert not parses(request(amount_total=1250))
    body = request()
    body["legs"][0]["memo"] = "hi"
    assert not parses(body)


def test_leg_count_bounds_keep_a_posting_inside_one_transaction():
    assert not parses(request("p", leg("a", "debit", 1)))
    many = [leg(f"a{i}", "debit", 1) for i in range(MAX_LEGS - 1)] + [leg("b", "credit", MAX_LEGS - 1)]
    assert parses(request("p", *many))
    too_many = [leg(f"a{i}", "debit", 1) for i in range(MAX_LEGS)] + [leg("b", "credit", MAX_LEGS)]
    assert not parses(request("p", *too_many))


def test_effective_at_needs_a_time_zone():
    assert not parses(request(effective_at="2026-11-27T10:00:00"))
    assert not parses(request(effective_at="yesterday"))


def test_metadata_is_bounded():
    assert not parses(request(metadata={f"k{i}": "v" for i in range(17)}))
    assert not parses(request(metadata={"k": "v" * 257}))
    assert not parses(request(metadata={"k": 1}))
    assert parses(request(metadata={f"k{i}": "v" * 100 for i in range(16)}))


def test_content_hash_ignores_key_order_and_spacing_but_not_content():
    body = request()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    assert parse_posting_request(json.dumps(body)).content_hash() == parse_posting_request(reordered).content_hash()
    changed = request("pay-1", leg("acc-alice", "debit", 1251), leg("acc-bob", "credit", 1251))
    assert (
        parse_posting_request(json.dumps(changed)).content_hash()
        != parse_posting_request(json.dumps(body)).content_hash()
    )


def test_equivalent_timestamps_are_the_same_content():
    a = parse_posting_request(json.dumps(request(effective_at="2026-11-27T10:00:00Z")))
    b = parse_posting_request(json.dumps(request(effective_at="2026-11-27T10:00:00+00:00")))
    assert a.content_hash() == b.content_hash()


def test_the_same_instant_in_another_time_zone_is_the_same_content():
    utc = parse_posting_request(json.dumps(request(effective_at="2026-11-27T10:00:00Z")))
    paris = parse_posting_request(json.dumps(request(effective_at="2026-11-27T11:00:00+01:00")))
    later = parse_posting_request(json.dumps(request(effective_at="2026-11-27T10:00:01Z")))
    assert utc.content_hash() == paris.content_hash()
    assert utc.content_hash() != later.content_hash()


def test_the_content_hash_is_pinned():
    # Stored decisions keep this hash forever: a change here turns every retry across a deploy into
    # an IDEMPOTENCY_CONFLICT. Change the canonical form only with a migration.
    assert parse_posting_request(json.dumps(request())).content_hash() == PINNED_HASH


def test_a_key_named_twice_is_refused_at_any_depth():
    body = json.dumps(request())
    assert not parses_text(body[:-1] + ', "posting_id": "other"}')
    assert not parses_text(body.replace('"side": "debit"', '"side": "debit", "side": "credit"', 1))
    assert not parses_text(body.replace('"merchant": "m-42"', '"merchant": "m-42", "merchant": "m-43"'))
    assert parses_text(body)


def parses_text(body: str) -> bool:
    try:
        parse_posting_request(body)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("instant", "accepted"),
    [
        ("1900-01-01T00:00:00Z", True),
        ("1899-12-31T23:59:59.999999Z", False),
        ("1900-01-01T00:30:00+01:00", False),  # 1899 in UTC
        ("9000-12-31T23:59:59.999999Z", True),
        ("9000-12-31T23:00:00-01:00", False),  # 9001 in UTC
        ("0001-01-01T00:00:00+01:00", False),  # overflowed before: the live bug
        ("9999-12-31T23:59:59-01:00", False),
    ],
)
def test_instants_are_bounded_to_what_every_conversion_can_represent(instant, accepted):
    assert parses(request(effective_at=instant)) is accepted


def test_effective_at_may_be_left_out_and_the_hash_covers_the_request_as_sent():
    without = request()
    del without["effective_at"]
    parsed = parse_posting_request(json.dumps(without))
    assert parsed.effective_at is None
    assert "effective_at" not in parsed.canonical_content()
    assert parsed.content_hash() == parse_posting_request(json.dumps(without)).content_hash()
    assert parsed.content_hash() != parse_posting_request(json.dumps(request())).content_hash()


def test_differing_fields_names_paths_never_values():
    recorded = parse_posting_request(json.dumps(request())).canonical_content()
    changed = request("pay-1", leg("acc-alice", "debit", 99), leg("acc-bob", "credit", 99), metadata={"m": "x"})
    del changed["effective_at"]
    fields = differing_fields(recorded, parse_posting_request(json.dumps(changed)).canonical_content())
    assert fields == ["effective_at", "legs[0].amount", "legs[1].amount", "metadata.m", "metadata.merchant"]
    three_legs = request("pay-1", leg("a", "debit", 2), leg("b", "credit", 1), leg("c", "credit", 1))
    assert "legs[2]" in differing_fields(recorded, parse_posting_request(json.dumps(three_legs)).canonical_content())
