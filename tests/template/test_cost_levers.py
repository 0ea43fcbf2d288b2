"""The levers that cut the bill without changing what the pipeline does or records for anyone else:
the trail leaves out the pipeline's own roles, X-Ray samples the workflow at a stated rate, Lambda logs
in JSON without its own lines, the memory the measurements choose, and provisioned capacity with auto
scaling offered behind CapacityMode. `make cost` prices each (tools/posting_cli/bench/cost.py).
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

import pytest

from posting_cli.local.template import ACCOUNT_ID, REGION, Resolver, Template

ROOT = Path(__file__).resolve().parents[2]
OPERATOR = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_oncall_*"
PRODUCER = "arn:aws:iam::210987654321:role/payments-gateway"
DEPLOYER = "arn:aws:iam::123456789012:role/posting-deploy/posting-deploy-cloudformation"
SMOKE = "arn:aws:iam::123456789012:role/posting-deploy/posting-deploy-smoke"
# The roles the pipeline runs as: the pipe, the steps, the workflow, the sweeper and its schedule.
PIPELINE_ROLES = {
    "PipeRole",
    "ValidateRole",
    "PostRole",
    "EmitRole",
    "SweepRole",
    "StateMachineRole",
    "SweepScheduleRole",
}
# What CloudTrail's data events record on the resources the trail selects.
DATA_ACTIONS = ("dynamodb:", "sqs:", "lambda:InvokeFunction")
CLOUDTRAIL_VALUES_PER_TRAIL = 500  # the most values all of a trail's advanced event selectors may hold


def resolver(template: Template) -> Resolver:
    """Every resource a placeholder (its Ref "local-<id>"): what the tests read is names and structure."""
    resolving = Resolver(template)
    for logical_id in template.resources:
        resolving.skip(logical_id)
    return resolving


def data_selectors(template: Template) -> list[dict[str, Any]]:
    (trail_id,) = template.resources_of_type("AWS::CloudTrail::Trail")
    selectors = resolver(template).resolve(template.properties(trail_id)["AdvancedEventSelectors"])
    return [s for s in selectors if {"Field": "eventCategory", "Equals": ["Data"]} in s["FieldSelectors"]]


def left_out(selector: dict[str, Any]) -> list[str]:
    (field,) = [f for f in selector["FieldSelectors"] if f["Field"] == "userIdentity.arn"]
    assert set(field) == {"Field", "NotStartsWith"}
    values: list[str] = field["NotStartsWith"]
    return values


def assumed_role_prefix(template: Template, role: str) -> str:
    name = Resolver(template).resolve(template.properties(role)["RoleName"])
    return f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{name}/"


# The trail --------------------------------------------------------------------------------------


def test_every_data_selector_leaves_out_exactly_the_pipelines_own_roles(template: Template) -> None:
    expected = {assumed_role_prefix(template, role) for role in PIPELINE_ROLES}
    selectors = data_selectors(template)
    assert {s["Name"] for s in selectors} == {"ledger table data events", "queue data events", "function invocations"}
    for selector in selectors:
        values = left_out(selector)
        assert len(values) == len(set(values))
        assert set(values) == expected, selector["Name"]
        assert all(value.endswith("/") for value in values)  # a longer role name stays recorded


def test_every_role_that_reads_writes_or_invokes_what_the_trail_records_is_one_it_leaves_out(
    template: Template,
) -> None:
    acting = set()
    for logical_id in template.resources_of_type("AWS::IAM::Role"):
        statements = [
            s for p in template.properties(logical_id).get("Policies", []) for s in p["PolicyDocument"]["Statement"]
        ]
        actions = [a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
        if any(action.startswith(DATA_ACTIONS) for action in actions):
            acting.add(logical_id)
    assert {"PipeRole", "PostRole", "EmitRole", "SweepRole", "StateMachineRole", "SweepScheduleRole"} <= acting
    assert acting <= PIPELINE_ROLES


def test_producers_operators_the_smoke_test_and_the_deployer_stay_recorded() -> None:
    template = Template.load(
        ROOT / "template.yaml",
        overrides={
            "ProducerPrincipalArns": PRODUCER,
            "OperatorPrincipalArns": OPERATOR,
            "SmokeTestPrincipalArn": SMOKE,
            "DeploymentRoleArn": DEPLOYER,
        },
    )
    someone_else = [
        "arn:aws:sts::210987654321:assumed-role/payments-gateway/session",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/AWSReservedSSO_oncall_0123/alice@example.com",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/posting-deploy-smoke/github",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/posting-deploy-cloudformation/AWSCloudFormation",
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{template.stack_name}-{REGION}-post-admin/session",
        f"arn:aws:iam::{ACCOUNT_ID}:user/break-glass",
    ]
    for selector in data_selectors(template):
        for arn in someone_else:
            assert not any(arn.startswith(prefix) for prefix in left_out(selector)), (selector["Name"], arn)
    post = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{template.stack_name}-{REGION}-post/posting-post"
    assert all(any(post.startswith(p) for p in left_out(s)) for s in data_selectors(template))


def test_the_selectors_hold_fewer_values_than_cloudtrail_allows(template: Template) -> None:
    (trail_id,) = template.resources_of_type("AWS::CloudTrail::Trail")
    selectors = resolver(template).resolve(template.properties(trail_id)["AdvancedEventSelectors"])
    values = sum(
        len(field[operator])
        for selector in selectors
        for field in selector["FieldSelectors"]
        for operator in ("Equals", "NotEquals", "StartsWith", "NotStartsWith", "EndsWith", "NotEndsWith")
        if operator in field
    )
    assert values <= CLOUDTRAIL_VALUES_PER_TRAIL


# X-Ray --------------------------------------------------------------------------------------------


def test_xray_records_the_stated_share_of_the_workflows_executions(template: Template) -> None:
    (rule_id,) = template.resources_of_type("AWS::XRay::SamplingRule")
    rule = Resolver(template).resolve(template.properties(rule_id)["SamplingRule"])
    machine = Resolver(template).resolve(template.properties("PostingStateMachine")["Name"])
    assert rule["ServiceName"] == machine
    assert rule["ServiceType"] == "AWS::StepFunctions::StateMachine"
    assert rule["ReservoirSize"] == 0
    assert float(rule["FixedRate"]) == float(template.parameters["TraceSampleRate"]) == 0.01
    assert rule["Priority"] < 10_000  # before X-Ray's default rule
    assert all(rule[key] == "*" for key in ("Host", "HTTPMethod", "URLPath", "ResourceARN"))
    # Tracing stays on: the workflow starts the traces, the functions follow its decision.
    assert template.properties("PostingStateMachine")["Tracing"] == {"Enabled": True}
    assert template.function_globals()["Tracing"] == "Active"


def test_the_sampling_rules_name_fits_for_every_configured_stack() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for stack in {env["global"]["parameters"]["stack_name"] for env in config.values() if isinstance(env, dict)}:
        template = Template.load(ROOT / "template.yaml", stack_name=stack)
        (rule_id,) = template.resources_of_type("AWS::XRay::SamplingRule")
        name = Resolver(template).resolve(template.properties(rule_id)["SamplingRule"]["RuleName"])
        assert 1 <= len(name) <= 32  # X-Ray's limit
        assert name.startswith("posting-pipeline-")  # the deploy role's sampling-rule/<prefix>* grant


# Logs ---------------------------------------------------------------------------------------------


def test_every_function_logs_json_without_lambdas_own_lines(translated: dict[str, Any]) -> None:
    functions = {k: r for k, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == 4
    for logical_id, function in functions.items():
        config = function["Properties"]["LoggingConfig"]
        assert config["LogFormat"] == "JSON", logical_id
        assert config["SystemLogLevel"] == "WARN", logical_id
        assert config["ApplicationLogLevel"] == {
            "Fn::FindInMap": ["LambdaApplicationLogLevel", {"Ref": "LogLevel"}, "Level"]
        }
        assert config["LogGroup"] == {"Ref": f"{logical_id.removesuffix('Function')}LogGroup"}


def test_the_audit_log_group_stays_standard_while_a_tool_reads_it_with_filter_log_events(
    template: Template,
) -> None:
    """The Infrequent Access class would halve the audit copy's ingestion, but refuses FilterLogEvents
    (InvalidOperationException), metric and subscription filters, and Live Tail; and a log group's
    class cannot change once it exists."""
    group = template.properties("ResultsLogGroup")
    readers = [path for path in (ROOT / "tools").rglob("*.py") if "filter_log_events" in path.read_text()]
    assert readers  # posting smoke
    assert group.get("LogGroupClass", "STANDARD") == "STANDARD"
    filters = [
        r
        for r in template.resources.values()
        if r["Type"] in ("AWS::Logs::MetricFilter", "AWS::Logs::SubscriptionFilter")
        and r["Properties"]["LogGroupName"] == {"Ref": "ResultsLogGroup"}
    ]
    assert filters == []  # nothing else reads it: the lever waits only on the tools


# Memory -------------------------------------------------------------------------------------------


def test_the_functions_have_the_memory_the_measurements_choose(template: Template) -> None:
    from posting_cli.bench.cost import build_model, chosen_memory_mb

    chosen = chosen_memory_mb(build_model(template=template))
    assert template.function_globals()["MemorySize"] == chosen
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        assert "MemorySize" not in template.properties(logical_id), logical_id


# Capacity -----------------------------------------------------------------------------------------

INDEXES = ("OpenHoldsByExpiry", "UnlimitedAccounts", "ValueDatedLines", "ByExternalRef")


def created(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    resolving = resolver(template)
    return {
        logical_id: resolving.resolve(resource["Properties"])
        for logical_id, resource in template.resources_of_type(resource_type).items()
        if template.is_created(logical_id)
    }


def test_on_demand_is_the_default_and_creates_no_auto_scaling(template: Template) -> None:
    table = resolver(template).resolve(template.properties("LedgerTable"))
    assert template.parameters["CapacityMode"] == "ON_DEMAND"
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in table
    assert all("ProvisionedThroughput" not in index for index in table["GlobalSecondaryIndexes"])
    assert created(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert created(template, "AWS::ApplicationAutoScaling::ScalingPolicy") == {}


@pytest.fixture(scope="module")
def provisioned() -> Template:
    return Template.load(ROOT / "template.yaml", overrides={"CapacityMode": "PROVISIONED"})


def test_provisioned_capacity_is_auto_scaled_for_the_table_and_each_index_reads_and_writes(
    provisioned: Template,
) -> None:
    properties = provisioned.properties("LedgerTable")
    resolver = Resolver(provisioned)
    assert resolver.resolve(properties["BillingMode"]) == "PROVISIONED"
    assert resolver.resolve(properties["ProvisionedThroughput"]) == {
        "ReadCapacityUnits": provisioned.parameters["ProvisionedReadCapacityMin"],
        "WriteCapacityUnits": provisioned.parameters["ProvisionedWriteCapacityMin"],
    }
    for index in resolver.resolve(properties["GlobalSecondaryIndexes"]):
        assert set(index["ProvisionedThroughput"]) == {"ReadCapacityUnits", "WriteCapacityUnits"}
    targets = created(provisioned, "AWS::ApplicationAutoScaling::ScalableTarget")
    scaled = {(t["ResourceId"], t["ScalableDimension"]) for t in targets.values()}
    table = "table/local-LedgerTable"
    resources = [table, *(f"{table}/index/{index}" for index in INDEXES)]
    assert scaled == {
        (resource, f"dynamodb:{'table' if resource == table else 'index'}:{kind}CapacityUnits")
        for resource in resources
        for kind in ("Read", "Write")
    }
    for target in targets.values():
        assert target["ServiceNamespace"] == "dynamodb"
        assert "RoleARN" not in target  # auto scaling's service-linked role
        assert int(target["MinCapacity"]) <= int(target["MaxCapacity"])
    policies = created(provisioned, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert len(policies) == len(targets)
    utilization = float(provisioned.parameters["ProvisionedTargetUtilization"])
    for policy in policies.values():
        assert policy["PolicyType"] == "TargetTrackingScaling"
        configuration = policy["TargetTrackingScalingPolicyConfiguration"]
        assert float(configuration["TargetValue"]) == utilization == 70
    by_target = {
        p["ScalingTargetId"]: p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
        for p in policies.values()
    }
    for logical_id, target in targets.items():
        kind = "Write" if target["ScalableDimension"].endswith("WriteCapacityUnits") else "Read"
        assert by_target[f"local-{logical_id}"]["PredefinedMetricType"] == f"DynamoDB{kind}CapacityUtilization"


def test_provisioned_capacity_has_alarms_before_auto_scaling_runs_out_of_room(provisioned: Template) -> None:
    stack = provisioned.flattened()
    alarms = {
        logical_id: stack.properties(logical_id)
        for logical_id in stack.resources_of_type("AWS::CloudWatch::Alarm")
        if stack.is_created(logical_id)
    }
    for kind in ("Write", "Read"):
        alarm = alarms[f"Ledger{kind}CapacityCeilingAlarm"]
        (consumed,) = [m for m in alarm["Metrics"] if "MetricStat" in m]
        assert consumed["MetricStat"]["Metric"]["MetricName"] == f"Consumed{kind}CapacityUnits"
        (expression,) = [m for m in alarm["Metrics"] if "Expression" in m]
        ceiling = stack.parameters[f"Provisioned{kind}CapacityMax"]
        assert Resolver(stack).resolve(expression["Expression"]) == f"100 * FILL(consumed, 0) / 60 / {ceiling}"
    on_demand = Template.load(ROOT / "template.yaml").flattened()
    assert not on_demand.is_created("LedgerWriteCapacityCeilingAlarm")
    assert {"LedgerWriteThrottleAlarm", "LedgerReadThrottleAlarm", "LedgerIndexWriteThrottleAlarm"} <= set(alarms)


@pytest.mark.parametrize("mode", ["ON_DEMAND", "PROVISIONED"])
def test_only_auto_scaling_s_own_role_joins_the_deployer_in_resizing_the_table(mode: str) -> None:
    template = Template.load(ROOT / "template.yaml", overrides={"CapacityMode": mode, "DeploymentRoleArn": DEPLOYER})
    resolver = Resolver(template)
    for role in ("PostRole", "SweepRole"):
        resolver.provide(role, role, Arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{role}")
    statements = resolver.resolve(template.properties("LedgerTable")["ResourcePolicy"]["PolicyDocument"])["Statement"]
    (reconfigure,) = [s for s in statements if s["Sid"] == "OnlyTheDeploymentRoleAndOperatorsReconfigure"]
    assert "dynamodb:UpdateTable" in reconfigure["Action"]
    exempt = set(reconfigure["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
    service_linked = (
        f"arn:aws:iam::{ACCOUNT_ID}:role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"
    )
    assert (service_linked in exempt) is (mode == "PROVISIONED")
    assert exempt - {service_linked} == {DEPLOYER}
    assert not any(fnmatch.fnmatchcase(f"arn:aws:iam::{ACCOUNT_ID}:role/someone", p) for p in exempt)
