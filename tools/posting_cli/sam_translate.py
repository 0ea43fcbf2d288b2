"""The SAM template as CloudFormation deploys it: translated offline by aws-sam-translator.

What the transform adds (generated roles, policy templates expanded to statements, permissions) is
what the account actually gets, so the least-privilege tests and checkov read this translation, not
the SAM source. No AWS call is made: the region is fixed and no managed-policy lookup is needed (the
template names no managed policy by name).

    python -m posting_cli.sam_translate [--template template.yaml] [--output translated.json] \
        [--default PostingQueueType=fifo ...]

`--default NAME=VALUE` changes a parameter's default before translating, so that tools reading
defaults (checkov evaluates conditions with them) check the template as deployed with that value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from posting_cli.local.template import REGION, default_template_path, load_template

PACKAGED_CODE_URI = "s3://offline-translation/src.zip"  # what `sam package` would upload CodeUri to
# What `sam package` would upload a nested application's local template to (Location, then TemplateURL).
PACKAGED_TEMPLATE_URL = "https://s3.us-east-1.amazonaws.com/offline-translation/{name}.template"


def packaged(template: dict[str, Any], root: Path) -> dict[str, Any]:
    """The template as `sam package` leaves it: code and nested templates in S3, state machine definitions
    inline. (A nested template is linted and scanned as the file it is: tools/checkov.sh --file.)"""
    template = json.loads(json.dumps(template))
    function_globals = template.get("Globals", {}).get("Function", {})
    if isinstance(function_globals.get("CodeUri"), str):
        function_globals["CodeUri"] = PACKAGED_CODE_URI
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(properties.get("CodeUri"), str):
            properties["CodeUri"] = PACKAGED_CODE_URI
        if resource["Type"] == "AWS::Serverless::LayerVersion" and isinstance(properties.get("ContentUri"), str):
            properties["ContentUri"] = PACKAGED_CODE_URI.replace("src.zip", "layer.zip")
        if resource["Type"] == "AWS::Serverless::StateMachine" and isinstance(properties.get("DefinitionUri"), str):
            properties["Definition"] = json.loads((root / properties.pop("DefinitionUri")).read_text())
        if resource["Type"] == "AWS::Serverless::Application" and isinstance(properties.get("Location"), str):
            properties["Location"] = PACKAGED_TEMPLATE_URL.format(name=Path(properties["Location"]).stem)
    return template


def translate(template: dict[str, Any], region: str = REGION) -> dict[str, Any]:
    """CloudFormation JSON for a packaged SAM template, without credentials or network."""
    # botocore must never look for credentials or probe the instance-metadata address.
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    session = boto3.session.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")  # noqa: S106 - not a secret
    translator = Translator(managed_policy_map=None, sam_parser=Parser(), boto_session=session)

    def no_managed_policies() -> dict[str, str]:
        raise RuntimeError("the template names a managed policy by name; name it by ARN so translation stays offline")

    translated: dict[str, Any] = translator.translate(
        sam_template=json.loads(json.dumps(template)),  # the translator mutates its input
        parameter_values={},
        get_managed_policy_map=no_managed_policies,
    )
    return translated


def translate_file(path: Path | None = None, defaults: dict[str, str] | None = None) -> dict[str, Any]:
    path = path or default_template_path()
    template = load_template(path)
    for name, value in (defaults or {}).items():
        if name not in template.get("Parameters", {}):
            raise SystemExit(f"--default {name}: the template declares no such parameter")
        template["Parameters"][name]["Default"] = value
    return translate(packaged(template, path.parent))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=default_template_path())
    parser.add_argument("--output", type=Path, help="write here (default: stdout)")
    parser.add_argument(
        "--default", action="append", default=[], metavar="NAME=VALUE", help="a parameter's default, changed"
    )
    args = parser.parse_args(argv)
    defaults = dict(item.split("=", 1) for item in args.default)
    text = json.dumps(translate_file(args.template, defaults), indent=2, sort_keys=True) + "\n"
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
