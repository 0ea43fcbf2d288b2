"""The one place the handlers are wired: configuration, SDK clients, and the adapters built on them.

Everything here is built once per execution environment (a container) and reused across
invocations: clients are thread-safe and keep their connections warm.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

import botocore.session
from pydantic import BaseModel

from posting.adapters.clock import ClockWatch
from posting.adapters.dead_letters import DeadLetterQueue
from posting.adapters.event_bus import EventBus
from posting.adapters.ledger_table import LedgerTable
from posting.adapters.posting_queue import PostingQueue
from posting.domain.events import EVENT_SOURCE
from posting.handlers.config import AWS_CLIENT_CONFIG, EmitConfig, LedgerConfig, SweepConfig
from posting.steps.ports import Ledger, LedgerRecords

Settings = TypeVar("Settings", bound=BaseModel)


@cache
def botocore_session() -> botocore.session.Session:
    """The container's one SDK session. botocore, not boto3: boto3.client adds nothing to a client
    but boto3's import and s3transfer's, about a third of the post and emit cold starts."""
    return botocore.session.get_session()


@cache
def aws_client(service: str) -> Any:
    """One client per service per container, reused across invocations (clients are thread-safe)."""
    return botocore_session().create_client(service, config=AWS_CLIENT_CONFIG)


@cache
def settings(model: type[Settings]) -> Settings:
    """A function's configuration (a model of posting.handlers.config), parsed once from its environment."""
    parsed: Settings = model.from_environ()  # type: ignore[attr-defined]
    return parsed


@cache
def ledger() -> Ledger:
    return _ledger_table()


@cache
def ledger_records() -> LedgerRecords:
    """The ledger as operators' acts and the sweeper's announcements need it."""
    return _ledger_table().acts


@cache
def _ledger_table() -> LedgerTable:
    return LedgerTable(aws_client("dynamodb"), settings(LedgerConfig).ledger_table_name, clock=clock_watch())


@cache
def clock_watch() -> ClockWatch:
    """This container's clock against DynamoDB's, measured from every answer of its client."""
    return ClockWatch().attach(aws_client("dynamodb"))


@cache
def event_bus() -> EventBus:
    return EventBus(aws_client("events"), settings(EmitConfig).event_bus_name, EVENT_SOURCE)


@cache
def announcement_bus() -> EventBus:
    """The results bus as the sweeper publishes the ledger's records to it."""
    return EventBus(aws_client("events"), settings(SweepConfig).event_bus_name, EVENT_SOURCE)


@cache
def dead_letter_queue() -> DeadLetterQueue:
    return DeadLetterQueue(aws_client("sqs"), settings(EmitConfig).dead_letter_queue_url)


@cache
def posting_queue() -> PostingQueue:
    """The posting queue as the sweeper sends to it."""
    return PostingQueue(aws_client("sqs"), settings(SweepConfig).posting_queue_url)


@cache
def source_queue() -> PostingQueue:
    """The posting queue as the emit step hands records back to it."""
    return PostingQueue(aws_client("sqs"), settings(EmitConfig).posting_queue_url)
