"""The decision item's layout: every decision survives the round trip through DynamoDB attributes."""

from __future__ import annotations

import hashlib
import json
import zlib

from hypothesis import given
from hypothesis import strategies as st

from posting.adapters.decision_record import CONTENT, decision_fields, decision_of
from posting.adapters.ledger_keys import from_attributes as _from_attributes
from posting.adapters.ledger_keys import to_attributes as _to_attributes
from posting.domain.outcomes import BalanceAfter, Decision, Reason, Status

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
money = st.integers(min_value=-(10**15), max_value=10**15)
legs = st.lists(
    st.fixed_dictionaries(
        {"account_id": ids, "side": st.sampled_from(["debit", "credit"]), "amount": money, "currency": st.just("EUR")}
    ),
    max_size=4,
)
balances = st.builds(
    BalanceAfter,
    account_id=ids,
    currency=st.sampled_from(["EUR", "USD", "JPY"]),
    balance=money,
    version=st.integers(min_value=0, max_value=10**9),
    pending_debits=st.integers(min_value=0, max_value=10**12),
    pending_credits=st.integers(min_value=0, max_value=10**12),
)
hashes = st.one_of(st.binary(min_size=32, max_size=32).map(bytes.hex), st.text(min_size=1, max_size=70))
decisions = st.builds(
    Decision,
    posting_id=ids,
    status=st.sampled_from([Status.POSTED, Status.REJECTED]),
    reason=st.none() | st.sampled_from(list(Reason)),
    detail=st.none() | st.text(max_size=200),
    request_hash=hashes,
    balances=st.lists(balances, max_size=4).map(tuple),
    decided_at=st.just("2026-12-02T05:00:00.000Z"),
    message_id=st.none() | ids,
    request=st.none() | st.fixed_dictionaries({"posting_id": ids, "legs": legs, "metadata": st.dictionaries(ids, ids)}),
    kind=st.none() | st.sampled_from(["hold", "capture", "void", "expiry", "reversal"]),
    hold_id=st.none() | ids,
    posted_legs=st.none() | legs,
    pending_legs=st.none() | legs,
    hold_state=st.none() | st.sampled_from(["open", "captured", "voided", "expired"]),
    reversed=st.none() | st.dictionaries(ids, st.integers(min_value=0, max_value=10**12), max_size=3),
    version=st.none() | st.integers(min_value=1, max_value=1000),
)


@given(decisions)
def test_every_decision_reads_back_as_itself(decision: Decision) -> None:
    assert decision_of(_from_attributes(_to_attributes(decision_fields(decision)))) == decision


@given(decisions)
def test_what_is_only_read_whole_is_one_compressed_attribute(decision: Decision) -> None:
    fields = decision_fields(decision)
    assert not {"request", "balances", "posted_legs", "pending_legs", "detail"} & set(fields)
    if CONTENT in fields:
        content = json.loads(zlib.decompress(fields[CONTENT]))
        assert set(content) <= {"request", "balances", "posted_legs", "pending_legs", "detail"}


def test_a_sha256_hash_is_stored_as_its_32_bytes() -> None:
    digest = hashlib.sha256(b"request").hexdigest()
    decision = Decision(posting_id="p", status=Status.POSTED, request_hash=digest, decided_at="2026-12-02T05:00:00Z")
    assert decision_fields(decision)["request_hash"] == bytes.fromhex(digest)
    upper = Decision(posting_id="p", status=Status.POSTED, request_hash=digest.upper(), decided_at="2026-12-02Z")
    assert decision_fields(upper)["request_hash"] == digest.upper()  # not what hex() gives back: kept as text


@given(decisions)
def test_items_written_before_this_layout_read_the_same(decision: Decision) -> None:
    # The layout before: every field its own attribute, the request a map, the hash hex text.
    old = _to_attributes({"entity": "posting", **decision.model_dump(mode="json", exclude_none=True)})
    assert decision_of(_from_attributes(old)) == decision
