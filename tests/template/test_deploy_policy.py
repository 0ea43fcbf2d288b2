"""The deploy identities (deploy/bootstrap.yaml) and the service control policy (deploy/scp.json).

The GitHub deploy role is what a leaked workflow token could use: it may only hand change sets to
CloudFormation's own role. That role is tested against what CloudFormation really needs: for every
resource type of the SAM-translated template, the permissions its resource handler lists (the
registry schemas cfn-lint ships), less the few a documented reason leaves out. Every role a stack
creates carries the boundary, and the boundary leaves every role its actions.
"""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from posting_cli.local.template import ACCOUNT_ID, Resolver, Template

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = ROOT / "deploy" / "bootstrap.yaml"
SCP = ROOT / "deploy" / "scp.json"
SCP_SIZE_LIMIT = 5_120  # characters, Organizations' limit for a service control policy
MANAGED_POLICY_LIMIT = 6_144  # characters, without white space

# Handler permissions CloudFormation's role is not given, by resource type, and why. A handler lists
# every permission any property of its type may need; these serve properties the template never sets.
NOT_NEEDED = {
    "AWS::CloudTrail::Trail": {
        "iam:CreateServiceLinkedRole": "organization trails only",
        "organizations:DescribeOrganization": "organization trails only",
        "organizations:ListAWSServiceAccessForOrganization": "organization trails only",
        "CloudTrail:PutInsightSelectors": "no CloudTrail Insights",
        "CloudTrail:PutEventConfiguration": "no event configuration (aggregations, context keys)",
    },
    "AWS::DynamoDB::Table": {
        "dynamodb:AssociateTableReplica": "no global table",
        "dynamodb:CreateTableReplica": "no global table",
        "dynamodb:ImportTable": "no import from S3",
        "dynamodb:DescribeImport": "no import from S3",
        "dynamodb:EnableKinesisStreamingDestination": "no Kinesis stream",
        "dynamodb:DisableKinesisStreamingDestination": "no Kinesis stream",
        "dynamodb:UpdateKinesisStreamingDestination": "no Kinesis stream",
        "dynamodb:UpdateContributorInsights": "no Contributor Insights",
        "kinesis:DescribeStream": "no Kinesis stream",
        "kinesis:PutRecords": "no Kinesis stream",
        "iam:CreateServiceLinkedRole": "replicas and Contributor Insights only",
        "dynamodb:BatchWriteItem": "items are the pipeline's (import only), never CloudFormation's",
        "dynamodb:DeleteItem": "items are the pipeline's",
        "dynamodb:GetItem": "items are the pipeline's",
        "dynamodb:PutItem": "items are the pipeline's",
        "dynamodb:Query": "items are the pipeline's",
        "dynamodb:Scan": "items are the pipeline's",
        "dynamodb:UpdateItem": "items are the pipeline's",
        "logs:CreateLogGroup": "import logs only",
        "logs:CreateLogStream": "import logs only",
        "logs:DescribeLogGroups": "import logs only",
        "logs:DescribeLogStreams": "import logs only",
        "logs:PutLogEvents": "import logs only",
        "logs:PutRetentionPolicy": "import logs only",
        "s3:GetObject": "import from S3 only",
        "s3:GetObjectMetadata": "import from S3 only",
        "s3:ListBucket": "import from S3 only",
    },
    "AWS::IAM::Role": {
        "iam:AttachRolePolicy": "no managed policy is attached (one could lift a role to administrator)",
        "iam:DetachRolePolicy": "the template attaches no managed policy",
        "iam:DeleteRolePermissionsBoundary": "no role of a stack ever loses its boundary",
    },
    "AWS::KMS::Key": {
        "kms:ScheduleKeyDeletion": "the key is retained; only its administrators may delete it",
        "kms:DisableKey": "only the key's administrators may disable it",
        "kms:DisableKeyRotation": "rotation stays on",
    },
    "AWS::Lambda::Function": {
        "ec2:DescribeNetworkInterfaces": "no VPC",
        "ec2:DescribeSecurityGroups": "no VPC",
        "ec2:DescribeSubnets": "no VPC",
        "ec2:DescribeVpcs": "no VPC",
        "elasticfilesystem:DescribeMountTargets": "no file system",
        "s3files:ListMountTargets": "no file system",
        "lambda:PassCapacityProvider": "no capacity provider",
        "lambda:AssociateRuntimeAlias": "no runtime alias",
        "lambda:PutFunctionCodeSigningConfig": "no code signing configuration",
        "lambda:DeleteFunctionCodeSigningConfig": "no code signing configuration",
    },
    "AWS::Logs::LogGroup": {
        "firehose:TagDeliveryStream": "no Firehose delivery",
        "s3:REST.PUT.OBJECT": "no S3 delivery",
    },
    "AWS::Pipes::Pipe": {
        "firehose:TagDeliveryStream": "the pipe logs to CloudWatch Logs only",
        "s3:GetBucketPolicy": "the pipe logs to CloudWatch Logs only",
        "s3:PutBucketPolicy": "the pipe logs to CloudWatch Logs only",
        "iam:CreateServiceLinkedRole": "no service-linked role",
    },
    "AWS::Events::EventBus": {
        "kms:ReEncrypt": "no such IAM action: re-encrypting takes kms:ReEncryptFrom and kms:ReEncryptTo, both granted",
    },
    "AWS::Events::Rule": {"iam:PassRole": "the audit rule's target is a log group, which takes no role"},
    "AWS::SNS::Topic": {
        "iam:GetRole": "no delivery-status logging role",
        "iam:PassRole": "no delivery-status logging role",
    },
    "AWS::SNS::Subscription": {
        "iam:GetRole": "no Firehose subscription role",
        "iam:PassRole": "no Firehose subscription role",
    },
    "AWS::S3::Bucket": {
        "iam:PassRole": "no replication",
        "s3tables:CreateNamespace": "no metadata tables",
        "s3tables:CreateTable": "no metadata tables",
        "s3tables:CreateTableBucket": "no metadata tables",
        "s3tables:GetTable": "no metadata tables",
        "s3tables:GetTableMetadataLocation": "no metadata tables",
        "s3tables:PutTableBucketPolicy": "no metadata tables",
        "s3tables:PutTableEncryption": "no metadata tables",
        "s3tables:PutTablePolicy": "no metadata tables",
        "s3tables:UpdateTableMetadataLocation": "no metadata tables",
        "s3:CreateBucketMetadataTableConfiguration": "no metadata tables",
        "s3:DeleteBucketMetadataTableConfiguration": "no metadata tables",
        "s3:GetBucketMetadataTableConfiguration": "no metadata tables",
        "s3:UpdateBucketMetadataAnnotationTableConfiguration": "no metadata tables",
        "s3:UpdateBucketMetadataInventoryTableConfiguration": "no metadata tables",
        "s3:UpdateBucketMetadataJournalTableConfiguration": "no metadata tables",
        "s3:DeleteBucketAnalyticsConfiguration": "no analytics configuration",
        "s3:PutAnalyticsConfiguration": "no analytics configuration",
        "s3:DeleteBucketCors": "no CORS",
        "s3:PutBucketCORS": "no CORS",
        "s3:DeleteBucketEncryption": "encryption is never removed",
        "s3:DeleteBucketLifecycle": "the lifecycle is never removed",
        "s3:DeleteBucketMetricsConfiguration": "no request metrics",
        "s3:PutMetricsConfiguration": "no request metrics",
        "s3:DeleteBucketReplication": "no replication",
        "s3:PutReplicationConfiguration": "no replication",
        "s3:PutBucketReplication": "no replication",
        "s3:DeleteBucketWebsite": "no website",
        "s3:PutBucketWebsite": "no website",
        "s3:DeleteObject": "the trail's log files are CloudTrail's, under object lock",
        "s3:PutObjectAcl": "object ownership is enforced (no ACLs)",
        "s3:PutBucketAcl": "object ownership is enforced (no ACLs)",
        "s3:PutAccelerateConfiguration": "no transfer acceleration",
        "s3:PutBucketLogging": "no server access logging (see the bucket's checkov skip)",
        "s3:PutBucketNotification": "no notifications",
        "s3:PutIntelligentTieringConfiguration": "no Intelligent-Tiering configuration",
        "s3:PutInventoryConfiguration": "no inventory",
        "s3:PutObjectLockConfiguration": "object lock is set with the bucket (PutBucketObjectLockConfiguration)",
        "s3:GetBucketAbac": "no attribute-based access control",
        "s3:PutBucketAbac": "no attribute-based access control",
        "s3:ListTagsForResource": "tags are read with GetBucketTagging",
        "s3:TagResource": "tags are written with PutBucketTagging",
        "s3:UntagResource": "tags are written with PutBucketTagging",
    },
    "AWS::StepFunctions::StateMachine": {},
    "AWS::CloudFormation::Stack": {
        "cloudformation:SetStackPolicy": "no stack policy on a nested stack",
        "cloudformation:UpdateTerminationProtection": "a nested stack takes its root stack's termination protection",
    },
    "AWS::ApplicationAutoScaling::ScalableTarget": {
        "iam:PassRole": "no RoleARN: auto scaling uses its service-linked role",
        "application-autoscaling:PutScheduledAction": "no scheduled actions",
        "application-autoscaling:DeleteScheduledAction": "no scheduled actions",
        "application-autoscaling:DescribeScheduledActions": "no scheduled actions",
        "lambda:PutProvisionedConcurrencyConfig": "DynamoDB targets only",
        "lambda:GetProvisionedConcurrencyConfig": "DynamoDB targets only",
        "lambda:DeleteProvisionedConcurrencyConfig": "DynamoDB targets only",
    },
}
# Actions that take no resource in IAM (service authorization reference): granted on "*".
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
    "kms:ListAliases",
    "sns:Unsubscribe",
    "sns:GetSubscriptionAttributes",
    "sns:SetSubscriptionAttributes",
    "events:PutPermission",
    "events:RemovePermission",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "cloudwatch:GetMetricData",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
}
# Application Auto Scaling names its targets by a random id: no stack prefix can scope them. Changes
# to targets are held to DynamoDB's by a condition; tags (no condition key for them) are not.
SCALABLE_TARGETS = "arn:aws:application-autoscaling:*:123456789012:scalable-target/*"
ACTIONS_ON_SCALABLE_TARGETS = {
    "application-autoscaling:RegisterScalableTarget": {"application-autoscaling:service-namespace": "dynamodb"},
    "application-autoscaling:DeregisterScalableTarget": {"application-autoscaling:service-namespace": "dynamodb"},
    "application-autoscaling:PutScalingPolicy": {"application-autoscaling:service-namespace": "dynamodb"},
    "application-autoscaling:DeleteScalingPolicy": {"application-autoscaling:service-namespace": "dynamodb"},
    "application-autoscaling:TagResource": {},
    "application-autoscaling:UntagResource": {},
    "application-autoscaling:ListTagsForResource": {},
}
AUTOSCALING_SERVICE = "dynamodb.application-autoscaling.amazonaws.com"
AUTOSCALING_SERVICE_LINKED_ROLE = (
    "role/aws-service-role/dynamodb.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_DynamoDBTable"
)
KEY_ARN_PATTERN = "arn:aws:kms:*:123456789012:key/*"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def bootstrap() -> Template:
    return Template.load(
        BOOTSTRAP,
        stack_name="posting-deploy",
        overrides={
            "GitHubRepository": "example/posting-pipeline",
            "GitHubOidcProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com",
        },
    )


def resolved(bootstrap: Template) -> dict[str, dict[str, Any]]:
    """Every resource's properties, with ARNs for the roles and policies."""
    resolver = Resolver(bootstrap)
    for logical_id, resource in bootstrap.resources.items():
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::Role":
            arn = f"arn:aws:iam::{ACCOUNT_ID}:role{properties['Path']}{properties['RoleName']}"
            resolver.provide(logical_id, properties["RoleName"], Arn=arn)
        else:
            arn = f"arn:aws:iam::{ACCOUNT_ID}:policy{properties['Path']}{properties['ManagedPolicyName']}"
            resolver.provide(logical_id, arn)
    return {logical_id: resolver.resolve(r["Properties"]) for logical_id, r in bootstrap.resources.items()}


def statements_of_role(resources: dict[str, dict[str, Any]], role: str) -> list[dict[str, Any]]:
    properties = resources[role]
    found = [s for p in properties.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for arn in properties.get("ManagedPolicyArns", []):
        (policy,) = [
            p for p in resources.values() if p.get("ManagedPolicyName") and arn.endswith(p["ManagedPolicyName"])
        ]
        found += policy["PolicyDocument"]["Statement"]
    return found


def allowed(statements: list[dict[str, Any]], action: str) -> bool:
    """Some Allow statement names the action (IAM action names are case-insensitive)."""
    return any(
        fnmatch.fnmatch(action.lower(), pattern.lower())
        for s in statements
        if s["Effect"] == "Allow"
        for pattern in as_list(s["Action"])
    )


def handler_permissions(resource_type: str) -> set[str]:
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

    handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema["handlers"]
    return {p for name in ("create", "read", "update", "delete") for p in handlers.get(name, {}).get("permissions", [])}


# CloudFormation's role ------------------------------------------------------------------------


def test_cloudformations_role_may_do_what_each_translated_resource_type_needs(
    bootstrap: Template, translated: dict[str, Any]
) -> None:
    """Of the translated template and of the templates its nested applications (nested stacks) name."""
    statements = statements_of_role(resolved(bootstrap), "CloudFormationDeploymentRole")
    nested = [child.body for child in Template.load(ROOT / "template.yaml").nested().values()]
    types = {r["Type"] for body in (translated, *nested) for r in body["Resources"].values()}
    assert {"AWS::Scheduler::Schedule", "AWS::Lambda::ResourcePolicy", "AWS::SNS::Topic"} <= types
    assert {"AWS::CloudFormation::Stack", "AWS::EventSchemas::Registry", "AWS::EventSchemas::Schema"} <= types
    missing = []
    for resource_type in sorted(types):
        needed = handler_permissions(resource_type) - set(NOT_NEEDED.get(resource_type, {}))
        missing += [f"{resource_type}: {action}" for action in sorted(needed) if not allowed(statements, action)]
    assert missing == []


def test_every_left_out_permission_is_one_a_handler_lists(translated: dict[str, Any]) -> None:
    for resource_type, reasons in NOT_NEEDED.items():
        assert set(reasons) <= handler_permissions(resource_type), resource_type
        assert all(reason.strip() for reason in reasons.values())


def test_cloudformations_role_passes_roles_to_every_service_the_stacks_roles_trust(
    bootstrap: Template, translated: dict[str, Any]
) -> None:
    statements = statements_of_role(resolved(bootstrap), "CloudFormationDeploymentRole")
    stacks_roles = f"arn:aws:iam::{ACCOUNT_ID}:role/posting-pipeline-*"
    (pass_role,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"]) and s["Resource"] == stacks_roles]
    services = set(pass_role["Condition"]["StringEquals"]["iam:PassedToService"])
    trusted = {
        service
        for role in translated["Resources"].values()
        if role["Type"] == "AWS::IAM::Role"
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for service in as_list(statement["Principal"]["Service"])
    }
    assert "scheduler.amazonaws.com" in trusted
    assert trusted == services


def test_cloudformations_role_passes_itself_to_cloudformation_only_for_the_nested_stacks(bootstrap: Template) -> None:
    resources = resolved(bootstrap)
    statements = statements_of_role(resources, "CloudFormationDeploymentRole")
    role = resources["CloudFormationDeploymentRole"]
    itself = f"arn:aws:iam::{ACCOUNT_ID}:role{role['Path']}{role['RoleName']}"
    (pass_itself,) = [s for s in statements if "iam:PassRole" in as_list(s["Action"]) and s["Resource"] == itself]
    assert pass_itself["Action"] == "iam:PassRole"
    assert pass_itself["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    (nested,) = [s for s in statements if "cloudformation:CreateStack" in as_list(s["Action"])]
    assert nested["Resource"] == f"arn:aws:cloudformation:*:{ACCOUNT_ID}:stack/posting-pipeline-*/*"
    # Exactly the stack handlers' actions that are needed, and the cancel a rollback of the parent asks for.
    handlers = handler_permissions("AWS::CloudFormation::Stack") - {"iam:PassRole"}
    needed = handlers - set(NOT_NEEDED["AWS::CloudFormation::Stack"]) | {"cloudformation:CancelUpdateStack"}
    assert set(as_list(nested["Action"])) == needed
    # `sam deploy` uploads each nested template to SAM's artifact bucket: CloudFormation reads it there.
    (templates,) = [s for s in statements if "s3:GetObject" in as_list(s["Action"])]
    assert fnmatch.fnmatch(
        "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1a2b3c/6e01.template", templates["Resource"]
    )


def test_roles_are_created_only_with_the_boundary_and_never_given_managed_policies(bootstrap: Template) -> None:
    resources = resolved(bootstrap)
    statements = statements_of_role(resources, "CloudFormationDeploymentRole")
    boundary_arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/posting-deploy/posting-pipeline-boundary"
    for statement in statements:
        actions = set(as_list(statement["Action"]))
        if statement["Effect"] == "Allow" and actions & {"iam:CreateRole", "iam:PutRolePolicy"}:
            assert statement["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary_arn}}
        if statement["Effect"] == "Allow":
            assert "iam:AttachRolePolicy" not in actions
    denied = {a for s in statements if s["Effect"] == "Deny" for a in as_list(s["Action"])}
    assert {"iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary"} <= denied


def test_the_deploy_identities_are_out_of_the_stacks_reach(bootstrap: Template) -> None:
    """CloudFormation's role manages roles named after the stacks; the deploy roles live elsewhere.
    (It hands itself to CloudFormation for the nested stacks, which changes nothing about it.)"""
    resources = resolved(bootstrap)
    statements = statements_of_role(resources, "CloudFormationDeploymentRole")
    to_cloudformation = {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    managing = [
        s for s in statements if not (s["Action"] == "iam:PassRole" and s.get("Condition") == to_cloudformation)
    ]
    assert len(managing) == len(statements) - 1
    iam_resources = [r for s in managing if s["Effect"] == "Allow" for r in as_list(s["Resource"]) if ":iam::" in r]
    for logical_id, properties in resources.items():
        name = properties.get("RoleName") or properties["ManagedPolicyName"]
        kind = "role" if "RoleName" in properties else "policy"
        arn = f"arn:aws:iam::{ACCOUNT_ID}:{kind}{properties['Path']}{name}"
        assert not any(fnmatch.fnmatchcase(arn, pattern) for pattern in iam_resources), logical_id


def test_resources_are_scoped_to_the_stacks_prefix_or_take_only_star(bootstrap: Template) -> None:
    prefix = "posting-pipeline-"
    resources = resolved(bootstrap)
    for role in ("CloudFormationDeploymentRole", "GitHubDeployRole", "SmokeTestRole"):
        for statement in statements_of_role(resources, role):
            if statement["Effect"] != "Allow":
                continue
            for resource in as_list(statement["Resource"]):
                if resource == "*":
                    assert set(as_list(statement["Action"])) <= ACTIONS_ONLY_ON_STAR, statement["Sid"]
                elif resource == SCALABLE_TARGETS:
                    for action in as_list(statement["Action"]):
                        condition = statement.get("Condition", {}).get("StringEquals", {})
                        assert ACTIONS_ON_SCALABLE_TARGETS[action].items() <= condition.items(), action
                elif resource == KEY_ARN_PATTERN:
                    condition = statement["Condition"]["StringLike"]
                    assert (
                        condition.get("aws:ResourceTag/aws:cloudformation:stack-name") == f"{prefix}*"
                        or "kms:ViaService" in condition
                    ), statement["Sid"]
                else:
                    assert (
                        prefix in resource
                        or "aws-sam-cli-managed-default" in resource
                        or ":aws:transform/Serverless-2016-10-31" in resource
                        or ":changeSet/samcli-deploy" in resource
                        or ":layer:DependenciesLayer" in resource
                        or resource.endswith("role/posting-deploy/posting-deploy-cloudformation")
                        or (
                            resource.endswith(AUTOSCALING_SERVICE_LINKED_ROLE)
                            and statement["Action"] == "iam:CreateServiceLinkedRole"
                            and statement["Condition"] == {"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SERVICE}}
                        )
                    ), f"{role} {statement['Sid']}: {resource}"


def test_the_stack_names_share_the_bootstrap_prefix(bootstrap: Template) -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    names = [env["global"]["parameters"]["stack_name"] for env in config.values() if isinstance(env, dict)]
    assert all(name.startswith(bootstrap.parameters["StackNamePrefix"]) for name in names)
    # Role names <stack>-<region>-<purpose> stop at 64 characters, the sampling rule's (the stack's) at 32.
    assert all(len(name) <= 32 for name in names)


# The GitHub deploy role and the smoke test ----------------------------------------------------


def test_the_github_role_only_hands_change_sets_to_cloudformations_role(bootstrap: Template) -> None:
    resources = resolved(bootstrap)
    statements = statements_of_role(resources, "GitHubDeployRole")
    cfn_role = f"arn:aws:iam::{ACCOUNT_ID}:role/posting-deploy/posting-deploy-cloudformation"
    services = {a.split(":")[0] for s in statements for a in as_list(s["Action"])}
    assert services == {"cloudformation", "s3", "iam"}
    assert {a for s in statements for a in as_list(s["Action"]) if a.startswith("iam:")} == {"iam:PassRole"}
    (pass_role,) = [s for s in statements if s["Action"] == "iam:PassRole"]
    assert pass_role["Resource"] == cfn_role
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
    on_stacks = [
        s
        for s in statements
        if "cloudformation:CreateChangeSet" in as_list(s["Action"]) and ":stack/" in str(s["Resource"])
    ]
    assert on_stacks and all(
        s["Condition"] == {"StringEquals": {"cloudformation:RoleArn": cfn_role}} for s in on_stacks
    )


def test_the_smoke_test_sends_and_reads_but_administers_nothing(bootstrap: Template) -> None:
    statements = statements_of_role(resolved(bootstrap), "SmokeTestRole")
    actions = {a for s in statements for a in as_list(s["Action"])}
    assert "sqs:SendMessage" in actions and "logs:FilterLogEvents" in actions
    assert not {a for a in actions if a.split(":")[1].startswith(("Create", "Delete", "Scan", "Put", "Update"))} - {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }


@pytest.mark.parametrize("role", ["GitHubDeployRole", "SmokeTestRole"])
def test_only_this_repositorys_deploy_environments_may_assume_the_roles(bootstrap: Template, role: str) -> None:
    (statement,) = resolved(bootstrap)[role]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = statement["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert condition["token.actions.githubusercontent.com:sub"] == [
        "repo:example/posting-pipeline:environment:dev",
        "repo:example/posting-pipeline:environment:prod",
    ]


def test_cloudformations_role_is_trusted_by_cloudformation_for_the_stacks_only(bootstrap: Template) -> None:
    (statement,) = resolved(bootstrap)["CloudFormationDeploymentRole"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":stack/posting-pipeline-*/*")


def test_the_managed_policies_fit(bootstrap: Template) -> None:
    for properties in resolved(bootstrap).values():
        if "ManagedPolicyName" in properties:
            compact = json.dumps(properties["PolicyDocument"], separators=(",", ":"))
            assert len(compact) <= MANAGED_POLICY_LIMIT, properties["ManagedPolicyName"]


# The boundary ---------------------------------------------------------------------------------


def test_the_boundary_leaves_every_role_of_the_stack_its_actions(
    bootstrap: Template, translated: dict[str, Any]
) -> None:
    boundary = resolved(bootstrap)["PermissionsBoundary"]["PolicyDocument"]["Statement"]
    checked = 0
    for logical_id, role in translated["Resources"].items():
        if role["Type"] != "AWS::IAM::Role":
            continue
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                for action in as_list(statement["Action"]):
                    assert allowed(boundary, action), f"{logical_id}: the boundary takes away {action}"
                    checked += 1
    assert checked >= 20


# The service control policy -------------------------------------------------------------------


def test_the_scp_fits_and_names_the_stacks_resources(translated: dict[str, Any]) -> None:
    text = SCP.read_text()
    assert len(json.dumps(json.loads(text), separators=(",", ":"))) <= SCP_SIZE_LIMIT
    statements = {s["Sid"]: s for s in json.loads(text)["Statement"]}
    assert all(s["Effect"] == "Deny" for s in statements.values())
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for stack in {env["global"]["parameters"]["stack_name"] for env in config.values() if isinstance(env, dict)}:
        template = Template.load(ROOT / "template.yaml", stack_name=stack)
        resolver = Resolver(template)
        role = f"arn:aws:iam::{ACCOUNT_ID}:role/{stack}-us-east-1-"
        workflow = statements["OnlyThePipeStartsThePostingWorkflow"]
        machine = resolver.resolve(template.properties("PostingStateMachine")["Name"])
        assert fnmatch.fnmatchcase(
            f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:{machine}", workflow["Resource"]
        )
        assert fnmatch.fnmatchcase(role + "pipe", workflow["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
        assert not fnmatch.fnmatchcase(role + "post", workflow["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
        invoke = statements["OnlyTheWorkflowAndTheScheduleInvokeThePipelinesFunctions"]
        callers = invoke["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
        assert any(fnmatch.fnmatchcase(role + "workflow", c) for c in callers)
        assert any(fnmatch.fnmatchcase(role + "schedule", c) for c in callers)
        assert not any(fnmatch.fnmatchcase(role + "pipe", c) for c in callers)
        function = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{stack}-PostFunction-AbC123"
        assert fnmatch.fnmatchcase(function, invoke["Resource"])
        changes = statements["OnlyCloudFormationChangesWhatThePipelineRuns"]
        pipe = resolver.resolve(template.properties("PostingPipe")["Name"])
        for resource in (
            function,
            f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:{machine}",
            f"arn:aws:pipes:us-east-1:{ACCOUNT_ID}:pipe/{pipe}",
        ):
            assert any(fnmatch.fnmatchcase(resource, r) for r in changes["Resource"]), resource
        for action in ("lambda:UpdateFunctionCode", "states:UpdateStateMachine", "pipes:UpdatePipe"):
            assert action in changes["Action"]
        deployer = changes["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
        assert fnmatch.fnmatchcase(
            f"arn:aws:iam::{ACCOUNT_ID}:role/posting-deploy/posting-deploy-cloudformation", deployer
        )
        assert not fnmatch.fnmatchcase(role + "post", deployer)
