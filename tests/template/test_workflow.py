"""The CI workflow and samconfig.toml: pinned actions, the arm64 `sam local invoke` job, the gated deploy."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
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


def steps_of(job: str) -> list[dict]:
    return WORKFLOW["jobs"][job]["steps"]


def index_of(steps: list[dict], predicate) -> int:  # type: ignore[no-untyped-def]
    return next(i for i, step in enumerate(steps) if predicate(step))


def uses(prefix: str):  # type: ignore[no-untyped-def]
    return lambda step: step.get("uses", "").startswith(prefix)


def runs(text: str):  # type: ignore[no-untyped-def]
    return lambda step: text in step.get("run", "")


def test_the_tested_build_is_kept_and_no_credentials_reach_the_test_job():
    steps = steps_of("test-and-build")
    assert index_of(steps, runs("make test")) < index_of(steps, uses("actions/upload-artifact@"))
    assert not [s for s in steps if uses("aws-actions/configure-aws-credentials@")(s)]
    assert "id-token" not in WORKFLOW["jobs"]["test-and-build"].get("permissions", {})
    assert WORKFLOW["permissions"] == {"contents": "read"}  # only the deploy jobs get an OIDC token


@pytest.mark.parametrize(
    ("job", "environment", "config_env"), [("deploy", "dev", "dev"), ("deploy-prod", "prod", "prod")]
)
def test_deploy_jobs_take_credentials_last_and_deploy_the_tested_build_through_cloudformations_role(
    job: str, environment: str, config_env: str
):
    definition = WORKFLOW["jobs"][job]
    assert "vars.AWS_DEPLOY_ROLE_ARN != ''" in definition["if"]
    assert definition["permissions"]["id-token"] == "write"
    assert definition["environment"] == environment
    steps = definition["steps"]
    credentials = index_of(steps, uses("aws-actions/configure-aws-credentials@"))
    assert steps[credentials]["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    # Everything is installed and the tested build is in place before any credential exists.
    before = steps[:credentials]
    assert index_of(before, runs("make venv")) < credentials
    assert index_of(before, uses("actions/download-artifact@")) < credentials
    assert not [s for s in steps if runs("sam.sh build")(s)]
    deploy = steps[index_of(steps, runs("sam.sh deploy"))]["run"]
    for flag in (f"--config-env {config_env}", '--role-arn "$CFN_ROLE_ARN"', "--no-confirm-changeset"):
        assert flag in deploy, flag
    assert "DeploymentRoleArn=$CFN_ROLE_ARN" in deploy and "PermissionsBoundaryArn=$BOUNDARY_ARN" in deploy


def test_the_smoke_test_runs_as_its_own_identity_after_the_dev_deploy():
    steps = steps_of("deploy")
    deploy = index_of(steps, runs("sam.sh deploy"))
    smoke = index_of(steps, runs("posting smoke --stack"))
    assert deploy < smoke
    between = [s for s in steps[deploy:smoke] if uses("aws-actions/configure-aws-credentials@")(s)]
    assert [s["with"]["role-to-assume"] for s in between] == ["${{ vars.AWS_SMOKE_ROLE_ARN }}"]
    assert "SmokeTestPrincipalArn=$SMOKE_ROLE_ARN" in steps[deploy]["run"]
    assert WORKFLOW["jobs"]["deploy-prod"]["needs"] == ["deploy"]


def test_installs_are_hash_checked():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-dev.lock" in makefile
    locked = {
        line.split("==")[0].split("[")[0].lower(): line.split("==")[1].split()[0]
        for line in (ROOT / "requirements-dev.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    for path in (ROOT / "requirements-dev.txt", ROOT / "layer" / "requirements.txt"):
        for text in path.read_text().splitlines():
            pin = text.split("#")[0].strip()
            if "==" in pin:
                name, version = pin.split("==")
                assert locked[name.split("[")[0].lower()] == version, f"{path.name}: {pin} is not what the lock pins"


def test_the_dev_environment_is_the_default_one_by_name():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["dev"] == config["default"]
    stack = config["dev"]["global"]["parameters"]["stack_name"]
    assert f"STACK_NAME: {stack}" in WORKFLOW_TEXT
