"""Sweep: on a schedule, send an expiry request for every open hold past its expires_at."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from posting.adapters.ledger_table import LedgerTable
from posting.adapters.posting_queue import PostingQueue
from posting.domain.model import utc_timestamp
from posting.handlers.config import SweepConfig, aws_client
from posting.handlers.observability import logger, metrics
from posting.steps.expiry import sweep_expired_holds


@cache
def config() -> SweepConfig:
    return SweepConfig.from_environ()


@cache
def ledger() -> LedgerTable:
    return LedgerTable(aws_client("dynamodb"), config().ledger_table_name)


@cache
def posting_queue() -> PostingQueue:
    return PostingQueue(aws_client("sqs"), config().posting_queue_url)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = sweep_expired_holds(ledger(), posting_queue(), utc_timestamp(datetime.now(UTC)))
    if report.found:
        logger.info("expired holds sent for release", extra={"found": report.found, "sent": report.sent})
    metrics.add_metric(name="HoldsExpiring", unit=MetricUnit.Count, value=report.sent)
    return {"found": report.found, "sent": report.sent}
