"""`tools/checkov.sh parliament`: a finding without an inline reason fails lint, and so does a stale reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def audit(tmp_path: Path, resources: dict[str, Any], *arguments: str) -> subprocess.CompletedProcess[str]:
    template = tmp_path / "translated.json"
    template.write_text(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}))
    return subprocess.run(
        [str(ROOT / "tools" / "checkov.sh"), "parliament", "--translated", str(template), *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )


def role(metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            },
            "Policies": [
                {
                    "PolicyName": "too-much",
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                    },
                }
            ],
        },
    }
    if metadata is not None:
        resource["Metadata"] = metadata
    return resource


def test_an_unjustified_finding_fails(tmp_path: Path) -> None:
    result = audit(tmp_path, {"Reader": role()})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Reader (policy too-much): RESOURCE_STAR" in result.stderr
    assert "trust policy" not in result.stderr  # a trust policy's missing Resource is its grammar


def test_a_justified_finding_passes_and_a_stale_justification_fails(tmp_path: Path) -> None:
    reason = {"parliament": {"ignore": [{"issue": "RESOURCE_STAR", "reason": "a test says so"}]}}
    assert audit(tmp_path, {"Reader": role(reason)}).returncode == 0
    stale = {"parliament": {"ignore": [{"issue": "UNKNOWN_ACTION", "reason": "nothing is unknown here"}]}}
    result = audit(tmp_path, {"Reader": role(stale)})
    assert result.returncode == 1
    assert "justification matches no finding" in result.stderr


def test_the_templates_of_the_sources_nested_applications_are_audited_too(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "child.yaml").write_text(json.dumps({"Resources": {"Reader": role()}}))
    source = tmp_path / "template.yaml"
    source.write_text(
        json.dumps(
            {
                "Transform": "AWS::Serverless-2016-10-31",
                "Resources": {
                    "Child": {"Type": "AWS::Serverless::Application", "Properties": {"Location": "nested/child.yaml"}}
                },
            }
        )
    )
    assert audit(tmp_path, {}).returncode == 0
    result = audit(tmp_path, {}, "--source", str(source))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "child.yaml (Child): Reader (policy too-much): RESOURCE_STAR" in result.stderr
