"""Post: decide every item in the ledger table, exactly once per posting_id."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from posting.domain.outcomes import Status
from posting.handlers.bootstrap import clock_watch, ledger, settings
from posting.handlers.config import PostConfig
from posting.handlers.observability import count, logger, metrics
from posting.steps.items import Batch
from posting.steps.post import post_batch
from posting.steps.sequencing import HELD_BACK

TIME_RESERVE_SECONDS = 3.0


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Stop starting new work with a few seconds left, so undecided items go back to the queue one by
    # one instead of the whole batch timing out.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - TIME_RESERVE_SECONDS
    batch = post_batch(Batch.from_event(event), ledger(), workers=settings(PostConfig).post_workers, deadline=deadline)
    rejected: Counter[str] = Counter()
    for item in batch.items:
        if item.failure is not None:
            logger.warning(
                "posting not decided, will retry",
                extra={
                    "correlation_id": item.posting_id,
                    "message_id": item.message_id,
                    "error": item.failure.error,
                    "error_message": item.failure.message,
                    "receive_count": item.receive_count,
                },
            )
            continue
        assert item.outcome is not None
        # Every decision is also a result event, which the audit rule copies into its own log group:
        # at INFO one summary line per batch (below) is enough, and costs a tenth of the log bytes.
        logger.debug(
            "posting decided",
            extra={
                "correlation_id": item.posting_id,
                "message_id": item.message_id,
                "status": item.outcome.status,
                "reason": item.outcome.reason,
            },
        )
        if item.outcome.status == Status.REJECTED and item.outcome.reason is not None:
            rejected[item.outcome.reason] += 1
    statuses = Counter(item.outcome.status for item in batch.items if item.outcome is not None)
    logger.info(
        "batch decided",
        extra={
            "records": len(batch.items),
            "statuses": {str(status): n for status, n in sorted(statuses.items())},
            "rejected": {str(reason): n for reason, n in sorted(rejected.items())},
            "undecided": sum(item.failure is not None for item in batch.items),
        },
    )
    # Of the undecided, the records of a FIFO queue's group that waited behind an earlier one not decided.
    held_back = sum(i.failure is not None and i.failure.error == HELD_BACK for i in batch.items)
    count(
        Posted=statuses[Status.POSTED],
        Duplicates=statuses[Status.DUPLICATE],
        Undecided=sum(i.failure is not None for i in batch.items),
        **({"HeldBack": held_back} if held_back else {}),
    )
    for reason, rejections in rejected.items():
        with single_metric(name="Rejected", unit=MetricUnit.Count, value=rejections) as metric:
            metric.add_dimension(name="reason", value=reason)
    # How far this host's clock is from DynamoDB's (Date headers, 1 s resolution): beyond 2 s the
    # ledger refuses to write until it is right (posting.adapters.clock), and an alarm says so.
    if (offset := clock_watch().offset_ms()) is not None:
        metrics.add_metric(name="ClockOffsetMs", unit=MetricUnit.Milliseconds, value=offset)
    return batch.to_event()
