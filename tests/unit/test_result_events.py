"""The result events are a published contract: their JSON is pinned, and it matches the published schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from posting.domain.events import RESULT_EVENTS, PostingDeadLettered, PostingPosted, PostingRejected
from posting.domain.outcomes import BalanceAfter, Decision, Outcome, Reason, Status
from posting.steps.emit import dead_letter_event, result_event
from posting.steps.items import Batch, BatchItem, Failure
from posting_cli.local.template import Template, _CfnLoader
from posting_cli.schema import (
    REGISTRY_SCHEMA_TYPE,
    event_schema,
    event_schema_file,
    registry_schema_name,
    with_template_block,
)

ROOT = Path(__file__).resolve().parents[2]


def compact(detail: dict) -> str:
    """The Detail string the event bus adapter sends."""
    return json.dumps(detail, separators=(",", ":"))


def test_the_json_of_every_result_event_is_pinned():
    """Byte for byte what consumers got before the details became models: field order included.

    (Extended, never broken, since: each balance also carries posted, pending and available figures.)
    """
    batch = Batch.from_event(json.loads((ROOT / "events/emit.json").read_text()))
    events = [result_event(item, item.outcome) for item in batch.items if item.outcome is not None]
    dead = dead_letter_event(
        BatchItem(
            message_id="m-dead",
            receive_count=5,
            body="{}",
            posting_id="pay-9",
            failure=Failure(error="TransientPostingError", message="DynamoDB: ThrottlingException"),
        )
    )
    pinned = [
        (
            "Posting Posted",
            '{"event_id":"38423bbb-04d9-5e65-a9da-2fc24900afce","posting_id":"pay-2026-000123","status":"POSTED",'
            '"reason":null,"detail":null,"posting_status":"POSTED","balances":[{"account_id":"acc-alice",'
            '"currency":"EUR","balance":8750,"version":2,"posted":8750,"pending_debits":0,'
            '"pending_credits":0,"available":8750},{"account_id":"acc-bob","currency":"EUR","balance":1250,'
            '"version":1,"posted":1250,"pending_debits":0,"pending_credits":0,"available":1250}],"decided_at":"2026-11-27T10:00:01.123Z","message_id":"6f1c0c52-5a8e-4f7e-9d52-0c8c6a1b0001"}',
        ),
        (
            "Posting Posted",
            '{"event_id":"38423bbb-04d9-5e65-a9da-2fc24900afce","posting_id":"pay-2026-000123","status":"DUPLICATE",'
            '"reason":null,"detail":null,"posting_status":"POSTED","balances":[{"account_id":"acc-alice",'
            '"currency":"EUR","balance":8750,"version":2,"posted":8750,"pending_debits":0,'
            '"pending_credits":0,"available":8750},{"account_id":"acc-bob","currency":"EUR","balance":1250,'
            '"version":1,"posted":1250,"pending_debits":0,"pending_credits":0,"available":1250}],"decided_at":"2026-11-27T10:00:01.123Z","message_id":"6f1c0c52-5a8e-4f7e-9d52-0c8c6a1b0002"}',
        ),
        (
            "Posting Rejected",
            '{"event_id":"8a4c9050-f8e1-53bf-a210-de7f4708b825","posting_id":"pay-2026-000124","status":"REJECTED",'
            '"reason":"UNBALANCED","detail":"EUR debits exceed credits by 1","posting_status":"REJECTED",'
            '"balances":[],"decided_at":"2026-11-27T10:00:01.130Z","message_id":"6f1c0c52-5a8e-4f7e-9d52-0c8c6a1b0003"}',
        ),
        (
            "Posting Dead-Lettered",
            '{"event_id":"0e1859fa-fc52-575f-b295-ce64cc45d2ed","posting_id":"pay-9","status":"DEAD_LETTERED",'
            '"reason":"TransientPostingError","detail":"DynamoDB: ThrottlingException","message_id":"m-dead",'
            '"receive_count":5}',
        ),
    ]
    assert [(e.detail_type, compact(e.detail)) for e in [*events, dead]] == pinned


def as_event(detail_type: str, detail: dict) -> dict:
    """The event as EventBridge delivers it to a consumer."""
    return {
        "version": "0",
        "id": "0d079340-135a-c8c6-95c2-41fb8f496c53",
        "detail-type": detail_type,
        "source": "posting.pipeline",
        "account": "123456789012",
        "time": "2026-11-27T10:00:01Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


SCHEMAS = {model.detail_type: event_schema(model) for model in RESULT_EVENTS}


def assert_valid(detail_type: str, detail: dict) -> None:
    jsonschema.Draft4Validator(SCHEMAS[detail_type]).validate(as_event(detail_type, detail))


def test_the_event_schemas_are_valid_draft_4_documents_the_registry_takes():
    for document in SCHEMAS.values():
        jsonschema.Draft4Validator.check_schema(document)
        assert document["$schema"] == "http://json-schema.org/draft-04/schema#"
        assert "$defs" not in json.dumps(document) and '"const"' not in json.dumps(document)


BALANCES = (BalanceAfter(account_id="acc-bob", currency="EUR", balance=1250, version=1),)


@st.composite
def decided_items(draw: st.DrawFn) -> tuple[BatchItem, Outcome]:
    """Every outcome the post step can answer with: Outcome.answering over any recorded decision,
    and the validate step's own rejections of requests without a usable posting_id."""
    if draw(st.booleans()):
        return (
            BatchItem(message_id="m", body="{", posting_id=None),
            Outcome(status=Status.REJECTED, reason=Reason.INVALID_REQUEST, detail="not JSON", decided_at="t"),
        )
    status = draw(st.sampled_from([Status.POSTED, Status.REJECTED]))
    reason = None if status == Status.POSTED else draw(st.sampled_from(list(Reason)))
    decision = Decision(
        posting_id="p",
        status=status,
        reason=reason,
        detail=None if reason is None else "why",
        request_hash="h",
        balances=BALANCES if status == Status.POSTED else (),
        decided_at="2026-11-27T10:00:01.123Z",
    )
    request_hash = draw(st.sampled_from(["h", "other"]))
    outcome = Outcome.answering(decision, request_hash, created=draw(st.booleans()))
    return BatchItem(message_id="m", body="{}", posting_id="p", request_hash=request_hash), outcome


@given(decided_items())
def test_every_result_event_the_emit_step_can_build_matches_its_published_schema(case):
    item, outcome = case
    event = result_event(item, outcome)
    assert_valid(event.detail_type, event.detail)
    if event.detail_type == PostingPosted.detail_type:
        assert outcome.status in {Status.POSTED, Status.DUPLICATE} and event.detail["balances"]
    else:
        assert event.detail_type == PostingRejected.detail_type and event.detail["balances"] == []


@given(st.text(min_size=1), st.text(), st.integers(min_value=1, max_value=1000), st.one_of(st.none(), st.text()))
def test_every_dead_letter_event_matches_its_published_schema(error, message, receive_count, posting_id):
    item = BatchItem(
        message_id="m",
        body="{}",
        posting_id=posting_id,
        receive_count=receive_count,
        failure=Failure(error=error, message=message),
    )
    event = dead_letter_event(item)
    assert event.detail_type == PostingDeadLettered.detail_type
    assert_valid(event.detail_type, event.detail)


def test_the_schemas_refuse_what_the_contract_excludes():
    event = result_event(
        BatchItem(message_id="m", body="{}", posting_id="p"),
        Outcome(status=Status.POSTED, posting_status=Status.POSTED, balances=BALANCES, decided_at="t"),
    )
    for broken in (
        {**event.detail, "status": "REJECTED"},
        {**event.detail, "extra": 1},
        {key: value for key, value in event.detail.items() if key != "event_id"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            assert_valid(event.detail_type, broken)
    with pytest.raises(jsonschema.ValidationError):
        assert_valid("Posting Rejected", {**event.detail, "status": "REJECTED"})  # rejections carry no balances


# -- the template publishes exactly these schemas -------------------------------------------------------


def test_the_templates_schema_registry_block_is_current():
    text = (ROOT / "template.yaml").read_text()
    assert with_template_block(text) == text, "template.yaml's event schemas are stale: run `make schema`"


def test_the_template_publishes_every_result_event_schema_to_its_registry():
    template = Template.load(ROOT / "template.yaml")
    [registry] = template.resources_of_type("AWS::EventSchemas::Registry")
    published = {
        props["SchemaName"]: props
        for props in (template.properties(s) for s in template.resources_of_type("AWS::EventSchemas::Schema"))
    }
    assert set(published) == {registry_schema_name(model) for model in RESULT_EVENTS}
    for model in RESULT_EVENTS:
        props = published[registry_schema_name(model)]
        assert props["RegistryName"] == {"Fn::GetAtt": [registry, "RegistryName"]}
        assert props["Type"] == REGISTRY_SCHEMA_TYPE == "JSONSchemaDraft4"
        content = json.loads(props["Content"])
        assert content == event_schema(model)
        assert content == json.loads((ROOT / "schema" / event_schema_file(model)).read_text())


def test_the_generated_block_goes_before_outputs_and_is_replaced_in_place():
    bare = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n\nOutputs:\n  Url:\n    Value: !Ref Queue\n"
    once = with_template_block(bare)
    assert once.index("EventSchemaRegistry:") < once.index("Outputs:")
    assert with_template_block(once) == once
    assert "EventSchemaRegistry" in yaml.load(once, Loader=_CfnLoader)["Resources"]  # noqa: S506 - SafeLoader subclass
