"""What a reviewer of a payments deployment checks in template.yaml, read from the template itself.

Resources are found by following the template's own references (the pipe's source is the queue, the
queue's redrive target is the DLQ, the pipe's target is the workflow...), so these tests repeat no
names or settings that the template already states. The only literals are outside facts (AWS limits,
the log-delivery actions Step Functions documents).
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from posting.handlers import config as handler_config
from posting.steps.emit import EVENT_SOURCE
from posting_cli.local.template import Resolver, Template
from posting_cli.target import REQUIRED_OUTPUTS

ROOT = Path(__file__).resolve().parents[2]

# Outside facts -----------------------------------------------------------------------------------

STEP_FUNCTIONS_PAYLOAD_LIMIT = 256 * 1024  # bytes, per state input/output and execution input
SQS_MAX_RETENTION_SECONDS = 14 * 24 * 3600
SQS_DEFAULT_RETENTION_SECONDS = 4 * 24 * 3600
# JSON escaping at most doubles a message body: SQS only admits #x9 #xA #xD and #x20 upwards, so the
# worst characters are `"`, `\\`, tab, LF and CR, each escaped to two.
JSON_ESCAPING_WORST_CASE = 2
# Step Functions log delivery: the actions its docs require with Resource "*" (they take no ARN).
LOG_DELIVERY_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:CreateLogStream",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutLogEvents",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}
# The Lambda Python runtime and architecture this project builds for (docs/operate.md, Makefile, SAM build).
LAMBDA_RUNTIME = "python3.13"
LAMBDA_ARCHITECTURES = ["arm64"]


# Reading the template ----------------------------------------------------------------------------


def ref_of(node: Any) -> str | None:
    """The name in `{"Ref": name}`, else None."""
    return node.get("Ref") if isinstance(node, dict) and set(node) == {"Ref"} else None


def get_att_of(node: Any) -> tuple[str, str] | None:
    """(logical id, attribute) of `{"Fn::GetAtt": [...]}`, else None."""
    if isinstance(node, dict) and set(node) == {"Fn::GetAtt"}:
        value = node["Fn::GetAtt"]
        logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
        return logical_id, attribute
    return None


def the_only(template: Template, resource_type: str) -> str:
    found = list(template.resources_of_type(resource_type))
    assert len(found) == 1, f"expected one {resource_type}, found {found}"
    return found[0]


def parameter(template: Template, node: Any) -> dict[str, Any]:
    """The declaration of the parameter `node` (a Ref) names."""
    name = ref_of(node)
    assert name in template.body["Parameters"], f"{node} is not a Ref to a parameter"
    return template.body["Parameters"][name]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def state_machine_definition(template: Template, logical_id: str) -> tuple[Path, str]:
    path = template.path.parent / template.properties(logical_id)["DefinitionUri"]
    return path, path.read_text()


@pytest.fixture(scope="module")
def pipe(template: Template) -> dict[str, Any]:
    return template.properties(the_only(template, "AWS::Pipes::Pipe"))


@pytest.fixture(scope="module")
def queue_id(pipe: dict[str, Any]) -> str:
    source = get_att_of(pipe["Source"])
    assert source is not None and source[1] == "Arn", "the pipe's source is a queue of this template"
    return source[0]


@pytest.fixture(scope="module")
def dlq_id(template: Template, queue_id: str) -> str:
    target = get_att_of(template.properties(queue_id)["RedrivePolicy"]["deadLetterTargetArn"])
    assert target is not None and target[1] == "Arn"
    return target[0]


@pytest.fixture(scope="module")
def state_machine_id(pipe: dict[str, Any]) -> str:
    target = ref_of(pipe["Target"])  # Ref of a state machine is its ARN
    assert target is not None
    return target


@pytest.fixture(scope="module")
def workflow_timeout(template: Template, state_machine_id: str) -> int:
    _, text = state_machine_definition(template, state_machine_id)
    timeout: int = json.loads(text)["TimeoutSeconds"]
    return timeout


@pytest.fixture(scope="module")
def functions(template: Template) -> dict[str, dict[str, Any]]:
    found = template.resources_of_type("AWS::Serverless::Function")
    assert found
    return found


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement under node: inline documents, SAM `Statement` policies, and JSON
    policy documents written as Fn::Sub strings (their ${...} variables are ARNs, not actions)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement" and isinstance(value, list):
                yield from value
            elif key == "PolicyDocument" and isinstance(value, dict) and set(value) == {"Fn::Sub"}:
                text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
                yield from json.loads(re.sub(r"\$\{[^}]+\}", "arn:substituted", text))["Statement"]
            else:
                yield from statements(value)
    elif isinstance(node, list):
        for value in node:
            yield from statements(value)


def allowed(template: Template, logical_id: str) -> dict[str, list[Any]]:
    """action -> resources that the Allow statements under one resource grant."""
    grants: dict[str, list[Any]] = {}
    for statement in statements(template.properties(logical_id).get("Policies", [])):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            grants.setdefault(action, []).extend(as_list(statement["Resource"]))
    return grants


def role_of(template: Template, logical_id: str) -> str:
    """The logical id of the IAM role a function or state machine runs as (`Role: !GetAtt X.Arn`)."""
    role = get_att_of(template.properties(logical_id).get("Role"))
    assert role is not None and role[1] == "Arn", f"{logical_id} runs as a role of this template"
    assert template.resources[role[0]]["Type"] == "AWS::IAM::Role"
    return role[0]


KEY_ARN = {"Fn::If": ["CreateKey", {"Fn::GetAtt": ["PostingKey", "Arn"]}, {"Ref": "KmsKeyArn"}]}


def sam_policy_templates(template: Template, logical_id: str) -> dict[str, list[dict[str, Any]]]:
    """SAM policy templates (e.g. LambdaInvokePolicy) of one resource, by template name."""
    found: dict[str, list[dict[str, Any]]] = {}
    for policy in template.properties(logical_id).get("Policies", []):
        if isinstance(policy, dict) and "Statement" not in policy:
            ((name, arguments),) = policy.items()
            found.setdefault(name, []).append(arguments)
    return found


# cfn-lint ----------------------------------------------------------------------------------------


def test_cfn_lint_passes(template: Template) -> None:
    from cfnlint.api import lint_file

    for linted in (template, *template.nested().values()):
        matches = lint_file(linted.path)
        assert [str(match) for match in matches] == [], linted.path.name


# Intake: queue, dead-letter queue, pipe ----------------------------------------------------------


def test_queue_redrives_to_the_dlq_after_max_receive_count(template: Template, queue_id: str, dlq_id: str) -> None:
    redrive = template.properties(queue_id)["RedrivePolicy"]
    max_receive_count = parameter(template, redrive["maxReceiveCount"])
    assert ref_of(redrive["maxReceiveCount"]) == "MaxReceiveCount"
    assert max_receive_count["Default"] == 5
    assert max_receive_count["MinValue"] >= 1
    assert template.resources[dlq_id]["Type"] == "AWS::SQS::Queue"
    assert "RedrivePolicy" not in template.properties(dlq_id), "the DLQ is the end of the line"


def test_emit_dead_letters_on_the_same_receive_count_as_the_queue(
    template: Template, functions: dict[str, dict[str, Any]], queue_id: str, dlq_id: str
) -> None:
    # Emit dead-letters an exhausted item itself (with its reason) on the last delivery the queue
    # allows; with a different count it would act too early or never before the queue's redrive.
    redrive = template.properties(queue_id)["RedrivePolicy"]
    emit = [f for f in functions if "MAX_RECEIVE_COUNT" in template.function_setting(f, "Environment")["Variables"]]
    assert len(emit) == 1
    variables = template.function_setting(emit[0], "Environment")["Variables"]
    assert variables["MAX_RECEIVE_COUNT"] == redrive["maxReceiveCount"]
    assert ref_of(variables["DEAD_LETTER_QUEUE_URL"]) == dlq_id


def test_visibility_timeout_is_comfortably_above_the_workflow_timeout(
    template: Template, queue_id: str, workflow_timeout: int
) -> None:
    visibility = parameter(template, template.properties(queue_id)["VisibilityTimeout"])
    assert visibility["Default"] >= 2 * workflow_timeout


def test_dlq_keeps_messages_for_the_maximum_and_longer_than_the_queue(
    template: Template, queue_id: str, dlq_id: str
) -> None:
    # A standard queue's dead-lettered message keeps its original enqueue time, so the DLQ must
    # outlive the source queue's retention or messages expire on arrival.
    dlq_retention = template.properties(dlq_id)["MessageRetentionPeriod"]
    assert dlq_retention == SQS_MAX_RETENTION_SECONDS
    assert dlq_retention > template.properties(queue_id).get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION_SECONDS)


def test_queues_are_encrypted(template: Template, queue_id: str, dlq_id: str) -> None:
    for logical_id in (queue_id, dlq_id):
        properties = template.properties(logical_id)
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties


def test_largest_batch_fits_the_step_functions_payload_limit(
    template: Template, pipe: dict[str, Any], queue_id: str
) -> None:
    from tests.builders import sqs_record

    max_message = template.properties(queue_id)["MaximumMessageSize"]
    max_batch = parameter(template, pipe["SourceParameters"]["SqsQueueParameters"]["BatchSize"])["MaxValue"]
    assert max_message * max_batch < STEP_FUNCTIONS_PAYLOAD_LIMIT
    # The execution input is the records as JSON: each body escaped, inside its record envelope.
    envelope = len(json.dumps(sqs_record("", message_id="0" * 36)))
    worst_record = JSON_ESCAPING_WORST_CASE * max_message + envelope
    assert max_batch * worst_record + 2 < STEP_FUNCTIONS_PAYLOAD_LIMIT


def test_pipe_hands_queue_batches_to_the_workflow_and_waits_for_its_answer(
    template: Template, pipe: dict[str, Any], queue_id: str, state_machine_id: str
) -> None:
    assert template.resources[queue_id]["Type"] == "AWS::SQS::Queue"
    assert template.resources[state_machine_id]["Type"] == "AWS::Serverless::StateMachine"
    # Only REQUEST_RESPONSE lets batchItemFailures flow back; it needs an EXPRESS workflow.
    assert pipe["TargetParameters"]["StepFunctionStateMachineParameters"]["InvocationType"] == "REQUEST_RESPONSE"
    assert template.properties(state_machine_id)["Type"] == "EXPRESS"
    sqs = pipe["SourceParameters"]["SqsQueueParameters"]
    batch_size = parameter(template, sqs["BatchSize"])
    # With a FIFO queue no window at all (tests/template/test_fifo_template.py); else the parameter's.
    condition, fifo_window, standard_window = sqs["MaximumBatchingWindowInSeconds"]["Fn::If"]
    assert (condition, fifo_window) == ("FifoPostingQueue", 0)
    window = parameter(template, standard_window)
    assert 1 <= batch_size["MinValue"] <= batch_size["Default"] <= batch_size["MaxValue"] <= 10_000
    assert 0 <= window["MinValue"] <= window["Default"] <= window["MaxValue"] <= 300
    if batch_size["MaxValue"] > 10:  # SQS sources need a batching window for batches above 10
        assert window["MinValue"] >= 1


def test_pipe_role_allows_exactly_reading_the_queue_and_running_the_workflow(
    template: Template, pipe: dict[str, Any], queue_id: str, state_machine_id: str
) -> None:
    role = get_att_of(pipe["RoleArn"])
    assert role is not None
    role_id = role[0]
    trust = template.properties(role_id)["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "pipes.amazonaws.com"}]
    assert all("aws:SourceAccount" in s.get("Condition", {}).get("StringEquals", {}) for s in trust)

    log_group = get_att_of(pipe["LogConfiguration"]["CloudwatchLogsLogDestination"]["LogGroupArn"])
    queue_arn = {"Fn::GetAtt": [queue_id, "Arn"]}
    expected = {
        "sqs:ReceiveMessage": [queue_arn],
        "sqs:DeleteMessage": [queue_arn],
        "sqs:GetQueueAttributes": [queue_arn],
        "states:StartSyncExecution": [{"Ref": state_machine_id}],
    }
    if log_group is not None:
        log_arn = {"Fn::GetAtt": list(log_group)}
        expected |= {"logs:CreateLogStream": [log_arn], "logs:PutLogEvents": [log_arn]}
    expected |= {"kms:Decrypt": [KEY_ARN]}  # the queue is under the stack's key: receiving only decrypts
    assert allowed(template, role_id) == expected
    assert not template.properties(role_id).get("ManagedPolicyArns")


# Workflow ----------------------------------------------------------------------------------------


def test_state_machine_definition_exists_and_substitutions_match_its_placeholders(
    template: Template, state_machine_id: str
) -> None:
    path, text = state_machine_definition(template, state_machine_id)
    assert path.is_file()
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    assert set(template.properties(state_machine_id)["DefinitionSubstitutions"]) == placeholders


def test_every_asl_file_belongs_to_a_state_machine(template: Template) -> None:
    used = {
        (template.path.parent / props["DefinitionUri"]).resolve()
        for props in (template.properties(sm) for sm in template.resources_of_type("AWS::Serverless::StateMachine"))
    }
    assert set((template.path.parent / "statemachine").resolve().glob("*.asl.json")) == used


def test_state_machine_may_invoke_exactly_the_functions_it_names(template: Template, state_machine_id: str) -> None:
    properties = template.properties(state_machine_id)
    named = set()
    for value in properties["DefinitionSubstitutions"].values():
        att = get_att_of(value)
        if att is None:
            continue  # the DLQ and MaxReceiveCount, for the last-resort dead-letter path
        assert att[1] == "Arn"
        assert template.resources[att[0]]["Type"] == "AWS::Serverless::Function"
        named.add(att[0])
    assert not properties.get("Policies"), "an explicit role: SAM's LambdaInvokePolicy grants function:<name>*"
    invokable = allowed(template, role_of(template, state_machine_id))["lambda:InvokeFunction"]
    assert sorted(get_att_of(arn) for arn in invokable) == sorted((f, "Arn") for f in named)


def test_state_machine_may_send_only_to_the_dlq_it_dead_letters_to(template: Template, state_machine_id: str) -> None:
    properties = template.properties(state_machine_id)
    substitutions = properties["DefinitionSubstitutions"]
    assert substitutions["DeadLetterQueueUrl"] == {"Ref": "PostingDLQ"}
    assert substitutions["MaxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    grants = allowed(template, role_of(template, state_machine_id))
    assert grants["sqs:SendMessage"] == [{"Fn::GetAtt": ["PostingDLQ", "Arn"]}]


def test_state_machine_logs_errors_without_payloads_and_is_traced(template: Template, state_machine_id: str) -> None:
    properties = template.properties(state_machine_id)
    logging = properties["Logging"]
    assert logging["Level"] in {"ERROR", "ALL", "FATAL"}
    # Posting requests carry account ids and amounts: keep them out of the execution logs.
    assert logging["IncludeExecutionData"] is False
    (destination,) = logging["Destinations"]
    log_group = get_att_of(destination["CloudWatchLogsLogGroup"]["LogGroupArn"])
    assert log_group is not None and template.resources[log_group[0]]["Type"] == "AWS::Logs::LogGroup"
    assert properties["Tracing"]["Enabled"] is True


# Functions ---------------------------------------------------------------------------------------


def test_functions_share_one_package_and_differ_only_by_handler(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    shared = ("CodeUri", "Runtime", "Architectures", "Layers", "PackageType", "ImageUri", "InlineCode")
    for logical_id in functions:
        overridden = set(shared) & set(template.properties(logical_id))
        assert not overridden, f"{logical_id} overrides {overridden}"
        assert template.function_setting(logical_id, "CodeUri") == "src/"
        assert template.function_setting(logical_id, "Runtime") == LAMBDA_RUNTIME
        assert template.function_setting(logical_id, "Architectures") == LAMBDA_ARCHITECTURES
        assert template.function_setting(logical_id, "Tracing") == "Active"
    handlers = [template.properties(f)["Handler"] for f in functions]
    assert len(set(handlers)) == len(handlers)
    assert (template.path.parent / "src").is_dir()


@pytest.mark.parametrize(
    "logical_id", [f for f, r in Template.load().resources.items() if r["Type"] == "AWS::Serverless::Function"]
)
def test_handler_is_an_importable_callable_in_the_code_uri(template: Template, logical_id: str) -> None:
    module_name, _, attribute = template.properties(logical_id)["Handler"].rpartition(".")
    module = importlib.import_module(module_name)
    assert callable(getattr(module, attribute))
    code_uri = (template.path.parent / template.function_setting(logical_id, "CodeUri")).resolve()
    assert Path(module.__file__ or "").resolve().is_relative_to(code_uri)


def test_dependencies_are_one_layer_built_by_sam_for_the_functions_runtime(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    layers = template.resources_of_type("AWS::Serverless::LayerVersion")
    assert list(layers) == ["DependenciesLayer"]
    layer = layers["DependenciesLayer"]
    assert layer["Metadata"] == {"BuildMethod": LAMBDA_RUNTIME, "BuildArchitecture": LAMBDA_ARCHITECTURES[0]}
    properties = layer["Properties"]
    assert properties["CompatibleRuntimes"] == [LAMBDA_RUNTIME]
    assert properties["CompatibleArchitectures"] == LAMBDA_ARCHITECTURES
    content = template.path.parent / properties["ContentUri"]
    # sam build installs the layer's requirements.txt and copies the rest of ContentUri: nothing else there.
    assert sorted(path.name for path in content.iterdir()) == ["requirements.txt"]
    for logical_id in functions:
        assert template.function_setting(logical_id, "Layers") == [{"Ref": "DependenciesLayer"}]


def test_functions_ship_only_our_code(template: Template) -> None:
    # No requirements.txt in the CodeUri: sam build copies src/ and installs nothing into a function.
    code_uri = template.path.parent / template.function_globals()["CodeUri"]
    assert not (code_uri / "requirements.txt").exists()
    assert sorted(p.name for p in code_uri.iterdir() if not p.name.startswith((".", "__"))) == ["posting"]


def test_layer_requirements_are_pinned_and_leave_the_sdk_to_the_runtime(template: Template) -> None:
    content = template.path.parent / template.properties("DependenciesLayer")["ContentUri"]
    lines = [line.strip() for line in (content / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith("#")]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[0-9][A-Za-z0-9.]*", r) for r in requirements)
    names = {re.split(r"[\[=]", r)[0].lower() for r in requirements}
    assert not names & {"boto3", "botocore", "aws-xray-sdk"}, "the runtime provides the SDK; see the file's comment"


def config_models(template: Template, logical_id: str) -> list[type[BaseModel]]:
    """The environment models (posting.handlers.config) a function's handler module uses."""
    module = importlib.import_module(template.properties(logical_id)["Handler"].rpartition(".")[0])
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == handler_config.__name__
    ]


def test_every_variable_a_handler_config_reads_is_set(template: Template, functions: dict[str, dict[str, Any]]) -> None:
    seen: set[type[BaseModel]] = set()
    for logical_id in functions:
        variables = template.function_setting(logical_id, "Environment")["Variables"]
        for model in config_models(template, logical_id):
            seen.add(model)
            aliases = {field.alias for field in model.model_fields.values()}
            assert aliases <= set(variables), f"{logical_id} lacks {aliases - set(variables)}"
    assert seen == {handler_config.PostConfig, handler_config.EmitConfig, handler_config.SweepConfig}


def test_every_value_the_template_can_pass_parses_in_the_handler_config(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    # A parameter within its MinValue/MaxValue must never make a function fail at its first call.
    for logical_id in functions:
        raw = template.function_setting(logical_id, "Environment")["Variables"]
        for model in config_models(template, logical_id):
            base = {}
            for name, value in raw.items():
                declared = template.body["Parameters"].get(ref_of(value) or "")
                base[name] = str(declared["Default"]) if declared else f"{template.stack_name}-{name.lower()}"
            model.model_validate(base)
            for name, value in raw.items():
                declared = template.body["Parameters"].get(ref_of(value) or "", {})
                for bound in ("MinValue", "MaxValue"):
                    if bound in declared:
                        model.model_validate(base | {name: str(declared[bound])})


def test_no_two_functions_set_one_variable_differently(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    # The local stack runs every handler in one process, with one environment.
    values: dict[str, Any] = {}
    for logical_id in functions:
        for name, value in template.function_setting(logical_id, "Environment")["Variables"].items():
            assert values.setdefault(name, value) == value, f"{logical_id} sets {name} differently"


# Least privilege ---------------------------------------------------------------------------------


# `*` actions and resources are checked on the translated template: tests/template/test_security.py


def test_policy_templates_are_scoped_to_this_templates_resources(template: Template) -> None:
    for logical_id, resource in template.resources.items():
        policies = resource.get("Properties", {}).get("Policies", [])
        if not resource["Type"].startswith("AWS::Serverless::"):
            continue
        assert not [p for p in policies if isinstance(p, str)], f"{logical_id} attaches a managed policy"
        for name, arguments_list in sam_policy_templates(template, logical_id).items():
            assert not name.startswith("DynamoDB"), "SAM's DynamoDB templates grant more than posting needs"
            for arguments in arguments_list:
                for value in arguments.values():
                    target = ref_of(value) or (get_att_of(value) or (None,))[0]
                    assert target in template.resources, f"{logical_id} {name}: {value}"


def test_only_the_post_function_touches_the_ledger_and_only_the_table(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    table_id = the_only(template, "AWS::DynamoDB::Table")
    table_arn = {"Fn::GetAtt": [table_id, "Arn"]}
    users = {}
    for logical_id in functions:
        grants = {
            a: r for a, r in allowed(template, role_of(template, logical_id)).items() if a.startswith("dynamodb:")
        }
        if grants:
            users[logical_id] = grants
    # The sweeper may Query the two sparse indexes, and read and checkpoint lanes: nothing else.
    sweepers = [f for f in users if template.properties(f)["Handler"] == "posting.handlers.sweep.handler"]
    assert len(sweepers) == 1
    assert users.pop(sweepers[0]) == {
        "dynamodb:Query": [
            {"Fn::Sub": "${LedgerTable.Arn}/index/OpenHoldsByExpiry"},
            {"Fn::Sub": "${LedgerTable.Arn}/index/UnlimitedAccounts"},
            table_arn,
            table_arn,
        ],
        "dynamodb:PutItem": [table_arn],
        "dynamodb:DeleteItem": [table_arn],
    }
    lanes_only = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ACCOUNT#*#LANE#*"]}}
    outbox_only = {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["OUTBOX"]}}
    table_statements = [
        s
        for s in statements(template.properties(role_of(template, sweepers[0]))["Policies"])
        if s["Resource"] == table_arn
    ]
    # The lanes it checkpoints, and the outbox it publishes and empties: nothing else of the table.
    assert all(
        lanes_only.items() <= s["Condition"].items() or outbox_only.items() <= s["Condition"].items()
        for s in table_statements
    )
    (delete,) = [s for s in table_statements if "dynamodb:DeleteItem" in as_list(s["Action"])]
    assert delete["Condition"] == outbox_only
    table_statements = [s for s in table_statements if s is not delete]
    (put,) = [s for s in table_statements if s["Action"] == "dynamodb:PutItem"]
    attributes = set(put["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"])
    assert not attributes & {"amount", "side", "signed_amount", "posting_id", "balance", "status"}
    assert len(users) == 1
    ((post_id, grants),) = users.items()
    assert template.properties(post_id)["Handler"] == "posting.handlers.post.handler"
    assert ref_of(template.function_setting(post_id, "Environment")["Variables"]["LEDGER_TABLE_NAME"]) == table_id
    for action, resources in grants.items():
        assert resources == [table_arn], action
    # The ledger is append-only: the pipeline never deletes or scans it.
    assert not {"dynamodb:DeleteItem", "dynamodb:Scan", "dynamodb:BatchWriteItem"} & set(grants)


# Ledger table ------------------------------------------------------------------------------------


def test_ledger_table_is_on_demand_keyed_recoverable_encrypted_and_retained(template: Template) -> None:
    table_id = the_only(template, "AWS::DynamoDB::Table")
    table = template.resources[table_id]
    properties = table["Properties"]
    assert Resolver(template).resolve(properties["BillingMode"]) == "PAY_PER_REQUEST"  # CapacityMode's default
    assert {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]} == {
        "PK": "S",
        "SK": "S",
        "open_hold_bucket": "S",
        "open_hold_expires_at": "S",
        "unlimited": "S",
        "value_partition": "S",
        "value_key": "S",
        "external_ref": "S",
        "decided_at": "S",
    }
    assert properties["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    # The sweeper's sparse indexes: a few bytes per open hold, and per account without a limit.
    holds, unlimited, value_dated, by_ref = properties["GlobalSecondaryIndexes"]
    assert by_ref["IndexName"] == "ByExternalRef"
    assert [k["AttributeName"] for k in by_ref["KeySchema"]] == ["external_ref", "decided_at"]
    # Sparse: only lines dated apart from when they were recorded.
    assert value_dated["IndexName"] == "ValueDatedLines"
    assert [k["AttributeName"] for k in value_dated["KeySchema"]] == ["value_partition", "value_key"]
    assert (holds["IndexName"], holds["Projection"]) == ("OpenHoldsByExpiry", {"ProjectionType": "KEYS_ONLY"})
    assert unlimited["IndexName"] == "UnlimitedAccounts"
    assert unlimited["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["lanes"]}
    assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


# Results -----------------------------------------------------------------------------------------


def test_result_events_are_archived_and_audited(template: Template, functions: dict[str, dict[str, Any]]) -> None:
    bus_id = the_only(template, "AWS::Events::EventBus")
    archive = template.properties(the_only(template, "AWS::Events::Archive"))
    assert get_att_of(archive["SourceArn"]) == (bus_id, "Arn")
    assert "EventPattern" not in archive, "the archive keeps every result event for replay"

    rules = [template.properties(r) for r in template.resources_of_type("AWS::Events::Rule")]
    audit = [r for r in rules if ref_of(r.get("EventBusName")) == bus_id and r["EventPattern"].get("source")]
    assert len(audit) == 1
    assert audit[0]["EventPattern"]["source"] == [EVENT_SOURCE]
    (target,) = audit[0]["Targets"]
    # A rule targets a log group by its plain ARN: GetAtt's ":*" form deploys, then delivers nothing.
    arn = target["Arn"]["Fn::Sub"]
    assert arn.startswith("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${")
    assert not arn.endswith(":*")
    log_group = (arn.rsplit("${", 1)[1].rstrip("}"),)
    assert template.resources[log_group[0]]["Type"] == "AWS::Logs::LogGroup"

    # EventBridge may only write to that log group through a resource policy naming it.
    policies = [template.properties(p) for p in template.resources_of_type("AWS::Logs::ResourcePolicy")]
    granting = [p for p in policies if f"${{{log_group[0]}.Arn}}" in p["PolicyDocument"]["Fn::Sub"]]
    assert granting
    (statement,) = statements(granting[0])
    assert "events.amazonaws.com" in as_list(statement["Principal"]["Service"])
    assert set(as_list(statement["Action"])) == {"logs:CreateLogStream", "logs:PutLogEvents"}

    # The emit function (decisions) and the sweeper (operators' acts) publish to that bus, and may
    # publish to it only, and only as the pipeline.
    publishers = [f for f in functions if "events:PutEvents" in allowed(template, role_of(template, f))]
    assert sorted(publishers) == ["EmitFunction", "SweepFunction"]
    for publisher in publishers:
        assert allowed(template, role_of(template, publisher))["events:PutEvents"] == [{"Fn::GetAtt": [bus_id, "Arn"]}]
        (put_events,) = [
            s
            for s in statements(template.properties(role_of(template, publisher))["Policies"])
            if s["Action"] == "events:PutEvents"
        ]
        assert put_events["Condition"] == {"StringEquals": {"events:source": EVENT_SOURCE}}
        assert ref_of(template.function_setting(publisher, "Environment")["Variables"]["EVENT_BUS_NAME"]) == bus_id


# Alarms ------------------------------------------------------------------------------------------


def alarmed_metrics(template: Template) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(namespace, metric name, dimensions) of every metric an alarm watches, single or in metric math."""
    for logical_id in template.resources_of_type("AWS::CloudWatch::Alarm"):
        properties = template.properties(logical_id)
        if "MetricName" in properties:
            yield properties["Namespace"], properties["MetricName"], properties.get("Dimensions", [])
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


def test_dead_letters_raise_an_alarm(stack: Template, dlq_id: str) -> None:
    watched = {
        (namespace, name)
        for namespace, name, dimensions in alarmed_metrics(stack)
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}} in dimensions
    }
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched


def test_workflow_alarms_cover_failed_and_timed_out_executions(stack: Template, state_machine_id: str) -> None:
    watched = {
        name
        for namespace, name, dimensions in alarmed_metrics(stack)
        if namespace == "AWS/States" and {"Name": "StateMachineArn", "Value": {"Ref": state_machine_id}} in dimensions
    }
    assert {"ExecutionsFailed", "ExecutionsTimedOut"} <= watched


# Outputs -----------------------------------------------------------------------------------------


def test_outputs_cover_what_the_tooling_needs_and_name_real_resources(template: Template) -> None:
    outputs = template.body["Outputs"]
    assert set(REQUIRED_OUTPUTS) <= set(outputs)
    for key, output in outputs.items():
        value = output["Value"]
        choices = value["Fn::If"][1:] if isinstance(value, dict) and "Fn::If" in value else [value]
        for choice in choices:
            target = ref_of(choice) or (get_att_of(choice) or (None,))[0]
            assert target in template.resources or target in template.body["Parameters"], f"output {key}: {choice}"


def test_the_registry_schemas_cfn_lint_is_given_are_the_pinned_cfn_lints_own():
    """.cfnlintrc.yaml registers the schema of each resource type older cfn-lint releases lack
    (tools/cfn-lint/schemas/), so `cfn-lint template.yaml` from the project root passes with any
    1.x. Each one must be the schema the pinned cfn-lint ships, used by the template, so the copy
    neither drifts from AWS's nor outlives its need silently."""
    import yaml
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

    config = yaml.safe_load((ROOT / ".cfnlintrc.yaml").read_text())
    used = {resource["Type"] for resource in Template.load(ROOT / "template.yaml").body["Resources"].values()}
    copies = [path for folder in config["registry_schemas"] for path in sorted((ROOT / folder).glob("*.json"))]
    assert copies
    for path in copies:
        copy = json.loads(path.read_text())
        assert copy["typeName"] in used, path
        assert copy == PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", copy["typeName"]).schema, path
