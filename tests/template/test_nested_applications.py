"""The nested applications under templates/: how template.yaml nests them, and the reading of the whole
stack as one template (`Template.flattened`) that the checks of alarms, dashboard and costs rely on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

from posting_cli.local.template import Resolver, Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]


def test_nested_applications_are_the_plain_cloudformation_templates_under_templates(template: Template) -> None:
    """`make lint` lints and scans templates/*.yaml as they are: every nested template is one of them,
    with no transform to expand first. The parent passes every parameter (none has a default), so a
    parameter it forgets fails the deploy instead of taking a value nobody chose."""
    nested = template.nested()
    assert (
        set(nested) == set(template.resources_of_type("AWS::Serverless::Application")) == {"EventSchemas", "Monitoring"}
    )
    assert {child.path for child in nested.values()} == set((ROOT / "templates").glob("*.yaml"))
    for logical_id, child in nested.items():
        assert "Transform" not in child.body, logical_id
        declared = child.body["Parameters"]
        assert set(declared) == set(template.properties(logical_id)["Parameters"]), logical_id
        assert [name for name, spec in declared.items() if "Default" in spec] == [], logical_id


def test_every_deploy_acknowledges_the_nested_applications() -> None:
    """SAM CLI refuses to deploy nested applications without CAPABILITY_AUTO_EXPAND."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "dev", "prod"):
        assert "CAPABILITY_AUTO_EXPAND" in config[env]["deploy"]["parameters"]["capabilities"].split(), env


def test_the_alarms_and_the_dashboard_live_in_the_monitoring_template(template: Template, stack: Template) -> None:
    observability = {"AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard"}
    assert not [r for r, resource in template.resources.items() if resource["Type"] in observability]
    monitoring = template.nested()["Monitoring"]
    assert {resource["Type"] for resource in monitoring.resources.values()} == observability
    assert len(stack.resources_of_type("AWS::CloudWatch::Alarm")) == len(monitoring.resources) - 1 >= 30


def test_the_nested_alarms_are_named_after_the_stack_so_its_topic_takes_them(template: Template) -> None:
    """CloudFormation names an alarm with no AlarmName <nested stack>-<logical id>-<suffix>, and a nested
    stack's name starts with its parent's: the topic policy's alarm:<stack>-* admits exactly those."""
    monitoring = template.nested()["Monitoring"]
    for logical_id in monitoring.resources_of_type("AWS::CloudWatch::Alarm"):
        assert "AlarmName" not in monitoring.properties(logical_id), logical_id
    (publish,) = [
        s
        for s in template.properties("AlarmTopicPolicy")["PolicyDocument"]["Statement"]
        if s["Sid"] == "CloudWatchPublishesThisStacksAlarms"
    ]
    assert publish["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"].endswith(":alarm:${AWS::StackName}-*")


def test_the_dashboard_and_the_registry_take_names_no_earlier_version_of_the_stack_used(stack: Template) -> None:
    """A stack updated from a template that held them itself deletes the old ones only after the nested
    stack has created the new ones: the same name would be taken (the registry) or deleted from under
    the nested stack (a dashboard, which PutDashboard overwrites)."""
    resolver = Resolver(stack)
    for logical_id in stack.resources:
        resolver.skip(logical_id)
    assert resolver.resolve(stack.properties("PostingDashboard")["DashboardName"]) == "posting-local-pipeline"
    assert resolver.resolve(stack.properties("EventSchemaRegistry")["RegistryName"]) == "posting-local-results"


def test_the_ledger_index_alarm_watches_every_index_of_the_table(stack: Template) -> None:
    indexes = {index["IndexName"] for index in stack.properties("LedgerTable")["GlobalSecondaryIndexes"]}
    metrics = stack.properties("LedgerIndexWriteThrottleAlarm")["Metrics"]
    watched = {
        dimension["Value"]
        for query in metrics
        if "MetricStat" in query
        for dimension in query["MetricStat"]["Metric"]["Dimensions"]
        if dimension["Name"] == "GlobalSecondaryIndexName"
    }
    assert watched == indexes


# Template.flattened -----------------------------------------------------------------------------------


def write(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    (tmp_path / "templates").mkdir()
    write(
        tmp_path / "templates" / "child.yaml",
        {
            "Parameters": {
                "QueueName": {"Type": "String"},
                "Actions": {"Type": "CommaDelimitedList"},
                "Watch": {"Type": "String", "AllowedValues": ["true", "false"]},
            },
            "Conditions": {"Watching": {"Fn::Equals": [{"Ref": "Watch"}, "true"]}},
            "Resources": {
                "Alarm": {
                    "Type": "AWS::CloudWatch::Alarm",
                    "Condition": "Watching",
                    "Properties": {
                        "Dimensions": [{"Name": "QueueName", "Value": {"Ref": "QueueName"}}],
                        "AlarmActions": {"Ref": "Actions"},
                        "AlarmDescription": {"Fn::Sub": "${QueueName} in ${AWS::Region}"},
                    },
                }
            },
            "Outputs": {"AlarmName": {"Value": {"Ref": "Alarm"}}},
        },
    )
    return write(
        tmp_path / "template.yaml",
        {
            "Parameters": {"Mode": {"Type": "String", "Default": "on"}},
            "Conditions": {"On": {"Fn::Equals": [{"Ref": "Mode"}, "on"]}},
            "Resources": {
                "Queue": {"Type": "AWS::SQS::Queue"},
                "Topic": {"Type": "AWS::SNS::Topic"},
                "Child": {
                    "Type": "AWS::Serverless::Application",
                    "Properties": {
                        "Location": "templates/child.yaml",
                        "Parameters": {
                            "QueueName": {"Fn::GetAtt": ["Queue", "QueueName"]},
                            "Actions": {"Fn::Join": [",", [{"Ref": "Topic"}, "arn:aws:sns:us-east-1:1:more"]]},
                            "Watch": {"Fn::If": ["On", "true", "false"]},
                        },
                    },
                },
            },
            "Outputs": {"Alarm": {"Value": {"Fn::GetAtt": ["Child", "Outputs.AlarmName"]}}},
        },
    )


def test_a_flattened_template_wires_the_nested_resources_to_what_the_parent_passes(parent: Path) -> None:
    stack = Template.load(parent).flattened()
    assert set(stack.resources) == {"Queue", "Topic", "Alarm"}
    alarm = stack.properties("Alarm")
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}]
    assert stack.body["Outputs"]["Alarm"]["Value"] == {"Ref": "Alarm"}
    resolver = Resolver(stack)
    resolver.provide("Queue", "https://queue", QueueName="the-queue")
    resolver.provide("Topic", "arn:aws:sns:us-east-1:1:topic")
    assert resolver.resolve(alarm["AlarmActions"]) == ["arn:aws:sns:us-east-1:1:topic", "arn:aws:sns:us-east-1:1:more"]
    assert resolver.resolve(alarm["AlarmDescription"]) == "the-queue in us-east-1"
    assert stack.is_created("Alarm")
    assert not Template.load(parent, overrides={"Mode": "off"}).flattened().is_created("Alarm")


def test_a_nested_template_that_does_not_fit_its_parent_is_refused(parent: Path) -> None:
    child = parent.parent / "templates" / "child.yaml"
    body = yaml.safe_load(child.read_text())
    write(child, {**body, "Parameters": {**body["Parameters"], "Extra": {"Type": "String"}}})
    with pytest.raises(TemplateError, match="declares"):
        Template.load(parent).flattened()
    write(child, {**body, "Conditions": {"On": {"Fn::Equals": ["a", "b"]}, **body["Conditions"]}})
    with pytest.raises(TemplateError, match="Condition On, differently"):
        Template.load(parent).flattened()
    write(child, {**body, "Resources": {**body["Resources"], "Queue": {"Type": "AWS::SQS::Queue"}}})
    with pytest.raises(TemplateError, match="both declare Queue"):
        Template.load(parent).flattened()
    named = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Fn::Sub": "${AWS::StackName}-x"}}}
    write(child, {**body, "Resources": {**body["Resources"], "Named": named}})
    with pytest.raises(TemplateError, match="names things after its own stack"):
        Template.load(parent).flattened()
