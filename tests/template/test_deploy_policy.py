"""The GitHub deploy role's policies (deploy/): valid, no wildcard actions, scoped to this project's stacks.

The role is what a leaked workflow token could use, so every statement is checked here rather than
trusted: actions are named one by one, and resources name the stacks' own prefix except for the
few actions AWS only grants on "*".
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from posting_cli.local.template import Template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_POLICY = ROOT / "deploy" / "github-deploy-policy.json"
TRUST_POLICY = ROOT / "deploy" / "github-oidc-trust-policy.json"

# Outside facts: actions that do not support resource-level permissions (IAM service authorization
# reference), and the inline-policy size limit of a role (managed policies stop at 6,144).
ACTIONS_ONLY_ON_STAR = {
    "cloudformation:ValidateTemplate",
    "logs:PutResourcePolicy",
    "logs:DeleteResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "kms:CreateKey",
}
# KMS names keys by a random id: statements on keys are scoped by the stack-name tag CloudFormation
# puts on every key it creates instead of by ARN.
KEY_ARN = "arn:aws:kms:*:ACCOUNT_ID:key/*"
STACK_TAG = "aws:ResourceTag/aws:cloudformation:stack-name"
INLINE_POLICY_LIMIT = 10_240
# The IAM service each resource type of the template is created through.
SERVICE_OF_TYPE = {
    "AWS::DynamoDB::": "dynamodb",
    "AWS::SQS::": "sqs",
    "AWS::Serverless::Function": "lambda",
    "AWS::Serverless::LayerVersion": "lambda",
    "AWS::Lambda::": "lambda",
    "AWS::Serverless::StateMachine": "states",
    "AWS::StepFunctions::": "states",
    "AWS::Pipes::": "pipes",
    "AWS::Events::": "events",
    "AWS::EventSchemas::": "schemas",
    "AWS::Logs::": "logs",
    "AWS::CloudWatch::": "cloudwatch",
    "AWS::IAM::": "iam",
    "AWS::KMS::": "kms",
    "AWS::S3::": "s3",
    "AWS::CloudTrail::": "cloudtrail",
}


def statements(path: Path) -> list[dict[str, Any]]:
    document = json.loads(path.read_text())
    assert document["Version"] == "2012-10-17"
    return document["Statement"]


def as_list(value: Any) -> list[str]:
    return value if isinstance(value, list) else [value]


def stack_prefix() -> str:
    """What every stack name in samconfig.toml starts with (posting-pipeline-dev, -prod...)."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    names = [env["global"]["parameters"]["stack_name"] for env in config.values() if isinstance(env, dict)]
    prefix = os.path.commonprefix(names)  # noqa: RUF071 - stack names, compared as strings on purpose
    assert len(prefix) >= 8, names
    return prefix


def test_the_policies_are_valid_and_small_enough_to_be_inline():
    for path in (DEPLOY_POLICY, TRUST_POLICY):
        assert all(s["Effect"] == "Allow" for s in statements(path))
    compact = json.dumps(json.loads(DEPLOY_POLICY.read_text()), separators=(",", ":"))
    assert len(compact) <= INLINE_POLICY_LIMIT


def test_no_wildcard_actions():
    for statement in statements(DEPLOY_POLICY):
        for action in as_list(statement["Action"]):
            service, _, name = action.partition(":")
            assert service and name and "*" not in action, action


def test_resources_are_scoped_to_the_stacks_prefix_or_are_the_few_that_only_take_star(template: Template):
    prefix = stack_prefix()
    # Resources CloudFormation names after their logical id rather than the stack (no Name property).
    generated = {f"{logical_id}-*" for logical_id in template.resources}
    # SAM names a layer after its logical id when it has no LayerName.
    generated |= {
        f":layer:{logical_id}{version}"
        for logical_id in template.resources_of_type("AWS::Serverless::LayerVersion")
        for version in ("", ":*")
    }
    sam_managed = (
        "aws-sam-cli-managed-default",  # the artifact bucket sam deploy --resolve-s3 manages
        ":changeSet/samcli-deploy",  # the change sets sam deploy names
        ":aws:transform/Serverless-2016-10-31",
    )
    for statement in statements(DEPLOY_POLICY):
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(as_list(statement["Action"])) <= ACTIONS_ONLY_ON_STAR, statement["Sid"]
                continue
            assert resource.startswith("arn:aws:"), resource
            if resource == KEY_ARN:
                assert statement["Condition"]["StringLike"][STACK_TAG] == f"{prefix}*", statement["Sid"]
                continue
            assert (
                f"/{prefix}*" in resource
                or f":{prefix}*" in resource
                or any(resource.endswith(pattern) for pattern in generated)
                or any(part in resource for part in sam_managed)
            ), f"{statement['Sid']}: {resource} is not scoped to {prefix}*"


def test_roles_are_passed_only_to_the_services_that_run_the_stack():
    [pass_role] = [s for s in statements(DEPLOY_POLICY) if "iam:PassRole" in as_list(s["Action"])]
    assert pass_role["Condition"]["StringEquals"]["iam:PassedToService"]


def test_every_service_the_template_uses_has_deploy_permissions(template: Template):
    granted = {action.split(":")[0] for s in statements(DEPLOY_POLICY) for action in as_list(s["Action"])}
    for logical_id, resource in template.resources.items():
        services = [service for prefix, service in SERVICE_OF_TYPE.items() if resource["Type"].startswith(prefix)]
        assert services, f"{logical_id}: {resource['Type']} is new here: add its deploy permissions to {DEPLOY_POLICY}"
        assert services[0] in granted, f"{logical_id}: the deploy policy grants nothing on {services[0]}"


@pytest.mark.parametrize("key", ["token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"])
def test_only_this_repositorys_deploy_environment_may_assume_the_role(key):
    [statement] = statements(TRUST_POLICY)
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(":oidc-provider/token.actions.githubusercontent.com")
    value = statement["Condition"]["StringEquals"][key]
    assert "*" not in value
    if key.endswith(":sub"):
        assert value.startswith("repo:") and value.endswith(":environment:dev")
