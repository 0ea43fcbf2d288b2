"""Validate: the pipe's batch of SQS records in, one item per record out (rejections decided here)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from posting.handlers.observability import count, logger, metrics
from posting.steps.validate import validate_batch


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    batch = validate_batch(event)
    invalid = [item for item in batch.items if item.outcome is not None]
    for item in invalid:
        assert item.outcome is not None
        logger.info(
            "request rejected by validation",
            extra={"correlation_id": item.posting_id, "message_id": item.message_id, "reason": item.outcome.reason},
        )
    count(RequestsInvalid=len(invalid))
    return batch.to_event()
