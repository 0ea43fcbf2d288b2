"""The handlers' lines under Lambda's JSON log format: the level they keep, and the metric lines.

Lambda's application log level stays at INFO or below (template.yaml, Mappings) because a line
without a level, as every metric line is, counts as INFO there; Powertools then follows Lambda's
level over POWERTOOLS_LOG_LEVEL. These tests pin that the handlers still hold a stricter LogLevel
themselves, and that the metric lines are written whatever it is.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.metrics import MetricUnit

from posting.handlers.observability import HeldLevel, logger, metrics
from posting_cli.local.template import Resolver, Template


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the handlers' logger writes, whatever stream its own handler holds."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    underlying = logging.getLogger(logger.name)
    underlying.addHandler(handler)
    try:
        yield stream
    finally:
        underlying.removeHandler(handler)


def test_a_stricter_log_level_is_held_by_the_handlers_when_lambda_keeps_info(
    monkeypatch: pytest.MonkeyPatch, lines: io.StringIO
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "INFO")  # as the template sets it for LogLevel WARNING
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    logger.info("batch decided")
    logger.warning("posting not decided, will retry")
    written = lines.getvalue()
    assert "batch decided" not in written
    assert "posting not decided" in written


def test_info_lines_are_written_at_log_level_info(monkeypatch: pytest.MonkeyPatch, lines: io.StringIO) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "INFO")
    logger.info("batch decided")
    assert "batch decided" in lines.getvalue()


@pytest.mark.parametrize(("level", "kept"), [("DEBUG", True), ("INFO", True), ("WARNING", False), ("ERROR", False)])
def test_the_held_level_is_powertools_log_level(monkeypatch: pytest.MonkeyPatch, level: str, kept: bool) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)
    record = logging.LogRecord("posting", logging.INFO, __file__, 1, "batch decided", None, None)
    assert HeldLevel().filter(record) is kept


def test_metric_lines_are_written_at_log_level_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "INFO")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "ERROR")
    metrics.add_metric(name="Posted", unit=MetricUnit.Count, value=3)
    metrics.flush_metrics()
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert blob["Posted"] == [3.0]
    assert "level" not in blob  # Lambda counts it as INFO: its application level must not exceed INFO


@pytest.mark.parametrize("log_level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_lambdas_application_level_never_drops_the_metric_lines(log_level: str) -> None:
    template = Template.load(overrides={"LogLevel": log_level})
    config = Resolver(template).resolve(template.function_globals()["LoggingConfig"])
    assert config["LogFormat"] == "JSON"
    assert logging.getLevelName(config["ApplicationLogLevel"]) <= logging.INFO
    assert config["ApplicationLogLevel"] == (log_level if log_level in ("DEBUG", "INFO") else "INFO")
    for logical_id in template.resources_of_type("AWS::Serverless::Function"):
        assert set(template.properties(logical_id)["LoggingConfig"]) == {"LogGroup"}  # the rest from Globals


def test_a_batch_counts_only_what_happened(capsys: pytest.CaptureFixture[str]) -> None:
    from posting.handlers.observability import count

    count(Posted=2, Duplicates=0, Undecided=0)
    metrics.flush_metrics()
    (blob,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["Posted"]
    assert blob["Posted"] == [2.0]


def test_a_batch_with_nothing_to_count_writes_no_metric_line(capsys: pytest.CaptureFixture[str]) -> None:
    import warnings

    from posting.handlers.observability import count

    count(DeadLettered=0, ReturnedToQueue=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        metrics.flush_metrics()
    assert '"_aws"' not in capsys.readouterr().out


def test_the_handlers_count_what_the_dashboard_and_alarms_read() -> None:
    """Every metric the handlers write is read by the dashboard or an alarm (the sweeper's once a
    minute aside), so a batch's metric line holds nothing that no one looks at."""
    from posting_cli.bench.cost_inputs import custom_metrics

    template = Template.load().flattened()
    (dashboard,) = template.resources_of_type("AWS::CloudWatch::Dashboard").values()
    read = json.dumps(dashboard) + json.dumps(
        [template.properties(a) for a in template.resources_of_type("AWS::CloudWatch::Alarm")]
    )
    per_batch = set(custom_metrics()) - {"HoldsExpiring", "CheckpointsWritten", "LedgerRecordsAnnounced"}  # sweeper
    assert per_batch == {
        "Posted",
        "Duplicates",
        "Undecided",
        "Rejected",
        "RequestsInvalid",
        "DeadLettered",
        "ReturnedToQueue",
        "ClockOffsetMs",  # HostClockOffsetAlarm
    }
    for name in per_batch:
        assert re.search(rf"\b{name}\b", read), name
