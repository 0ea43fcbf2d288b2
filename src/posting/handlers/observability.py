"""Logger and Metrics shared by the handlers (configured by POWERTOOLS_* variables).

No X-Ray SDK in the functions: with `Tracing: Active` the Lambda service records every invocation
itself (Init, Invocation and Overhead segments, linked to the workflow's trace), with no code here.
Powertools' Tracer would import aws_xray_sdk and patch botocore at import time, even when disabled:
about half of every cold start (`make bench`, its cold start section), for subsegments of SDK calls whose latency
and outcomes the logs and metrics already report.
"""

import logging
import os
import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit


class HeldLevel(logging.Filter):
    """Drops the handlers' lines below their own level, POWERTOOLS_LOG_LEVEL.

    Lambda's JSON log format filters lines by their level and counts a line without one as INFO: the
    metric lines have none, so the template keeps Lambda's application log level at INFO or below
    (AWS_LAMBDA_LOG_LEVEL), and Powertools takes Lambda's level over its own. A stricter level
    (WARNING, ERROR) is held here, where it spares the metric lines. Read at each line: a few a batch.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        wanted = logging.getLevelName(os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO").upper())
        return not isinstance(wanted, int) or record.levelno >= wanted


logger = Logger()
logger.addFilter(HeldLevel())
metrics = Metrics()

# A batch with nothing to count writes no metric line, on purpose (see count).
warnings.filterwarnings("ignore", message="No application metrics to publish")


def count(**counts: int) -> None:
    """Add each count that is not zero to this invocation's metric line (one line per batch).

    Dashboards and alarms read these as sums per minute, where a zero adds nothing: leaving zeros
    out keeps the line to what happened (most batches post and return, dead-letter and retry
    nothing). A minute in which nothing was counted shows no data point, which the alarms treat as
    not breaching.
    """
    for name, value in counts.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
