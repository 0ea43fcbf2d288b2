"""Refuse a prod deploy that would raise alarms nobody hears: prod needs a subscriber or an SNS topic.

The template's own Rules refuse the same at deploy time; this says so before anything is built.

Prints the parameter overrides `sam deploy` should use: samconfig.toml's for the environment, plus
any given with --override (later ones win). Exits 2 with the reason when the check fails.

    python -m posting_cli.deploy_check --config-env prod [--override AlarmTopicArn=arn:aws:sns:...]
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from posting_cli.local.template import default_template_path, load_template

# Environments that must notify someone when an alarm fires.
ENVIRONMENTS_NEEDING_ALARMS = {"prod"}


class DeployCheckError(Exception):
    pass


def parse_overrides(text: str) -> dict[str, str]:
    """`Key=Value Key2="a b"` (sam's parameter_overrides syntax) as a dict."""
    pairs = {}
    for token in shlex.split(text):
        key, separator, value = token.partition("=")
        if not separator:
            raise DeployCheckError(f"parameter override {token!r} is not Key=Value")
        pairs[key] = value
    return pairs


def check_config_env(
    config: dict[str, Any], config_env: str, extra_overrides: Sequence[str] = (), template_path: Path | None = None
) -> dict[str, str]:
    """The merged overrides for config_env; raises DeployCheckError when prod lacks a valid topic."""
    declared = load_template(template_path or default_template_path())["Parameters"]["AlarmTopicArn"]
    configured = config.get(config_env, {}).get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    overrides = parse_overrides(configured if isinstance(configured, str) else " ".join(configured))
    for extra in extra_overrides:
        overrides |= parse_overrides(extra)
    if config_env in ENVIRONMENTS_NEEDING_ALARMS:
        topic = overrides.get("AlarmTopicArn", "")
        if overrides.get("AlarmSubscriptionEndpoint") and not topic:
            return overrides
        if not topic or not re.fullmatch(declared["AllowedPattern"], topic):
            raise DeployCheckError(
                f"{config_env} needs AlarmSubscriptionEndpoint (an e-mail address or HTTPS URL) or AlarmTopicArn, "
                f"an SNS topic ARN (got {topic!r}): set it in samconfig.toml "
                f"[{config_env}.deploy.parameters] parameter_overrides, or run "
                f"`make deploy ENV={config_env} ALARM_TOPIC_ARN=arn:aws:sns:<region>:<account>:<topic>`"
            )
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-env", default="default")
    parser.add_argument("--config-file", type=Path, default=Path("samconfig.toml"))
    parser.add_argument("--override", action="append", default=[], help="Key=Value, after samconfig's")
    args = parser.parse_args(argv)
    config = tomllib.loads(args.config_file.read_text())
    try:
        overrides = check_config_env(config, args.config_env, args.override)
    except DeployCheckError as refused:
        print(f"deploy refused: {refused}", file=sys.stderr)
        return 2
    print(" ".join(f"{key}={shlex.quote(value)}" for key, value in overrides.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
