"""Card numbers and control characters: the pure rules (src/posting/domain/sensitive.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from posting.domain.sensitive import card_number_fields, contains_card_number, contains_control_character, luhn_valid

# Published test PANs (card networks' test numbers): Luhn-valid by construction.
TEST_PANS = ["4111111111111111", "5555555555554444", "378282246310005", "6011111111111117", "4000056655665556"]

digits = st.text(alphabet="0123456789", min_size=12, max_size=18)


def with_check_digit(payload: str) -> str:
    """payload plus the one digit that makes it Luhn-valid."""
    return next(payload + d for d in "0123456789" if luhn_valid(payload + d))


def spell(number: str, separators: list[str]) -> str:
    """number with one separator ('' , ' ' or '-') after each digit but the last."""
    return "".join(d + s for d, s in zip(number, [*separators, ""], strict=False)) + number[len(separators) + 1 :]


separator_lists = st.lists(st.sampled_from(["", " ", "-"]), min_size=18, max_size=18)
context = st.text(alphabet="abcxyz_./:", max_size=8)


def test_published_test_pans_are_found_and_luhn_is_the_real_check():
    assert all(luhn_valid(pan) and contains_card_number(f"card {pan} ok") for pan in TEST_PANS)
    assert not luhn_valid("4111111111111112")
    assert contains_card_number("4111 1111 1111 1111") and contains_card_number("4111-1111-1111-1111")


@given(payload=digits, separators=separator_lists, before=context, after=context)
def test_a_luhn_valid_run_is_found_whatever_its_separators(payload, separators, before, after):
    number = with_check_digit(payload)
    assert contains_card_number(before + spell(number, separators[: len(number) - 1]) + after)


@given(payload=digits, separators=separator_lists, before=context, after=context)
def test_a_luhn_invalid_run_is_not_flagged(payload, separators, before, after):
    valid = with_check_digit(payload)
    invalid = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert not luhn_valid(invalid)
    assert not contains_card_number(before + spell(invalid, separators[: len(invalid) - 1]) + after)


@given(number=st.text(alphabet="0123456789", min_size=1, max_size=12), before=context, after=context)
def test_short_runs_are_not_flagged(number, before, after):
    assert not contains_card_number(before + number + after)


@given(payload=st.text(alphabet="0123456789", min_size=19, max_size=30))
def test_runs_longer_than_a_card_number_are_not_flagged(payload):
    assert not contains_card_number(with_check_digit(payload))


def test_two_separators_in_a_row_end_a_run():
    assert not contains_card_number("4111 1111  1111 1111")  # two runs of 8 digits
    assert not contains_card_number("4111--1111-1111-1111")


def test_fields_holding_a_card_number_are_named_by_their_top_level_field_only():
    request = {
        "posting_id": "pay-1",
        "legs": [{"account_id": "acc-4111111111111111", "amount": 4111111111111}],
        "metadata": {"4111111111111111": "x", "note": "fine"},
    }
    assert card_number_fields(request) == ["legs", "metadata"]  # an integer amount is not text
    assert card_number_fields({"4111111111111111": 1}) == ["body"]


@given(text=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9F)))
def test_control_characters_are_c0_and_c1(text):
    assert contains_control_character(text) == any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
