"""Sweep: on a schedule, release expired holds, checkpoint the lanes of unlimited accounts, and
publish the events operators' acts owe (the ledger's outbox)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from posting.domain.model import utc_timestamp
from posting.handlers.bootstrap import announcement_bus, ledger, ledger_records, posting_queue, settings
from posting.handlers.config import SweepConfig
from posting.handlers.observability import count, logger, metrics
from posting.steps.checkpoints import checkpoint_lanes
from posting.steps.expiry import sweep_expired_holds
from posting.steps.ledger_acts import announce


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings(SweepConfig)  # the whole environment is checked at the first call, not piecemeal
    now = datetime.now(UTC)
    report = sweep_expired_holds(ledger(), posting_queue(), utc_timestamp(now))
    if report.found:
        logger.info("expired holds sent for release", extra={"found": report.found, "sent": report.sent})
    checkpoints = checkpoint_lanes(ledger(), now)
    announced = announce(ledger_records(), announcement_bus())
    count(HoldsExpiring=report.sent, CheckpointsWritten=checkpoints.written, LedgerRecordsAnnounced=announced)
    return {
        "found": report.found,
        "sent": report.sent,
        "checkpoints": checkpoints.written,
        "lines_checkpointed": checkpoints.lines,
        "announced": announced,
    }
