"""Shared fixtures. Engines start once per session, and only for the tests that ask for them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from posting.adapters.ledger_table import LedgerTable
from posting_cli.local.template import REGION, Template

ROOT = Path(__file__).resolve().parents[1]

# Unit tests must never reach AWS: no real credentials or profile may leak in.
for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
    os.environ.pop(variable, None)
os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "PostingPipelineTests")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "posting")


@pytest.fixture(scope="session")
def template() -> Template:
    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def stack(template: Template) -> Template:
    """The whole stack as one template: template.yaml with its nested applications' resources in
    place (their alarms, dashboard and schema registry), wired to what template.yaml passes them."""
    return template.flattened()


@pytest.fixture(scope="session")
def dynamodb_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """DynamoDB Local for the session (or $DYNAMODB_ENDPOINT when set), behind AWS's conflict rules.

    The rules are on unless POSTING_DYNAMODB_STRICT=0 (see posting_cli/local/strict_dynamodb.py).
    """
    from posting_cli.local.dynamodb_local import attach_or_start

    with attach_or_start(log_dir=tmp_path_factory.mktemp("dynamodb-local-logs")) as endpoint:
        yield endpoint


@pytest.fixture
def dynamodb_client(dynamodb_local: object) -> object:
    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=dynamodb_local.endpoint_url,  # type: ignore[attr-defined]
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


@pytest.fixture
def ledger_table(dynamodb_client, template: Template) -> Iterator[LedgerTable]:
    """A fresh, empty ledger table with the template's key schema, dropped after the test."""
    from posting_cli.local.tables import create_table

    name = f"ledger-{uuid.uuid4().hex[:12]}"
    create_table(dynamodb_client, name, template.table_definition("LedgerTable"))
    yield LedgerTable(dynamodb_client, name)
    dynamodb_client.delete_table(TableName=name)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory, dynamodb_local: object) -> Iterator[object]:
    """The whole pipeline on the embedded engines, from template.yaml, for the end-to-end suites.

    A short visibility timeout and few deliveries so that failure paths finish in seconds. The
    timeout must still exceed the longest a batch can take, as in AWS: the post step retries a
    failing posting for up to about 4 s before giving up, so 8 s leaves a 2x margin (with less, a
    poison message comes back while still in flight and the queue's redrive takes it first).
    """
    from posting_cli.local.stack import LocalStack

    stack_template = Template.load(
        ROOT / "template.yaml",
        stack_name="posting-e2e",
        overrides={"VisibilityTimeoutSeconds": 8, "MaxReceiveCount": 3, "LogLevel": "WARNING"},
    )
    stack = LocalStack(
        stack_template,
        state_dir=tmp_path_factory.mktemp("local-stack"),
        retry_sleep=lambda _: None,
        dynamodb=dynamodb_local,  # type: ignore[arg-type]
    )
    with stack:
        yield stack
