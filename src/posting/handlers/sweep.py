"""Sweep: on a schedule, send an expiry request for every open hold past its expires_at."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from posting.domain.model import utc_timestamp
from posting.handlers.bootstrap import ledger, posting_queue, settings
from posting.handlers.config import SweepConfig
from posting.handlers.observability import logger, metrics
from posting.steps.expiry import sweep_expired_holds


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings(SweepConfig)  # the whole environment is checked at the first call, not piecemeal
    report = sweep_expired_holds(ledger(), posting_queue(), utc_timestamp(datetime.now(UTC)))
    if report.found:
        logger.info("expired holds sent for release", extra={"found": report.found, "sent": report.sent})
    metrics.add_metric(name="HoldsExpiring", unit=MetricUnit.Count, value=report.sent)
    return {"found": report.found, "sent": report.sent}
