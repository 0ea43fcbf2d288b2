"""Emit: result events to the bus, exhausted failures to the DLQ, and the pipe's batchItemFailures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from posting.handlers.bootstrap import dead_letter_queue, event_bus, settings, source_queue
from posting.handlers.config import EmitConfig
from posting.handlers.observability import count, logger, metrics
from posting.steps.emit import emit_batch, salvaged_batch
from posting.steps.items import Batch


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # With "error", a step failed as a whole and the workflow's Catch hands over what it had.
    batch = salvaged_batch(event) if "error" in event else Batch.from_event(event)
    if "error" in event:
        logger.error("a step failed for the whole batch", extra={"failed_step": event.get("failed_step")})
    report = emit_batch(batch, event_bus(), dead_letter_queue(), settings(EmitConfig).max_receive_count, source_queue())
    if report.unannounced_dead_letters:
        logger.error("dead letters sent without their event", extra={"count": report.unannounced_dead_letters})
    if report.batch_item_failures:
        logger.warning(
            "records returned to the queue",
            extra={"message_ids": report.batch_item_failures, "returned_soon": report.returned_soon},
        )
    count(DeadLettered=report.dead_lettered, ReturnedToQueue=len(report.batch_item_failures))
    return report.to_pipe_response()
