"""What each handler imports in a fresh interpreter, with the environment Lambda gives it (tracing active).

Cold-start time itself is measured by `make bench` (its cold start section), never here; these tests pin the
decisions behind it: validate does no I/O, so it loads no AWS SDK; the others create their clients with
botocore alone, so none loads boto3 (or s3transfer, which boto3 imports for S3); no handler loads the
X-Ray SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from posting_cli.bench.cold_start import lambda_like_environment

HANDLERS = ("posting.handlers.validate", "posting.handlers.post", "posting.handlers.emit", "posting.handlers.sweep")
SDK_PACKAGES = ("boto3", "botocore", "s3transfer", "aws_xray_sdk")
# Prints the SDK modules loaded by importing the module named by argv[1].
CHILD = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {SDK_PACKAGES!r})))"
)


def sdk_modules_loaded_by(module: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, module],
        env=lambda_like_environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_environment_is_lambdas_with_tracing_active() -> None:
    environment = lambda_like_environment()
    assert environment["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert environment["AWS_XRAY_DAEMON_ADDRESS"]
    assert environment["LAMBDA_TASK_ROOT"]
    assert "POWERTOOLS_TRACE_DISABLED" not in environment


def test_validate_loads_no_aws_sdk() -> None:
    # Powertools probes for botocore to set its user agent: that imports the bare package (its
    # __init__ only: logging, os, re), never a session, a client or boto3.
    assert sdk_modules_loaded_by("posting.handlers.validate") in ([], ["botocore"])


@pytest.mark.parametrize("handler", HANDLERS)
def test_no_handler_loads_the_xray_sdk(handler: str) -> None:
    # Tracing: Active records each invocation from the Lambda service; the SDK in-process cost about
    # half of every cold start (the bench's cold start section).
    assert not [m for m in sdk_modules_loaded_by(handler) if m.startswith("aws_xray_sdk")]


@pytest.mark.parametrize("handler", HANDLERS)
def test_no_handler_loads_boto3_or_s3transfer(handler: str) -> None:
    # boto3 adds nothing to a botocore client but its import (and s3transfer's): about a third of the
    # post and emit cold starts (the bench's cold start section). Clients come from one botocore session.
    assert not [m for m in sdk_modules_loaded_by(handler) if m.split(".")[0] in ("boto3", "s3transfer")]
