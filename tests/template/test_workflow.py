"""The CI workflow and samconfig.toml: pinned actions, the arm64 `sam local invoke` job, the gated deploy."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_TEXT = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
WORKFLOW = yaml.safe_load(WORKFLOW_TEXT)


def test_every_action_is_pinned_by_commit_sha_with_its_version_in_a_comment():
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", WORKFLOW_TEXT, flags=re.MULTILINE)
    assert uses
    for action, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.match(r"\s+# v\d+\.\d+\.\d+$", rest), f"{action}: no '# vX.Y.Z' comment"


def test_the_same_tag_is_pinned_to_the_same_sha_everywhere():
    pins: dict[str, set[str]] = {}
    for action, sha in re.findall(r"uses:\s*([\w./-]+)@([0-9a-f]{40})", WORKFLOW_TEXT):
        pins.setdefault(action, set()).add(sha)
    assert all(len(shas) == 1 for shas in pins.values()), pins


def test_sam_local_invoke_runs_on_arm64_with_docker_and_checks_the_output():
    job = WORKFLOW["jobs"]["sam-local-invoke"]
    assert job["runs-on"] == "ubuntu-24.04-arm"
    runs = "\n".join(step.get("run", "") for step in job["steps"])
    assert "tools/sam.sh build" in runs
    assert "posting_cli.sam_local_invoke prepare" in runs
    assert "posting_cli.sam_local_invoke run --docker-network posting-ci" in runs
    assert "docker network create posting-ci" in runs


def test_deploy_runs_only_with_a_deploy_role_through_oidc_then_smoke_tests():
    job = WORKFLOW["jobs"]["deploy"]
    assert "vars.AWS_DEPLOY_ROLE_ARN != ''" in job["if"]
    assert job["permissions"]["id-token"] == "write"
    assert job["environment"] == "dev"
    steps = job["steps"]
    [credentials] = [s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    runs = [s.get("run", "") for s in steps]
    deploy = next(i for i, r in enumerate(runs) if "sam.sh deploy" in r)
    assert all(
        flag in runs[deploy] for flag in ("--config-env dev", "--no-confirm-changeset", "--no-fail-on-empty-changeset")
    )
    assert any("posting smoke --stack" in r for r in runs[deploy + 1 :])
    assert WORKFLOW["permissions"] == {"contents": "read"}  # only the deploy job gets an OIDC token


def test_the_dev_environment_is_the_default_one_by_name():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["dev"] == config["default"]
    stack = config["dev"]["global"]["parameters"]["stack_name"]
    assert f"STACK_NAME: {stack}" in WORKFLOW_TEXT
