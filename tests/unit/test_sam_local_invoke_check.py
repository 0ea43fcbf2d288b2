"""The CI job's check of `sam local invoke` output: it refuses what SAM's exit code lets through."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posting_cli.local.template import Template
from posting_cli.sam_local_invoke import (
    ENDPOINT_VARIABLES,
    SAMPLE_EVENTS,
    Engines,
    check_response,
    env_vars,
    last_json_object,
    with_endpoint_variables,
)

ROOT = Path(__file__).resolve().parents[2]


def event(name: str):
    return json.loads((ROOT / "events" / name).read_text())


def test_every_function_is_invoked_and_every_sample_event_is_used(template: Template):
    assert set(SAMPLE_EVENTS) == set(template.resources_of_type("AWS::Serverless::Function"))
    samples = {path.name for path in (ROOT / "events").glob("*.json")} - {"accounts.json"}
    assert {name for names in SAMPLE_EVENTS.values() for name in names} == samples


def test_every_env_var_override_is_declared_so_sam_applies_it(template: Template):
    """SAM ignores --env-vars entries a function does not declare (aws-sam-cli issue 6145)."""
    local = with_endpoint_variables(template.body)
    for function, overrides in env_vars(Engines(), "http://moto:5000/123456789012/dlq").items():
        declared = set(template.function_setting(function, "Environment")["Variables"])
        declared |= set(local["Resources"][function]["Properties"]["Environment"]["Variables"])
        assert set(overrides) <= declared, function
        assert set(ENDPOINT_VARIABLES) <= set(overrides)
    # and template.yaml itself stays free of them: deployed functions use the real endpoints
    assert all(
        name not in template.function_setting(function, "Environment")["Variables"]
        for function in SAMPLE_EVENTS
        for name in ENDPOINT_VARIABLES
    )


def test_the_response_is_found_after_logs_and_in_pretty_printed_form():
    assert last_json_object('START\n{"level": "INFO"}\nEND\n{"batchItemFailures": []}\n') == {"batchItemFailures": []}
    assert last_json_object('log line\n{\n  "items": [\n    {"message_id": "m"}\n  ]\n}\n') == {
        "items": [{"message_id": "m"}]
    }
    assert last_json_object("nothing here") is None


@pytest.mark.parametrize(
    ("function", "printed", "problem"),
    [
        ("EmitFunction", "", "no JSON response"),
        ("EmitFunction", "Function 'EmitFunction' timed out after 20 seconds\n", "no JSON response"),
        (
            "ValidateFunction",
            '{"errorMessage": "No module named posting", "errorType": "Runtime.ImportModuleError"}',
            "the function failed: Runtime.ImportModuleError",
        ),
        ("EmitFunction", '{"batchItemFailures": [{"itemIdentifier": "m1"}]}', "expected {'batchItemFailures': []}"),
        ("ValidateFunction", '{"items": []}', "expected one per record"),
        ("ValidateFunction", '{"batchItemFailures": []}', "expected {'items': [...]}"),
    ],
)
def test_failures_sam_exits_zero_on_are_reported(function, printed, problem):
    sample = event(SAMPLE_EVENTS[function][0])
    problems = check_response(function, sample, printed)
    assert problems and problem in problems[0]


def test_an_undecided_posting_means_the_container_could_not_reach_dynamodb():
    sample = event("post.json")
    items = [
        {"message_id": item["message_id"], "failure": {"error": "TransientPostingError", "message": "connect timeout"}}
        for item in sample["items"]
    ]
    problems = check_response("PostFunction", sample, json.dumps({"items": items}))
    assert len(problems) == 3 and "is DynamoDB Local reachable from the container?" in problems[0]


def test_posting_outcomes_must_be_the_samples_own():
    sample = event("post.json")
    items = [
        {"message_id": item["message_id"], "outcome": {"status": "REJECTED", "reason": "ACCOUNT_NOT_FOUND"}}
        for item in sample["items"]
    ]
    [problem] = check_response("PostFunction", sample, json.dumps({"items": items}))
    assert "expected POSTED, DUPLICATE, REJECTED" in problem
