"""Security and operations rules, read from the template and from its SAM translation.

IAM is checked on the translated template (aws-sam-translator, offline): that is what the account
gets, including whatever the transform adds. Resource policies are also resolved with the local
stack's resolver under each combination of the principal parameters, so the tests check the lists
CloudFormation would really write, not only their intrinsic-function spelling.
"""

from __future__ import annotations

import ast
import fnmatch
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posting.steps.emit import EVENT_SOURCE
from posting_cli.local.template import ACCOUNT_ID, REGION, Resolver, Template

ROOT = Path(__file__).resolve().parents[2]

# Outside facts: the Allow statements AWS only accepts with Resource "*", and why.
RESOURCE_STAR_REASONS = {
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "xray:GetSamplingRules": "X-Ray has no resource-level permissions",
    "xray:GetSamplingTargets": "X-Ray has no resource-level permissions",
    "logs:CreateLogDelivery": "Step Functions log delivery: the vended-log actions take no ARN",
    "logs:GetLogDelivery": "Step Functions log delivery",
    "logs:UpdateLogDelivery": "Step Functions log delivery",
    "logs:DeleteLogDelivery": "Step Functions log delivery",
    "logs:ListLogDeliveries": "Step Functions log delivery",
    "logs:PutResourcePolicy": "Step Functions log delivery",
    "logs:DescribeResourcePolicies": "Step Functions log delivery",
    "logs:DescribeLogGroups": "Step Functions log delivery",
}
# Wildcard actions AWS's own key-policy guides give service principals: CloudTrail's ("Configure AWS
# KMS key policies for CloudTrail") and SNS's for encrypted topics that AWS services publish to.
AWS_DOCUMENTED_WILDCARDS = {"kms:GenerateDataKey*"}
# Lambda documents no aws:SourceArn on the AssumeRole of an execution role: requiring it would
# stop every function. Its trust policies carry aws:SourceAccount.
SERVICES_WITHOUT_SOURCE_ARN_ON_ASSUME_ROLE = {"lambda.amazonaws.com"}

KEYED_PROPERTIES = {  # resource type -> where it names its KMS key
    "AWS::SQS::Queue": ("KmsMasterKeyId",),
    "AWS::DynamoDB::Table": ("SSESpecification", "KMSMasterKeyId"),
    "AWS::Logs::LogGroup": ("KmsKeyId",),
    "AWS::Events::EventBus": ("KmsKeyIdentifier",),
    "AWS::Events::Archive": ("KmsKeyIdentifier",),
    "AWS::CloudTrail::Trail": ("KMSKeyId",),
    "AWS::Lambda::Function": ("KmsKeyArn",),
}

PRODUCER = "arn:aws:iam::210987654321:role/payments-gateway"
OPERATOR = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_oncall_*"


def resources_of(body: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in body["Resources"].items() if r["Type"] == resource_type}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_statements(body: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(logical id, kind, statement) of every IAM statement: role policies, trust, resource policies."""
    for logical_id, resource in body["Resources"].items():
        properties = resource.get("Properties", {})
        documents: list[tuple[str, Any]] = []
        if resource["Type"] == "AWS::IAM::Role":
            documents.append(("trust", properties["AssumeRolePolicyDocument"]))
            documents += [("identity", p["PolicyDocument"]) for p in properties.get("Policies", [])]
        for key in ("PolicyDocument", "KeyPolicy"):
            if key in properties and resource["Type"] != "AWS::IAM::Role":
                document = properties[key]
                if isinstance(document, dict) and "Fn::Sub" in document:
                    text = document["Fn::Sub"] if isinstance(document["Fn::Sub"], str) else document["Fn::Sub"][0]
                    document = json.loads(text)
                documents.append(("resource", document))
        if "ResourcePolicy" in properties:
            documents.append(("resource", properties["ResourcePolicy"]["PolicyDocument"]))
        if "Statement" in properties and resource["Type"] == "AWS::Events::EventBusPolicy":
            documents.append(("resource", {"Statement": [properties["Statement"]]}))
        for kind, document in documents:
            for statement in as_list(document["Statement"]):
                # A conditional statement is checked as it is when its condition holds.
                conditional = isinstance(statement, dict) and "Fn::If" in statement
                yield logical_id, kind, statement["Fn::If"][1] if conditional else statement


def resolver(template: Template) -> Resolver:
    """A resolver in which every resource of the template has a recognisable name and ARN."""
    resolver = Resolver(template)
    for logical_id in template.resources:
        resolver.provide(logical_id, f"{logical_id}-ref", Arn=f"arn:aws:test:::{logical_id}")
    for logical_id, attribute in get_atts(template.body):
        if attribute != "Arn":
            resolver.attributes[(logical_id, attribute)] = f"{logical_id}-{attribute}"
    for logical_id in template.resources_of_type("AWS::SQS::Queue"):
        resolver.attributes[(logical_id, "QueueName")] = f"{logical_id}-name"
    return resolver


def get_atts(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                yield tuple(value if isinstance(value, list) else value.split(".", 1))  # type: ignore[misc]
            else:
                yield from get_atts(value)
    elif isinstance(node, list):
        for value in node:
            yield from get_atts(value)


def resolved_statements(template: Template, logical_id: str) -> dict[str, dict[str, Any]]:
    """Sid -> statement of a resource's policy, with every intrinsic function resolved."""
    properties = template.properties(logical_id)
    document = properties.get("PolicyDocument") or properties["ResourcePolicy"]["PolicyDocument"]
    resolved = resolver(template).resolve(document)
    return {statement["Sid"]: statement for statement in resolved["Statement"]}


def with_principals(producers: list[str], operators: list[str]) -> Template:
    return Template.load(
        ROOT / "template.yaml",
        overrides={"ProducerPrincipalArns": ",".join(producers), "OperatorPrincipalArns": ",".join(operators)},
    )


PRINCIPAL_CASES = [([], []), ([PRODUCER], []), ([], [OPERATOR]), ([PRODUCER], [OPERATOR])]


# Least privilege, after the transform ------------------------------------------------------------


def test_translation_adds_no_managed_policy_and_no_generated_role(translated: dict[str, Any]) -> None:
    for logical_id, role in resources_of(translated, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), f"{logical_id}: e.g. AWSLambdaBasicExecutionRole"
    source = Template.load(ROOT / "template.yaml")
    assert set(resources_of(translated, "AWS::IAM::Role")) == set(source.resources_of_type("AWS::IAM::Role"))


def test_no_allow_grants_a_wildcard_action_or_uses_not_elements(translated: dict[str, Any]) -> None:
    found = list(policy_statements(translated))
    assert len(found) >= 20  # the walker does reach the roles, key and resource policies
    for logical_id, _, statement in found:
        assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), (logical_id, statement)
        if statement["Effect"] == "Allow":
            for action in as_list(statement["Action"]):
                if action in AWS_DOCUMENTED_WILDCARDS and "Service" in statement["Principal"]:
                    continue
                assert "*" not in action, (logical_id, statement)


def test_resource_star_only_where_aws_requires_it(translated: dict[str, Any]) -> None:
    for logical_id, kind, statement in policy_statements(translated):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement.get("Resource", [])):
            continue
        if translated["Resources"][logical_id]["Type"] == "AWS::KMS::Key":
            continue  # in a key policy "*" is the key itself
        assert kind == "identity"
        assert set(as_list(statement["Action"])) <= set(RESOURCE_STAR_REASONS), (logical_id, statement)


def test_every_service_trust_policy_is_bound_to_this_account_and_resource(translated: dict[str, Any]) -> None:
    for logical_id, kind, statement in policy_statements(translated):
        if kind != "trust":
            continue
        (service,) = as_list(statement["Principal"]["Service"])
        condition = statement["Condition"]
        assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, logical_id
        if service not in SERVICES_WITHOUT_SOURCE_ARN_ON_ASSUME_ROLE:
            assert "aws:SourceArn" in condition.get("ArnEquals", {}), logical_id


def test_service_principals_in_resource_policies_are_bound_to_a_source(translated: dict[str, Any]) -> None:
    for logical_id, kind, statement in policy_statements(translated):
        if kind != "resource" or statement["Effect"] != "Allow" or "Service" not in statement.get("Principal", {}):
            continue
        keys = {key for operator in statement.get("Condition", {}).values() for key in operator}
        assert keys & {"aws:SourceArn", "kms:EncryptionContext:aws:logs:arn"}, (logical_id, statement)


def test_the_audit_log_group_admits_only_the_audit_rule(template: Template) -> None:
    (policy_id,) = template.resources_of_type("AWS::Logs::ResourcePolicy")
    document = json.loads(resolver(template).resolve(template.properties(policy_id)["PolicyDocument"]))
    (statement,) = document["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    stack, region = template.stack_name, REGION
    rule = f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{stack}-results/{stack}-audit"
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == rule
    rule_props = resolver(template).resolve(template.properties("ResultsAuditRule"))
    assert rule == f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{stack}-results/{rule_props['Name']}"


# Producers, queues ------------------------------------------------------------------------------


@pytest.mark.parametrize(("producers", "operators"), PRINCIPAL_CASES)
def test_posting_queue_admits_exactly_producers_pipe_and_operators(producers: list[str], operators: list[str]) -> None:
    template = with_principals(producers, operators)
    statements = resolved_statements(template, "PostingQueuePolicy")
    queue = "arn:aws:test:::PostingQueue"
    if producers:
        assert statements["ProducersSend"]["Principal"] == {"AWS": producers}
        assert "sqs:SendMessage" in statements["ProducersSend"]["Action"]
    else:
        assert "ProducersSend" not in statements
    tls = statements["DenyWithoutTls"]
    assert (tls["Effect"], tls["Principal"], tls["Action"], tls["Resource"]) == ("Deny", "*", "sqs:*", queue)
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": False}}

    senders = statements["OnlyProducersAndOperatorsSend"]
    assert (senders["Effect"], senders["Principal"], senders["Action"]) == ("Deny", "*", "sqs:SendMessage")
    allowed_senders = senders["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    # The expiry sweeper is the stack's own producer (it sends expiry requests).
    assert sorted(allowed_senders) == sorted(["arn:aws:test:::SweepRole", *producers, *operators])
    assert template.properties("SweepFunction")["Role"] == {"Fn::GetAtt": ["SweepRole", "Arn"]}
    assert "" not in allowed_senders

    consumers = statements["OnlyThePipeAndOperatorsConsume"]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:PurgeQueue"} <= set(consumers["Action"])
    assert consumers["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == ["arn:aws:test:::PipeRole", *operators]
    # The emit step may only say when a record it hands back becomes visible again.
    visibility = statements["OnlyThePipeEmitAndOperatorsChangeVisibility"]
    assert visibility["Action"] == "sqs:ChangeMessageVisibility"
    assert visibility["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == [
        "arn:aws:test:::PipeRole",
        "arn:aws:test:::EmitRole",
        *operators,
    ]
    # The pipe's role is the one the pipe runs as.
    assert template.properties("PostingPipe")["RoleArn"] == {"Fn::GetAtt": ["PipeRole", "Arn"]}


@pytest.mark.parametrize(("producers", "operators"), PRINCIPAL_CASES)
def test_dlq_takes_dead_letters_from_the_workflow_only_and_is_read_by_operators_only(
    producers: list[str], operators: list[str]
) -> None:
    template = with_principals(producers, operators)
    statements = resolved_statements(template, "PostingDLQPolicy")
    assert statements["DenyWithoutTls"]["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    senders = statements["OnlyTheWorkflowAndOperatorsDeadLetter"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    # Emit dead-letters exhausted items; the workflow's last-resort path dead-letters whole batches.
    assert senders == ["arn:aws:test:::EmitRole", "arn:aws:test:::StateMachineRole", *operators]
    emit_role = template.properties("EmitFunction")["Role"]
    assert emit_role == {"Fn::GetAtt": ["EmitRole", "Arn"]}
    readers = statements["OnlyOperatorsReadOrRedrive"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert readers == (operators or [f"arn:aws:iam::{ACCOUNT_ID}:root"])


def test_dlq_redrive_allow_policy_names_only_the_posting_queue(template: Template) -> None:
    resolve = resolver(template).resolve
    dlq = resolve(template.properties("PostingDLQ"))
    queue = resolve(template.properties("PostingQueue"))
    assert dlq["RedriveAllowPolicy"] == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue['QueueName']}"],
    }
    assert template.properties("PostingQueue")["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["PostingDLQ", "Arn"]
    }


def test_every_queue_denies_requests_without_tls(template: Template) -> None:
    covered = set()
    for policy_id in template.resources_of_type("AWS::SQS::QueuePolicy"):
        properties = template.properties(policy_id)
        statements = {s.get("Sid"): s for s in properties["PolicyDocument"]["Statement"] if "Sid" in s}
        if statements.get("DenyWithoutTls", {}).get("Condition") == {"Bool": {"aws:SecureTransport": False}}:
            covered.update(q["Ref"] for q in properties["Queues"])
    assert covered == set(template.resources_of_type("AWS::SQS::Queue"))


# Bus --------------------------------------------------------------------------------------------


def test_only_the_emit_and_sweep_roles_may_publish_posting_results(template: Template) -> None:
    # Emit publishes decisions; the sweeper publishes what operators' acts owe (the ledger's outbox).
    (policy_id,) = template.resources_of_type("AWS::Events::EventBusPolicy")
    statement = template.properties(policy_id)["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "events:PutEvents")
    assert statement["Condition"] == {
        "StringEquals": {"events:source": EVENT_SOURCE},
        "ArnNotEquals": {
            "aws:PrincipalArn": [{"Fn::GetAtt": ["EmitRole", "Arn"]}, {"Fn::GetAtt": ["SweepRole", "Arn"]}]
        },
    }
    assert template.properties(policy_id)["EventBusName"] == {"Ref": "PostingEventBus"}


# Ledger table -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("producers", "operators"), PRINCIPAL_CASES)
def test_ledger_writes_are_denied_to_all_but_the_post_role_and_operators(
    producers: list[str], operators: list[str]
) -> None:
    template = with_principals(producers, operators)
    statements = resolved_statements(template, "LedgerTable")
    writes = statements["OnlyThePostAndSweepRolesOperatorsAndSmokeTestWrite"]
    puts = statements["OnlyThePostAndSweepRolesOperatorsAndSmokeTestPut"]
    checkpoints_only = statements["TheSweepRolePutsCheckpointsOnly"]
    assert all((s["Effect"], s["Principal"]) == ("Deny", "*") for s in (writes, puts, checkpoints_only))
    assert {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} <= set(writes["Action"])
    assert puts["Action"] == checkpoints_only["Action"] == "dynamodb:PutItem"
    post_role_name = resolver(template).resolve(template.properties("PostRole")["RoleName"])
    post_role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{post_role_name}"
    sweep_role_name = resolver(template).resolve(template.properties("SweepRole")["RoleName"])
    sweep_role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{sweep_role_name}"
    assert set(writes["Condition"]["ArnNotLike"]["aws:PrincipalArn"]) == {post_role_arn, sweep_role_arn, *operators}
    # The sweeper deletes from the outbox only: published announcements.
    outbox_only = statements["TheSweepRoleDeletesPublishedAnnouncementsOnly"]
    assert outbox_only["Condition"]["ArnLike"]["aws:PrincipalArn"] == sweep_role_arn
    assert outbox_only["Condition"]["ForAnyValue:StringNotEquals"]["dynamodb:LeadingKeys"] == ["OUTBOX"]
    assert set(writes["Action"]) <= set(outbox_only["Action"])
    assert set(puts["Condition"]["ArnNotLike"]["aws:PrincipalArn"]) == {post_role_arn, sweep_role_arn, *operators}
    # The sweeper puts checkpoints: derived sums, never a line, a balance or a decision.
    assert checkpoints_only["Condition"]["ArnLike"]["aws:PrincipalArn"] == sweep_role_arn
    attributes = set(checkpoints_only["Condition"]["ForAnyValue:StringNotEquals"]["dynamodb:Attributes"])
    assert "through" in attributes and not attributes & {"amount", "side", "balance", "status", "request_hash"}
    assert template.properties("PostFunction")["Role"] == {"Fn::GetAtt": ["PostRole", "Arn"]}
    assert len(post_role_name) <= 64
    readers = statements["OnlyOperatorsReadTheWholeTable"]
    assert {"dynamodb:Scan", "dynamodb:PartiQLSelect", "dynamodb:ExportTableToPointInTime"} <= set(readers["Action"])
    assert set(readers["Condition"]["ArnNotLike"]["aws:PrincipalArn"]) == {post_role_arn, *operators}
    assert "OnlyTheDeploymentRoleAndOperatorsReconfigure" not in statements  # no deployment role named


DEPLOYER = f"arn:aws:iam::{ACCOUNT_ID}:role/posting-deploy/posting-deploy-cloudformation"
SMOKE = f"arn:aws:iam::{ACCOUNT_ID}:role/posting-deploy/posting-deploy-smoke-test"


def test_only_the_deployment_role_and_operators_reconfigure_the_table_and_the_smoke_test_writes_its_own_accounts() -> (
    None
):
    template = Template.load(
        ROOT / "template.yaml",
        overrides={"DeploymentRoleArn": DEPLOYER, "SmokeTestPrincipalArn": SMOKE, "OperatorPrincipalArns": OPERATOR},
    )
    statements = resolved_statements(template, "LedgerTable")
    admin = statements["OnlyTheDeploymentRoleAndOperatorsReconfigure"]
    assert {
        "dynamodb:UpdateTable",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:PutResourcePolicy",
        "dynamodb:DeleteResourcePolicy",
    } <= set(admin["Action"])
    assert set(admin["Condition"]["ArnNotLike"]["aws:PrincipalArn"]) == {DEPLOYER, OPERATOR}
    assert DEPLOYER in statements["OnlyOperatorsReadTheWholeTable"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    writers = statements["OnlyThePostAndSweepRolesOperatorsAndSmokeTestWrite"]["Condition"]["ArnNotLike"]
    assert SMOKE in writers["aws:PrincipalArn"]
    own = statements["TheSmokeTestWritesOnlyItsOwnAccounts"]
    assert own["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": SMOKE},
        "ForAnyValue:StringNotLike": {"dynamodb:LeadingKeys": ["ACCOUNT#smoke-*"]},
    }
    from posting.adapters.ledger_keys import account_key
    from posting_cli.smoke import accounts_for

    for account in accounts_for("smoke-20260101T000000-abcdef"):
        assert fnmatch.fnmatchcase(account_key(account.account_id)["PK"]["S"], "ACCOUNT#smoke-*")


def test_with_a_deployment_role_nobody_else_rewrites_a_queues_attributes() -> None:
    template = Template.load(ROOT / "template.yaml", overrides={"DeploymentRoleArn": DEPLOYER})
    for policy_id in template.resources_of_type("AWS::SQS::QueuePolicy"):
        statement = resolved_statements(template, policy_id)["OnlyTheDeploymentRoleReconfigures"]
        assert "sqs:SetQueueAttributes" in statement["Action"]
        assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": DEPLOYER}}


# Audit trail ------------------------------------------------------------------------------------


def test_data_events_trail_records_the_table_queues_and_function_invocations_behind_a_parameter(
    template: Template,
) -> None:
    (trail_id,) = template.resources_of_type("AWS::CloudTrail::Trail")
    trail = template.resources[trail_id]
    assert trail["Condition"] == "RecordDataEvents"
    arns = [
        arn
        for selector in trail["Properties"]["AdvancedEventSelectors"]
        for field in selector["FieldSelectors"]
        if field["Field"] == "resources.ARN"
        for arn in field["Equals"]
    ]
    assert sorted(a["Fn::GetAtt"][0] for a in arns) == sorted(
        [
            "LedgerTable",
            "PostingDLQ",
            "PostingQueue",
            "ResultsDLQ",
            *template.resources_of_type("AWS::Serverless::Function"),
        ]
    )
    selectors = {
        s["Name"]: {f["Field"]: f["Equals"] for f in s["FieldSelectors"] if "Equals" in f}
        for s in trail["Properties"]["AdvancedEventSelectors"]
    }
    assert selectors["function invocations"]["resources.type"] == ["AWS::Lambda::Function"]
    assert all(fields["eventCategory"] == ["Data"] for fields in selectors.values())
    assert trail["Properties"]["EnableLogFileValidation"] is True
    off = Template.load(ROOT / "template.yaml", overrides={"RecordDataEventsTrail": "false"})
    assert not off.is_created(trail_id)
    bucket = template.properties(trail["Properties"]["S3BucketName"]["Ref"])
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert (
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    )


# Encryption -------------------------------------------------------------------------------------


def test_one_customer_managed_key_encrypts_every_resource_that_takes_one(translated: dict[str, Any]) -> None:
    key_arn = {"Fn::If": ["CreateKey", {"Fn::GetAtt": ["PostingKey", "Arn"]}, {"Ref": "KmsKeyArn"}]}
    checked = 0
    for resource_type, path in KEYED_PROPERTIES.items():
        for logical_id, resource in resources_of(translated, resource_type).items():
            value: Any = resource["Properties"]
            for part in path:
                value = value.get(part, {})
            assert value == key_arn, f"{logical_id} ({resource_type}) is not under the stack's key"
            checked += 1
    assert checked >= 15
    bucket = next(iter(resources_of(translated, "AWS::S3::Bucket").values()))
    rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_arn
    (key,) = resources_of(translated, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Condition"] == "CreateKey"


def test_key_policy_lets_logs_use_the_key_for_this_stacks_log_groups_only(template: Template) -> None:
    policy = resolver(template).resolve(template.properties("PostingKey")["KeyPolicy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    logs = statements["LogsForThisStacksLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    for logical_id in template.resources_of_type("AWS::Logs::LogGroup"):
        name = resolver(template).resolve(template.properties(logical_id)["LogGroupName"])
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"
        assert any(fnmatch.fnmatchcase(arn, pattern) for pattern in patterns), arn
    # Use by principals is only through the pipeline's services, by this account.
    use = statements["UseThroughThePipelinesServices"]
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == ACCOUNT_ID
    admin = statements["AdministerThroughIam"]
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(admin["Action"])


def test_an_existing_key_replaces_the_stacks_own(template: Template) -> None:
    existing = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with_key = Template.load(ROOT / "template.yaml", overrides={"KmsKeyArn": existing})
    assert not with_key.is_created("PostingKey")
    assert resolver(with_key).resolve(with_key.properties("PostingQueue"))["KmsMasterKeyId"] == existing


# No payloads in telemetry -----------------------------------------------------------------------


def test_tracer_never_captures_responses_or_errors(template: Template) -> None:
    variables = template.function_globals()["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert variables["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        own = template.properties(logical_id).get("Environment", {}).get("Variables", {})
        assert not {"POWERTOOLS_TRACER_CAPTURE_RESPONSE", "POWERTOOLS_TRACER_CAPTURE_ERROR"} & set(own)
        module = template.properties(logical_id)["Handler"].rpartition(".")[0]
        path = ROOT / "src" / (module.replace(".", "/") + ".py")
        # Handlers run without Powertools' Tracer today (Tracing: Active records invocations, no
        # payloads); whoever brings it back must pass both flags, whatever the environment says.
        assert payload_capturing_decorators(path.read_text()) == [], path


def payload_capturing_decorators(source: str) -> list[str]:
    """Tracer decorators in source that do not turn off both response and error capture."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            text = ast.unparse(decorator)
            if "capture_lambda_handler" not in text and "capture_method" not in text:
                continue
            arguments = (
                {k.arg: ast.literal_eval(k.value) for k in decorator.keywords}
                if isinstance(decorator, ast.Call)
                else {}
            )
            if arguments.get("capture_response") is not False or arguments.get("capture_error") is not False:
                found.append(text)
    return found


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("@tracer.capture_lambda_handler\ndef handler(e, c): ...", True),
        ("@tracer.capture_lambda_handler(capture_response=False)\ndef handler(e, c): ...", True),
        ("@tracer.capture_method(capture_error=False)\ndef post(e): ...", True),
        ("@tracer.capture_lambda_handler(capture_response=False, capture_error=False)\ndef handler(e, c): ...", False),
        ("@logger.inject_lambda_context\ndef handler(e, c): ...", False),
    ],
)
def test_the_tracer_rule_flags_capturing_decorators(source: str, flagged: bool) -> None:
    assert bool(payload_capturing_decorators(source)) is flagged


# Operations -------------------------------------------------------------------------------------


def alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {k: template.properties(k) for k in template.resources_of_type("AWS::CloudWatch::Alarm")}


def watched(template: Template) -> set[tuple[str, str, str]]:
    """(namespace, metric, the resource its dimension names) of every alarm."""
    found = set()
    for properties in alarms(template).values():
        for dimension in properties.get("Dimensions", []):
            value = dimension["Value"]
            if isinstance(value, dict):
                value = value.get("Ref") or (value.get("Fn::GetAtt") or [None])[0] or value.get("Fn::Sub")
            found.add((properties["Namespace"], properties["MetricName"], value))
    return found


@pytest.mark.parametrize("extra_topic", ["", "arn:aws:sns:us-east-1:123456789012:payments-oncall"])
def test_every_alarm_notifies_the_alarm_topic(extra_topic: str) -> None:
    """The stack's own topic, and AlarmTopicArn's when set, both when an alarm fires and when it clears."""
    stack = Template.load(ROOT / "template.yaml", overrides={"AlarmTopicArn": extra_topic}).flattened()
    found = alarms(stack)
    assert len(found) >= 17
    resolve = resolver(stack).resolve
    notified = ["AlarmTopic-ref", extra_topic] if extra_topic else ["AlarmTopic-ref"]
    for logical_id, properties in found.items():
        assert resolve(properties["AlarmActions"]) == notified, logical_id
        assert resolve(properties["OKActions"]) == notified, logical_id
        assert properties["AlarmDescription"].strip(), logical_id


def test_the_alarms_an_on_call_engineer_needs_exist(template: Template, stack: Template) -> None:
    metrics = watched(stack)
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "PostingDLQ") in metrics
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "PostingQueue") in metrics
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "PostingDLQ") in metrics
    for function in template.resources_of_type("AWS::Serverless::Function"):
        assert ("AWS/Lambda", "Errors", function) in metrics
        assert ("AWS/Lambda", "Throttles", function) in metrics
    assert {("AWS/DynamoDB", m, "LedgerTable") for m in ("WriteThrottleEvents", "ReadThrottleEvents")} <= metrics
    namespace = template.function_globals()["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    assert {(namespace, "Undecided", "posting"), (namespace, "ReturnedToQueue", "posting")} <= metrics
    rule_name = template.properties("ResultsAuditRule")["Name"]["Fn::Sub"]
    assert ("AWS/Events", "FailedInvocations", rule_name) in metrics


def test_the_audit_rule_retries_and_dead_letters(template: Template) -> None:
    (target,) = template.properties("ResultsAuditRule")["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["ResultsDLQ", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600


def test_the_dashboard_shows_what_the_runbook_relies_on(stack: Template) -> None:
    (dashboard_id,) = stack.resources_of_type("AWS::CloudWatch::Dashboard")
    body = json.loads(resolver(stack).resolve(stack.properties(dashboard_id)["DashboardBody"]))
    text = json.dumps(body)
    for needle in (
        '"Posted"',
        'MetricName=\\"Rejected\\"',  # the by-reason SEARCH expression
        '"Duration", "FunctionName", "PostFunction-ref"',
        '"EmitFunction-ref"',
        '"ApproximateAgeOfOldestMessage", "QueueName", "PostingQueue-name"',
        '"Undecided"',
        '"ReturnedToQueue"',
        '"ApproximateNumberOfMessagesVisible", "QueueName", "PostingDLQ-name"',
        '"ExecutionsFailed"',
        '"ConsumedWriteCapacityUnits"',
        '"WriteThrottleEvents"',
    ):
        assert needle in text, needle


def test_prod_deploys_refuse_to_run_without_an_alarm_topic() -> None:
    makefile = (ROOT / "Makefile").read_text()
    deploy = makefile.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    assert "posting_cli.deploy_check" in deploy
    from posting_cli.deploy_check import DeployCheckError, check_config_env

    topic = "arn:aws:sns:us-east-1:123456789012:posting-alarms"
    config = {
        "prod": {"deploy": {"parameters": {"parameter_overrides": "LogLevel=WARNING"}}},
        "default": {"deploy": {"parameters": {"parameter_overrides": "LogLevel=INFO"}}},
    }
    check_config_env(config, "default")  # dev may run without a topic
    with pytest.raises(DeployCheckError, match="AlarmTopicArn"):
        check_config_env(config, "prod")
    config["prod"]["deploy"]["parameters"]["parameter_overrides"] = "LogLevel=WARNING AlarmTopicArn=not-an-arn"
    with pytest.raises(DeployCheckError, match="AlarmTopicArn"):
        check_config_env(config, "prod")
    config["prod"]["deploy"]["parameters"]["parameter_overrides"] = f"LogLevel=WARNING AlarmTopicArn={topic}"
    check_config_env(config, "prod")
    check_config_env(config, "prod", extra_overrides=[f"AlarmTopicArn={topic}"])
    config["prod"]["deploy"]["parameters"]["parameter_overrides"] = "LogLevel=WARNING"
    check_config_env(config, "prod", extra_overrides=[f"AlarmTopicArn={topic}"])
    # A subscriber on the stack's own topic is enough.
    check_config_env(config, "prod", extra_overrides=["AlarmSubscriptionEndpoint=payments-oncall@example.com"])


# The local stack keeps working with the template's new resource types ---------------------------


def test_the_local_stack_skips_what_it_cannot_create_and_resolves_the_rest(template: Template) -> None:
    from posting_cli.local.stack import LocalStack

    created = set(LocalStack(template)._creators())
    for logical_id in template.dependency_order():
        if not template.is_created(logical_id) or template.resources[logical_id]["Type"] not in created:
            continue
        resolver(template).resolve(template.properties(logical_id))  # raises on an unsupported function
    outputs = {k: resolver(template).resolve(o["Value"]) for k, o in template.body["Outputs"].items()}
    assert outputs["KeyArn"] == "arn:aws:test:::PostingKey"


# Direct invocation ------------------------------------------------------------------------------


def test_each_function_answers_only_its_one_caller(translated: dict[str, Any]) -> None:
    """After the transform: a Deny on lambda:InvokeFunction for every principal but the legitimate caller."""
    functions = resources_of(translated, "AWS::Lambda::Function")
    policies = resources_of(translated, "AWS::Lambda::ResourcePolicy")
    assert not resources_of(translated, "AWS::Lambda::Permission")  # it would be overwritten by the policies
    callers = {}
    for logical_id, policy in policies.items():
        (function,) = [f for f in functions if policy["Properties"]["ResourceArn"] == {"Fn::GetAtt": [f, "Arn"]}]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        (invoke,) = [s for s in statements if isinstance(s, dict) and s.get("Action") == "lambda:InvokeFunction"]
        assert (invoke["Effect"], invoke["Principal"]) == ("Deny", "*"), logical_id
        assert invoke["Resource"] == {"Fn::GetAtt": [function, "Arn"]}
        callers[function] = invoke["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]["Fn::GetAtt"][0]
    assert callers == {
        "ValidateFunction": "StateMachineRole",
        "PostFunction": "StateMachineRole",
        "EmitFunction": "StateMachineRole",
        "SweepFunction": "SweepScheduleRole",
    }
    # The callers really are the workflow's and the schedule's roles.
    (machine,) = resources_of(translated, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["RoleArn"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}
    (schedule,) = resources_of(translated, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["Target"]["RoleArn"] == {"Fn::GetAtt": ["SweepScheduleRole", "Arn"]}
    assert schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": ["SweepFunction", "Arn"]}


def test_with_a_deployment_role_nobody_else_changes_a_function() -> None:
    template = Template.load(ROOT / "template.yaml", overrides={"DeploymentRoleArn": DEPLOYER})
    for policy_id in template.resources_of_type("AWS::Lambda::ResourcePolicy"):
        document = resolver(template).resolve(template.properties(policy_id)["PolicyDocument"])
        (change,) = [s for s in document["Statement"] if s["Sid"] == "OnlyTheDeploymentRoleChangesIt"]
        assert {"lambda:UpdateFunctionCode", "lambda:PutResourcePolicy", "lambda:PublishVersion"} <= set(
            change["Action"]
        )
        assert change["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": DEPLOYER}}


def test_the_schedule_may_invoke_exactly_the_sweeper(template: Template) -> None:
    resolve = resolver(template).resolve
    (policy,) = template.properties("SweepScheduleRole")["Policies"]
    (statement,) = resolve(policy["PolicyDocument"])["Statement"]
    name = resolve(template.properties("SweepFunction")["FunctionName"])
    assert statement["Resource"] == f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"
    assert "*" not in statement["Resource"]


# Roles: bounded, named ----------------------------------------------------------------------------


def test_every_role_the_stack_creates_carries_the_boundary(translated: dict[str, Any]) -> None:
    roles = resources_of(translated, "AWS::IAM::Role")
    assert len(roles) >= 8
    boundary = {"Fn::If": ["HasBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]}
    for logical_id, role in roles.items():
        assert role["Properties"]["PermissionsBoundary"] == boundary, logical_id
        assert role["Properties"]["RoleName"]["Fn::Sub"].startswith("${AWS::StackName}-${AWS::Region}-"), logical_id


# The key ----------------------------------------------------------------------------------------


def key_statements(overrides: dict[str, str]) -> dict[str, dict[str, Any]]:
    template = Template.load(ROOT / "template.yaml", overrides=overrides)
    policy = resolver(template).resolve(template.properties("PostingKey")["KeyPolicy"])
    return {s["Sid"]: s for s in policy["Statement"]}


def test_the_key_policy_holds_every_statement_cloudtrails_guide_requires() -> None:
    """AWS's "Configure AWS KMS key policies for CloudTrail", statement by statement, for this trail."""
    statements = key_statements({})
    trail = f"arn:aws:cloudtrail:{REGION}:{ACCOUNT_ID}:trail/posting-local-data-events"
    cloudtrail = {"Service": "cloudtrail.amazonaws.com"}
    encrypt = statements["CloudTrailEncryptsThisTrailsLogs"]
    assert (encrypt["Principal"], encrypt["Action"]) == (cloudtrail, "kms:GenerateDataKey*")
    assert encrypt["Condition"] == {
        "StringEquals": {"aws:SourceArn": trail},
        "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{ACCOUNT_ID}:trail/*"},
    }
    # DescribeKey requests carry no encryption context: a context condition would refuse them.
    describe = statements["CloudTrailDescribesTheKey"]
    assert (describe["Principal"], describe["Action"]) == (cloudtrail, "kms:DescribeKey")
    assert describe["Condition"] == {"StringEquals": {"aws:SourceArn": trail}}
    # The bucket uses an S3 Bucket Key: creating or updating the trail needs kms:Decrypt.
    decrypt = statements["CloudTrailDecryptsForTheBucketKey"]
    assert (decrypt["Principal"], decrypt["Action"]) == (cloudtrail, "kms:Decrypt")
    assert decrypt["Condition"] == {"StringEquals": {"aws:SourceArn": trail}}
    template = Template.load(ROOT / "template.yaml")
    rule = template.properties("TrailBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert rule["BucketKeyEnabled"] is True
    trail_name = resolver(template).resolve(template.properties("PostingDataTrail")["TrailName"])
    assert trail.endswith(f":trail/{trail_name}")
    # Log readers decrypt with the trail's encryption context only.
    readers = key_statements({"TrailReaderPrincipalArns": "arn:aws:iam::123456789012:role/security-audit"})
    reader = readers["TrailReadersDecryptLogFiles"]
    assert reader["Action"] == "kms:Decrypt"
    assert reader["Condition"]["Null"] == {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}
    assert reader["Condition"]["ArnLike"] == {"aws:PrincipalArn": ["arn:aws:iam::123456789012:role/security-audit"]}
    assert "TrailReadersDecryptLogFiles" not in statements


def test_key_users_are_named_and_key_administrators_alone_take_the_key_away() -> None:
    admin = "arn:aws:iam::123456789012:role/key-administrator"
    statements = key_statements({"KeyAdministratorArns": admin, "DeploymentRoleArn": DEPLOYER})
    users = set(statements["UseThroughThePipelinesServices"]["Condition"]["ArnLike"]["aws:PrincipalArn"])
    roles = {
        f"arn:aws:iam::{ACCOUNT_ID}:role/posting-local-{REGION}-{n}"
        for n in ("validate", "post", "emit", "workflow", "pipe", "sweep")
    }
    assert users == roles  # no operators, producers or smoke test named: the stack's roles only
    away = statements["OnlyKeyAdministratorsDisableOrDeleteTheKey"]
    assert (away["Effect"], away["Principal"]) == ("Deny", "*")
    assert {"kms:ScheduleKeyDeletion", "kms:DisableKey"} <= set(away["Action"])
    assert away["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [admin]}}
    rewrite = statements["OnlyKeyAdministratorsAndTheDeploymentRoleRewriteThePolicy"]
    assert rewrite["Action"] == "kms:PutKeyPolicy"
    assert rewrite["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [admin, DEPLOYER]}}
    # The administering statement grants no use of the key.
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"} & set(statements["AdministerThroughIam"]["Action"])
    # Every role the key-use statement names is a role of the stack, by the name the stack gives it.
    template = Template.load(ROOT / "template.yaml")
    names = {
        resolver(template).resolve(template.properties(r)["RoleName"])
        for r in template.resources_of_type("AWS::IAM::Role")
    }
    assert {arn.rsplit("/", 1)[1] for arn in roles} <= names


# Alarms reach someone ---------------------------------------------------------------------------


def test_the_alarm_topic_is_encrypted_subscribed_and_published_to_by_this_stacks_alarms(template: Template) -> None:
    topic = template.properties("AlarmTopic")
    assert topic["KmsMasterKeyId"] == {
        "Fn::If": ["CreateKey", {"Fn::GetAtt": ["PostingKey", "Arn"]}, {"Ref": "KmsKeyArn"}]
    }
    subscription = template.resources["AlarmSubscription"]
    assert subscription["Condition"] == "SubscribeToAlarms"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmSubscriptionEndpoint"}
    assert set(template.body["Parameters"]["AlarmSubscriptionProtocol"]["AllowedValues"]) == {"email", "https"}
    statements = resolved_statements(template, "AlarmTopicPolicy")
    publish = statements["CloudWatchPublishesThisStacksAlarms"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert (
        publish["Condition"]["ArnLike"]["aws:SourceArn"]
        == f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:posting-local-*"
    )
    key = key_statements({})["CloudWatchPublishesThisStacksAlarms"]
    assert key["Condition"] == publish["Condition"]


def test_prod_refuses_to_deploy_without_a_subscriber_a_boundary_or_a_deployment_role(template: Template) -> None:
    rules = template.body["Rules"]
    prod = {"Fn::Equals": [{"Ref": "Environment"}, "prod"]}
    alarms = rules["ProdAlarmsReachSomeone"]
    assert alarms["RuleCondition"] == prod
    (assertion,) = alarms["Assertions"]
    assert assertion["Assert"] == {
        "Fn::Or": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmSubscriptionEndpoint"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
        ]
    }
    bounded = [a["Assert"] for a in rules["ProdIsDeployedThroughABoundedServiceRole"]["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "PermissionsBoundaryArn"}, ""]}]} in bounded
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "DeploymentRoleArn"}, ""]}]} in bounded
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert "Environment=prod" in config["prod"]["deploy"]["parameters"]["parameter_overrides"]


def test_the_new_alarms_watch_what_the_runbook_names(stack: Template) -> None:
    metrics = watched(stack)
    for metric in ("ExecutionFailed", "TargetStageFailed", "ExecutionThrottled"):
        assert ("AWS/EventBridge/Pipes", metric, "PostingPipe") in metrics
    assert ("AWS/States", "ExecutionThrottled", "PostingStateMachine") in metrics
    sweeper = stack.properties("SweeperNotRunningAlarm")
    assert (sweeper["MetricName"], sweeper["ComparisonOperator"], sweeper["Threshold"]) == (
        "Invocations",
        "LessThanThreshold",
        1,
    )
    assert sweeper["TreatMissingData"] == "breaching"
    system_errors = stack.properties("LedgerSystemErrorsAlarm")["Metrics"]
    operations = {m["MetricStat"]["Metric"]["Dimensions"][1]["Value"] for m in system_errors if "MetricStat" in m}
    assert {"TransactWriteItems", "GetItem", "BatchGetItem", "Query"} <= operations
    conflicts = stack.properties("LedgerTransactionConflictAlarm")["Metrics"]
    assert {m["MetricStat"]["Metric"]["MetricName"] for m in conflicts if "MetricStat" in m} == {
        "TransactionConflict",
        "SuccessfulRequestLatency",
    }
    drop = stack.properties("TrafficDropAlarm")
    assert drop["ComparisonOperator"] == "LessThanLowerThreshold"
    (band,) = [m for m in drop["Metrics"] if m["Id"] == drop["ThresholdMetricId"]]
    assert band["Expression"].startswith("ANOMALY_DETECTION_BAND(")
    for environment, no_data in (("dev", "notBreaching"), ("prod", "breaching")):  # in prod, silence is a drop
        deployed = Template.load(ROOT / "template.yaml", overrides={"Environment": environment}).flattened()
        assert resolver(deployed).resolve(deployed.properties("TrafficDropAlarm")["TreatMissingData"]) == no_data


def test_post_has_reserved_concurrency_as_a_parameter(template: Template) -> None:
    assert template.properties("PostFunction")["ReservedConcurrentExecutions"] == {
        "Fn::If": ["ReservePostConcurrency", {"Ref": "PostReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    }
    assert not Template.load(ROOT / "template.yaml").condition("ReservePostConcurrency")
    assert Template.load(ROOT / "template.yaml", overrides={"PostReservedConcurrency": "20"}).condition(
        "ReservePostConcurrency"
    )


def test_every_log_group_masks_payment_data(template: Template) -> None:
    groups = template.resources_of_type("AWS::Logs::LogGroup")
    assert len(groups) >= 8
    for logical_id in groups:
        policy = template.properties(logical_id)["DataProtectionPolicy"]
        identifiers = {i["Fn::Sub"].rsplit("/", 1)[1] for s in policy["Statement"] for i in s["DataIdentifier"]}
        assert "CreditCardNumber" in identifiers, logical_id
        assert any("Deidentify" in s["Operation"] for s in policy["Statement"]), logical_id


def test_the_trails_files_are_locked_in_compliance_mode_by_default(template: Template) -> None:
    rule = template.properties("TrailBucket")["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert rule["Mode"] == {"Ref": "TrailObjectLockMode"}
    assert template.parameters["TrailObjectLockMode"] == "COMPLIANCE"
    assert rule["Days"] >= 365


def test_the_trail_reaches_cloudwatch_logs_and_an_access_denied_alarm_when_asked() -> None:
    off = Template.load(ROOT / "template.yaml").flattened()
    on = Template.load(ROOT / "template.yaml", overrides={"TrailToCloudWatchLogs": "true"}).flattened()
    for logical_id in ("TrailLogGroup", "TrailLogsRole", "AccessDeniedMetricFilter", "AccessDeniedAlarm"):
        assert not off.is_created(logical_id) and on.is_created(logical_id), logical_id
    trail = resolver(on).resolve(on.properties("PostingDataTrail"))
    assert trail["CloudWatchLogsLogGroupArn"] == "arn:aws:test:::TrailLogGroup"
    assert trail["CloudWatchLogsRoleArn"] == "arn:aws:test:::TrailLogsRole"
    pattern = on.properties("AccessDeniedMetricFilter")["FilterPattern"]
    assert '$.errorCode = "AccessDenied*"' in pattern
    (counted,) = on.properties("AccessDeniedMetricFilter")["MetricTransformations"]
    alarm = on.properties("AccessDeniedAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == (counted["MetricNamespace"], counted["MetricName"])
    assert alarm["Dimensions"] == [{"Name": d["Key"], "Value": d["Value"]} for d in counted["Dimensions"]]


def test_the_pipe_decrypts_the_queue_only_through_sqs(template: Template) -> None:
    policies = {p["PolicyName"]: p["PolicyDocument"] for p in template.properties("PipeRole")["Policies"]}
    (statement,) = resolver(template).resolve(policies["decrypt-posting-queue"])["Statement"]
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": f"sqs.{REGION}.amazonaws.com"}}
