"""parliament on every IAM policy document the project deploys, each remaining finding justified inline.

The documents: every role's trust and inline policies, every managed policy and every resource policy
(key, queues, table, functions, bus, bucket, topic, log group) of the SAM-translated template, of the
templates its nested applications name (--source: the SAM template it is translated from) and of
deploy/bootstrap.yaml, and the service control policy deploy/scp.json. Intrinsic functions are
resolved with every optional principal set, so each conditional statement is checked as it is when
its condition holds, with ARNs of the right shape for each resource type.

A finding is accepted only where the resource that holds the document says why, in its Metadata:

    Metadata:
      parliament:
        ignore:
          - issue: UNKNOWN_ACTION
            detail: lambda:PutResourcePolicy      # a substring of the finding's detail
            reason: ...

A justification that matches no finding fails too, so none outlives its reason.

    python -m posting_cli.policy_audit --translated build/translated-template.json --source template.yaml \
        --template deploy/bootstrap.yaml --policy deploy/scp.json
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posting_cli.local.template import ACCOUNT_ID, REGION, Resolver, Template, load_template

STACK_NAME = "posting-pipeline-dev"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
# Every optional principal set, so every conditional statement is present and checked.
STACK_OVERRIDES = {
    "ProducerPrincipalArns": "arn:aws:iam::210987654321:role/payments-gateway",
    "OperatorPrincipalArns": f"arn:aws:iam::{ACCOUNT_ID}:role/posting-operator",
    "DeploymentRoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/posting-deploy/posting-deploy-cloudformation",
    "KeyAdministratorArns": f"arn:aws:iam::{ACCOUNT_ID}:role/key-administrator",
    "TrailReaderPrincipalArns": f"arn:aws:iam::{ACCOUNT_ID}:role/security-audit",
    "SmokeTestPrincipalArn": f"arn:aws:iam::{ACCOUNT_ID}:role/posting-deploy/posting-deploy-smoke-test",
    "PermissionsBoundaryArn": f"arn:aws:iam::{ACCOUNT_ID}:policy/posting-deploy/posting-pipeline-boundary",
    "AlarmTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:on-call",
    "AlarmSubscriptionEndpoint": "payments-oncall@example.com",
    "TrailToCloudWatchLogs": "true",
}
BOOTSTRAP_OVERRIDES = {
    "GitHubRepository": "example/posting-pipeline",
    "GitHubOidcProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/token.actions.githubusercontent.com",
}


# A trust policy names no Resource (the role it is attached to is the resource): parliament reads
# every document as an identity policy and reports that, which says nothing about the trust policy.
TRUST_POLICY_GRAMMAR = ("MALFORMED", "Statement contains neither Resource nor NotResource")


@dataclass(frozen=True)
class Document:
    where: str  # file: logical id / what
    logical_id: str | None
    policy: dict[str, Any]


@dataclass(frozen=True)
class Finding:
    where: str
    logical_id: str | None
    issue: str
    detail: str


def _shape(kind: str, name: str, properties: dict[str, Any], resolve: Any) -> tuple[str, dict[str, str]]:
    """(Ref, GetAtt attributes) of one resource, as CloudFormation returns them for its type."""
    prefix = f"{REGION}:{ACCOUNT_ID}"

    def named(key: str) -> str:
        return str(resolve(properties[key])) if key in properties else name

    path = properties.get("Path", "/")
    shapes: dict[str, Any] = {
        "AWS::IAM::Role": lambda: (
            named("RoleName"),
            {"Arn": f"arn:aws:iam::{ACCOUNT_ID}:role{path}{named('RoleName')}"},
        ),
        "AWS::IAM::ManagedPolicy": lambda: (f"arn:aws:iam::{ACCOUNT_ID}:policy{path}{named('ManagedPolicyName')}", {}),
        "AWS::Lambda::Function": lambda: (
            named("FunctionName"),
            {"Arn": f"arn:aws:lambda:{prefix}:function:{named('FunctionName')}"},
        ),
        "AWS::SQS::Queue": lambda: (
            f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{named('QueueName')}",
            {"Arn": f"arn:aws:sqs:{prefix}:{named('QueueName')}", "QueueName": named("QueueName")},
        ),
        "AWS::Logs::LogGroup": lambda: (
            named("LogGroupName"),
            {"Arn": f"arn:aws:logs:{prefix}:log-group:{named('LogGroupName')}:*"},
        ),
        "AWS::Events::EventBus": lambda: (
            named("Name"),
            {"Arn": f"arn:aws:events:{prefix}:event-bus/{named('Name')}", "Name": named("Name")},
        ),
        "AWS::StepFunctions::StateMachine": lambda: (
            f"arn:aws:states:{prefix}:stateMachine:{named('StateMachineName')}",
            {"Arn": f"arn:aws:states:{prefix}:stateMachine:{named('StateMachineName')}"},
        ),
        "AWS::SNS::Topic": lambda: (f"arn:aws:sns:{prefix}:{named('TopicName')}", {}),
        "AWS::DynamoDB::Table": lambda: (name, {"Arn": f"arn:aws:dynamodb:{prefix}:table/{name}"}),
        "AWS::KMS::Key": lambda: (KEY_ID, {"Arn": f"arn:aws:kms:{prefix}:key/{KEY_ID}"}),
        "AWS::S3::Bucket": lambda: (f"{name.lower()}-1a2b3c", {"Arn": f"arn:aws:s3:::{name.lower()}-1a2b3c"}),
    }
    service = kind.split("::")[1].lower()
    shape = shapes.get(kind, lambda: (name, {"Arn": f"arn:aws:{service}:{prefix}:{name}"}))
    ref, attributes = shape()
    return str(ref), attributes


def arns_for(template: Template, resolver: Resolver) -> None:
    """Ref and GetAtt of every resource, shaped like what CloudFormation returns for its type."""
    for logical_id, resource in template.resources.items():
        name = f"{template.stack_name}-{logical_id}"
        ref, attributes = _shape(resource["Type"], name, resource.get("Properties", {}), resolver.resolve)
        resolver.provide(logical_id, ref, **attributes)
    for logical_id, attribute in _get_atts(template.body):
        resolver.attributes.setdefault((logical_id, attribute), f"{logical_id}-{attribute}")


def _get_atts(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                logical_id, attribute = value if isinstance(value, list) else value.split(".", 1)
                yield logical_id, attribute
            else:
                yield from _get_atts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _get_atts(value)


def documents_of(template: Template, label: str) -> Iterator[Document]:
    """Every policy document of every resource the template creates with these parameters."""
    resolver = Resolver(template)
    arns_for(template, resolver)
    for logical_id, resource in template.resources.items():
        if not template.is_created(logical_id):
            continue
        properties = resolver.resolve(resource.get("Properties", {}))
        where = f"{label}: {logical_id}"
        found: list[tuple[str, Any]] = []
        if resource["Type"] == "AWS::IAM::Role":
            found.append(("trust policy", properties["AssumeRolePolicyDocument"]))
            found += [(f"policy {p['PolicyName']}", p["PolicyDocument"]) for p in properties.get("Policies", [])]
        elif resource["Type"] == "AWS::Events::EventBusPolicy":
            found.append(("policy", {"Version": "2012-10-17", "Statement": [properties["Statement"]]}))
        elif resource["Type"] == "AWS::DynamoDB::Table" and "ResourcePolicy" in properties:
            found.append(("resource policy", properties["ResourcePolicy"]["PolicyDocument"]))
        else:
            for key in ("PolicyDocument", "KeyPolicy"):
                if key in properties:
                    document = properties[key]
                    found.append((key, json.loads(document) if isinstance(document, str) else document))
        for what, document in found:
            yield Document(f"{where} ({what})", logical_id, document)


def audit(document: Document) -> list[Finding]:
    # parliament imports pkg_resources, which warns on import.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string

    policy = analyze_policy_string(
        json.dumps(document.policy), ignore_private_auditors=True, include_community_auditors=False
    )
    return [
        Finding(document.where, document.logical_id, f.issue, str(f.detail))
        for f in policy.findings
        if not (document.where.endswith("(trust policy)") and (f.issue, str(f.detail)) == TRUST_POLICY_GRAMMAR)
    ]


def justifications(template: Template) -> dict[str, list[dict[str, str]]]:
    """logical id -> its Metadata.parliament.ignore entries."""
    found = {}
    for logical_id, resource in template.resources.items():
        entries = resource.get("Metadata", {}).get("parliament", {}).get("ignore", [])
        for entry in entries:
            if not str(entry.get("reason", "")).strip() or not entry.get("issue"):
                raise SystemExit(f"{logical_id}: every parliament ignore needs an issue and a reason: {entry}")
        if entries:
            found[logical_id] = entries
    return found


def matches(entry: dict[str, str], finding: Finding) -> bool:
    return entry["issue"] == finding.issue and entry.get("detail", "") in finding.detail


def load(path: Path, stack_name: str, overrides: dict[str, str]) -> Template:
    """The template with those of the overrides it declares as parameters."""
    declared = load_template(path).get("Parameters", {})
    return Template.load(path, stack_name=stack_name, overrides={k: v for k, v in overrides.items() if k in declared})


def run(translated: Path, templates: list[Path], policies: list[Path], source: Path | None = None) -> list[str]:
    """Unjustified findings and unused justifications, as lines; empty when everything is accounted for."""
    problems: list[str] = []
    nested = load(source, STACK_NAME, STACK_OVERRIDES).nested() if source else {}
    loaded = [
        (load(translated, STACK_NAME, STACK_OVERRIDES), translated.name),
        *((child, f"{child.path.name} ({logical_id})") for logical_id, child in nested.items()),
        *((load(path, "posting-deploy", BOOTSTRAP_OVERRIDES), path.name) for path in templates),
    ]
    for template, label in loaded:
        reasons = justifications(template)
        used: set[tuple[str, int]] = set()
        for document in documents_of(template, label):
            for finding in audit(document):
                entries = reasons.get(finding.logical_id or "", [])
                hit = next((i for i, entry in enumerate(entries) if matches(entry, finding)), None)
                if hit is None:
                    problems.append(f"{finding.where}: {finding.issue}: {finding.detail}")
                else:
                    used.add((finding.logical_id or "", hit))
        for logical_id, entries in reasons.items():
            for i, entry in enumerate(entries):
                if (logical_id, i) not in used:
                    problems.append(f"{label}: {logical_id}: justification matches no finding: {entry}")
    for path in policies:
        document = Document(f"{path.name}", None, json.loads(path.read_text()))
        problems += [f"{f.where}: {f.issue}: {f.detail}" for f in audit(document)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--translated", type=Path, required=True, help="the SAM-translated template (JSON)")
    parser.add_argument(
        "--source", type=Path, help="the SAM template translated: the templates of its nested applications too"
    )
    parser.add_argument("--template", type=Path, action="append", default=[], help="another CloudFormation template")
    parser.add_argument("--policy", type=Path, action="append", default=[], help="a bare policy document (JSON)")
    args = parser.parse_args(argv)
    problems = run(args.translated, args.template, args.policy, args.source)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        print(
            f"parliament: {len(problems)} finding(s) without a justification (Metadata: parliament: ignore)",
            file=sys.stderr,
        )
        return 1
    print("parliament: every finding is justified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
