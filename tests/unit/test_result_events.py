"""The result events are a published contract: their JSON is pinned, and it matches the published schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from posting.domain.events import RESULT_EVENTS, PostingDeadLettered, PostingPosted, PostingRejected
from posting.domain.outcomes import BalanceAfter, Decision, Outcome, Reason, Status
from posting.steps.emit import dead_letter_event, result_event
from posting.steps.items import Batch, BatchItem, Failure
from posting_cli.local.template import Resolver, Template
from posting_cli.schema import (
    REGISTRY_APPLICATION,
    REGISTRY_OUTPUT,
    REGISTRY_SCHEMA_TYPE,
    event_schema,
    event_schema_file,
    registry_schema_name,
    registry_template,
    registry_template_path,
    write_registry_template,
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


def test_the_templates_nested_schema_registry_is_current():
    path = registry_template_path(ROOT / "template.yaml")
    assert path == ROOT / "templates" / "event-schemas.yaml"
    assert path.read_text() == registry_template(), f"{path.name} is stale: run `make schema`"


def test_the_template_publishes_every_result_event_schema_to_its_registry():
    template = Template.load(ROOT / "template.yaml")
    registries = template.nested()[REGISTRY_APPLICATION]
    [registry] = registries.resources_of_type("AWS::EventSchemas::Registry")
    assert registries.properties(registry)["RegistryName"] == {"Ref": "RegistryName"}
    published = {
        props["SchemaName"]: props
        for props in (registries.properties(s) for s in registries.resources_of_type("AWS::EventSchemas::Schema"))
    }
    assert set(published) == {registry_schema_name(model) for model in RESULT_EVENTS}
    for model in RESULT_EVENTS:
        props = published[registry_schema_name(model)]
        assert props["RegistryName"] == {"Fn::GetAtt": [registry, "RegistryName"]}
        assert props["Type"] == REGISTRY_SCHEMA_TYPE == "JSONSchemaDraft4"
        content = json.loads(props["Content"])
        assert content == event_schema(model)
        assert content == json.loads((ROOT / "schema" / event_schema_file(model)).read_text())
    # The stack's output names the registry the nested stack created.
    assert registries.body["Outputs"][REGISTRY_OUTPUT]["Value"] == {"Fn::GetAtt": [registry, "RegistryName"]}
    output = template.body["Outputs"]["EventSchemaRegistryName"]["Value"]
    assert output == {"Fn::GetAtt": [REGISTRY_APPLICATION, f"Outputs.{REGISTRY_OUTPUT}"]}


def test_the_registry_is_named_after_the_results_bus_and_never_takes_a_name_in_use():
    """Not `<stack>-events`: a stack whose own template holds a registry of that name keeps it until the
    end of the update that nests the registry, and CloudFormation creates the nested stack's registry
    first (docs/design/template.md)."""
    template = Template.load(ROOT / "template.yaml", stack_name="posting-pipeline-dev")
    registries = template.nested()[REGISTRY_APPLICATION]
    bus = Resolver(template).resolve(template.properties("PostingEventBus")["Name"])
    assert registries.parameters["RegistryName"] == bus == "posting-pipeline-dev-results"
    assert registries.parameters["RegistryName"] != "posting-pipeline-dev-events"


def test_schema_writes_the_registry_template_the_templates_application_names(tmp_path: Path):
    parent = tmp_path / "stack.yaml"
    parent.write_text(
        "Resources:\n"
        f"  {REGISTRY_APPLICATION}:\n"
        "    Type: AWS::Serverless::Application\n"
        "    Properties:\n"
        "      Location: nested/registry.yaml\n"
    )
    assert write_registry_template(parent) == (tmp_path / "nested" / "registry.yaml", True)
    assert (tmp_path / "nested" / "registry.yaml").read_text() == registry_template()
    assert write_registry_template(parent) == (tmp_path / "nested" / "registry.yaml", False)
    parent.write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
    with pytest.raises(ValueError, match=f"no {REGISTRY_APPLICATION} resource"):
        write_registry_template(parent)
