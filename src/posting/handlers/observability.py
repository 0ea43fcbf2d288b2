"""Logger and Metrics shared by the handlers (configured by POWERTOOLS_* variables).

No X-Ray SDK in the functions: with `Tracing: Active` the Lambda service records every invocation
itself (Init, Invocation and Overhead segments, linked to the workflow's trace), with no code here.
Powertools' Tracer would import aws_xray_sdk and patch botocore at import time, even when disabled:
about half of every cold start (`make bench`, its cold start section), for subsegments of SDK calls whose latency
and outcomes the logs and metrics already report.
"""

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
