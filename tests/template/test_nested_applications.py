"""The nested applications under templates/: how template.yaml nests them, and the reading of the whole
stack as one template (`Template.flattened`) that the checks of alarms, dashboard and costs rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from posting_cli.local.template import Resolver, Template, TemplateError

ROOT = Path(__file__).resolve().parents[2]


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
