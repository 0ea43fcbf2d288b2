"""Validation is total: whatever a record holds, exactly one item comes out and nothing raises.

Drives the Validate handler itself (what Lambda runs) with arbitrary JSON, arbitrary text and
mutations of valid requests: extreme instants and offsets, huge and negative numbers, duplicate keys,
deep nesting, control characters and lone surrogates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posting.domain.outcomes import Reason, Status
from posting.handlers.validate import handler
from posting.steps.items import Batch
from tests.builders import request, sqs_record

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
offsets = st.sampled_from(["Z", "+00:00", "+01:00", "-23:59", "+23:59", "+14:00", "-12:00"])
extreme_instants = st.builds(
    lambda year, offset: f"{year:04d}-01-01T00:00:00{offset}" if year < 10000 else f"{year}-01-01T00:00:00{offset}",
    st.sampled_from([1, 2, 1899, 1900, 2026, 9000, 9001, 9999, 10000]),
    offsets,
)
nasty_text = st.sampled_from(
    ["4111 1111 1111 1111", "\x00", "\x1f", "\u0007", "\ud800", "\udfff", "\ufffe", "\uffff", "\u202e", "é" * 300]
)
huge_numbers = st.sampled_from([10**15, 10**15 + 1, -(10**15), 2**63, -(2**63), 10**400, 1e308, -0.0, 0])


@st.composite
def mutated_requests(draw: st.DrawFn) -> str:
    body: dict[str, Any] = request(f"p-{draw(st.integers(0, 5))}")
    mutation = draw(st.sampled_from(["instant", "amount", "field", "leg", "nest", "text", "duplicate", "drop"]))
    if mutation == "instant":
        body["effective_at"] = draw(extreme_instants | st.text(max_size=30))
    elif mutation == "amount":
        body["legs"][draw(st.integers(0, 1))]["amount"] = draw(huge_numbers | json_values)
    elif mutation == "field":
        body[draw(st.sampled_from(["posting_id", "legs", "metadata", "description", "extra"]))] = draw(json_values)
    elif mutation == "leg":
        body["legs"][0][draw(st.sampled_from(["account_id", "side", "currency", "memo"]))] = draw(json_values)
    elif mutation == "nest":
        depth = draw(st.integers(1, 5000))
        body["metadata"] = json.loads("[" * min(depth, 900) + "]" * min(depth, 900)) if depth < 900 else None
        if depth >= 900:
            return json.dumps(body)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    elif mutation == "text":
        target = draw(st.sampled_from(["description", "posting_id"]))
        body[target] = draw(st.text(max_size=5)) + draw(nasty_text) + draw(st.text(max_size=5))
    elif mutation == "duplicate":
        text = json.dumps(body)
        return text[:-1] + ', "posting_id": ' + json.dumps(draw(st.text(max_size=10))) + "}"
    elif mutation == "drop":
        body.pop(draw(st.sampled_from(sorted(body))))
    return json.dumps(body, ensure_ascii=draw(st.booleans()))


bodies = st.one_of(
    st.text(),
    json_values.map(lambda value: json.dumps(value, ensure_ascii=False)),
    mutated_requests(),
)


class Context:
    function_name = "validate"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:validate"
    aws_request_id = "property-test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 10_000


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(bodies, min_size=1, max_size=10))
def test_every_record_comes_out_as_exactly_one_item_and_nothing_raises(batch_bodies: list[str]) -> None:
    records = [sqs_record(body, message_id=f"m{n}") for n, body in enumerate(batch_bodies)]

    output = handler(records, Context())

    items = Batch.from_event(output).items
    assert [item.message_id for item in items] == [record["messageId"] for record in records]
    for item in items:
        if item.outcome is None:  # to be posted: it parsed, balanced and hashed
            assert item.posting_id and item.request_hash and len(item.request_hash) == 64
        else:  # refused by content: a stable reason, no hash, nothing to record
            assert item.outcome.status == Status.REJECTED
            assert item.outcome.reason in {Reason.INVALID_REQUEST, Reason.UNBALANCED, Reason.SENSITIVE_DATA}
            assert item.outcome.detail and item.request_hash is None
            item.outcome.detail.encode("utf-8")  # no lone surrogate leaks into events or logs
    json.dumps(output, ensure_ascii=False).encode("utf-8", "surrogatepass")


def representable_in_utc(instant: str) -> bool:
    """The rule, spelled out independently: a valid ISO instant whose UTC year is 1900..9000."""
    try:
        moment = datetime.fromisoformat(instant.replace("Z", "+00:00"))
        return 1900 <= moment.astimezone(UTC).year <= 9000
    except (ValueError, OverflowError):
        return False


@settings(max_examples=200, deadline=None)
@given(extreme_instants)
def test_an_instant_is_accepted_exactly_when_it_is_between_1900_and_9000_in_utc(instant: str) -> None:
    (item,) = Batch.from_event(handler([sqs_record(request("p", effective_at=instant))], Context())).items
    if representable_in_utc(instant):
        assert item.outcome is None
    else:
        assert item.outcome is not None and item.outcome.reason == Reason.INVALID_REQUEST
        assert "effective_at" in (item.outcome.detail or "")
