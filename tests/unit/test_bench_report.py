"""The bench's Markdown report and charts, from sections shaped like a real run's (no engines)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from posting_cli.bench.report import draw_charts, markdown
from posting_cli.bench.section import ROOT, Section

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sections() -> dict[str, Section]:
    phase = {"in_flight": 10, "samples": {"latency_ms": [90, 120, 150, 400], "decided_at_s": [0.2, 0.9, 1.4, 2.5]}}
    line = {"component": "DynamoDB writes", "usd_per_million_postings": 6.25}
    events = {"component": "EventBridge events", "usd_per_million_postings": 1.0}
    cost = {
        "breakdown": {"20M/month demo": [line, events], "1111/s demo": [line]},
        "goals_usd_per_million": {"1111/s": 5.0, "20M/month": 8.0},
    }
    return {
        "pipeline": Section("pipeline", "3. Pipeline", "m", {"phases": {"moderate": phase}}, ["p50 120 ms"]),
        "cost": Section("cost", "6. Cost", "m", cost, []),
        "hot_accounts": Section(
            "hot_accounts",
            "4. Contention",
            "m",
            {
                "shapes": [scenario("spread", 66), scenario("hot settlement", 90), scenario("funding burst", 67)],
                "busy_limited_account": scenario("busy limited account", 28, conflicts=1.9),
                "hot_vs_spread": 1.37,
                "capacity_model": {"tau_ms": 20.0},
            },
            [],
        ),
    }


def scenario(shape: str, rate: float, conflicts: float = 0.0) -> dict[str, object]:
    return {
        "shape": shape,
        "postings_per_s": rate,
        "latency_ms": {"p50": 82.0, "p99": 152.0, "max": 400.0},
        "conflicts_per_posting": conflicts,
    }


def test_every_chart_is_a_png(tmp_path: Path) -> None:
    charts = draw_charts(sections(), tmp_path, "run-")
    assert set(charts) == {"latency", "throughput", "cost", "ledger"}
    for name in charts.values():
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)


def test_the_report_links_its_charts_and_prints_each_section() -> None:
    machine = {"platform": "Linux", "cpu_count": 2, "memory_gb": 4, "python": "3.13", "load_average_at_start": [1]}
    text = markdown(
        datetime(2026, 12, 1, tzinfo=UTC),
        60.0,
        machine,
        list(sections().values()),
        ROOT / "bench-results" / "x.json",
        charts={"latency": "latency.png", "cost": "cost.png"},
    )
    assert "](latency.png)" in text and "](cost.png)" in text
    assert "## 3. Pipeline" in text and "p50 120 ms" in text
    assert "noisy" in text


def test_the_cpu_bound_is_cores_over_cpu_per_request(monkeypatch) -> None:
    from posting_cli.bench import pipeline

    monkeypatch.setattr(pipeline.os, "cpu_count", lambda: 2)
    lines = pipeline.cpu_lines({"python": 15.0, "dynamodb_local": 5.0}, {"python": 2.0, "dynamodb_local": 6.0})
    assert "cannot pass 100/s, nor 67/s" in lines[1]  # 2,000 / 20 and 1,000 / 15
    assert lines[1].endswith("bound is 250/s.")  # 2,000 / 8
    assert pipeline.cpu_lines({"python": 1.0, "dynamodb_local": None}, {})[0].startswith("CPU per request: not")


def test_the_contention_chart_plots_section_4(tmp_path: Path) -> None:
    """The chart the report quotes: section 4 (one unlimited account against distinct ones), not the
    ledger section's one-account version race."""
    only_ledger = {"ledger": Section("ledger", "3. Ledger", "m", {"scenarios": []}, [])}
    assert "ledger" not in draw_charts(only_ledger, tmp_path, "")
    assert draw_charts({"hot_accounts": sections()["hot_accounts"]}, tmp_path, "") == {"ledger": "ledger.png"}


def test_throughput_bins_fit_the_run_and_its_last_partial_bin() -> None:
    from posting_cli.bench.report import bin_seconds, binned_rate

    assert bin_seconds(3.4) == 0.25  # a 3 s phase gets 14 bins, not 4
    assert bin_seconds(12.2) == 1.0
    assert bin_seconds(600) == 60.0
    # 10 results a second for 2.5 s: the last half-bin shows its own rate, not half of it.
    moments = [i / 10 for i in range(1, 26)]
    starts, rates = binned_rate(moments, 1.0)
    assert starts == [0.0, 1.0, 2.0, 2.5]
    assert rates[:3] == pytest.approx([9.0, 10.0, 12.0])
    assert sum(r * w for r, w in zip(rates[:3], [1.0, 1.0, 0.5], strict=True)) == pytest.approx(len(moments))
    # A sliver at the end (2.0 to 2.2 s) joins the bin before: 1.2 s at the same rate, no spike.
    starts, rates = binned_rate([i / 10 for i in range(1, 23)], 1.0)
    assert starts == [0.0, 1.0, 2.2]
    assert rates == pytest.approx([9.0, 13 / 1.2, 13 / 1.2])
