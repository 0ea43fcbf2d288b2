"""The report: the machine a run measured on, and the JSON (and Markdown) a run writes to bench-results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from posting_cli.bench.section import RESULTS_DIR, ROOT, Section


def machine_info() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        commit = ""
    from posting_cli.local.dynamodb_local import DYNAMODB_LOCAL_VERSION

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "git": commit or None,
        "versions": {
            package: version(package)
            for package in ("boto3", "botocore", "moto", "pydantic", "aws-lambda-powertools", "aws-xray-sdk")
        }
        | {"dynamodb-local": DYNAMODB_LOCAL_VERSION},
    }


def write_json(stamp: datetime, total_s: float, machine: dict[str, Any], sections: Sequence[Section]) -> Path:
    """bench-results/<UTC timestamp>.json: every section's data, with the machine and the method behind it."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp:%Y%m%dT%H%M%SZ}.json"
    report = {
        "started_at": stamp.isoformat(),
        "total_runtime_s": round(total_s, 1),
        "machine": machine,
        "sections": {section.key: section.to_json() for section in sections},
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


# The last run's report, committed as the project's benchmark page; `make bench` rewrites it.
PUBLISHED_DIR = ROOT / "docs" / "bench"


def write_markdown(
    stamp: datetime, total_s: float, machine: dict[str, Any], sections: Sequence[Section], json_path: Path
) -> list[Path]:
    """bench-results/<stamp>.md with PNG charts beside it, and the same report in docs/bench/."""
    data = {section.key: section for section in sections}
    written = []
    for directory, chart_prefix in ((RESULTS_DIR, f"{stamp:%Y%m%dT%H%M%SZ}-"), (PUBLISHED_DIR, "")):
        directory.mkdir(parents=True, exist_ok=True)
        charts = draw_charts(data, directory, chart_prefix)
        name = f"{stamp:%Y%m%dT%H%M%SZ}.md" if directory == RESULTS_DIR else "README.md"
        path = directory / name
        path.write_text(markdown(stamp, total_s, machine, sections, json_path, charts=charts))
        written.append(path)
    return written


# What the report is and how to read it: the same words on every run.
ABOUT = [
    "`make bench` writes this page (`tools/posting_cli/bench/`, one module per section) and the charts beside",
    "it, and keeps every run's JSON and Markdown in `bench-results/`. Each section shows what was measured,",
    "then how. Every section but the cost model measures the local engines on the machine named below: use",
    "them to compare runs and find bottlenecks, not to predict AWS. The cost model is arithmetic on AWS list",
    "prices, fed with the item sizes, durations and log bytes measured in the sections before it.",
    "",
    "Where the speed targets are missed: the cold start of the post and emit handlers is mostly the libraries",
    "they import (the `(ref)` rows: botocore, pydantic, Powertools), so trimming the project's own modules",
    "cannot bring it under the target; the next lever is Lambda SnapStart for Python. The local pipeline's",
    "throughput and latency are bound by CPU: moto, the ASL interpreter, the handlers and the load generator",
    "share one Python process and one GIL, next to DynamoDB Local on the same cores (its CPU lines show the",
    "bound this puts on the run).",
]


def markdown(
    stamp: datetime,
    total_s: float,
    machine: dict[str, Any],
    sections: Sequence[Section],
    json_path: Path,
    *,
    charts: dict[str, str],
) -> str:
    out = [
        f"# Posting pipeline benchmark, {stamp:%Y-%m-%d %H:%M} UTC",
        "",
        *ABOUT,
        "",
        f"Machine: {machine['platform']}, {machine['cpu_count']} CPUs, {machine['memory_gb']} GB, Python "
        f"{machine['python']}; load average {machine['load_average_at_start']} at start, "
        f"{machine.get('load_average_at_end')} at end; git {machine.get('git')}; total {total_s:,.0f} s.",
        "A shared, noisy machine: every number is one run's measurement; compare runs, re-run before quoting.",
        f"Data: `{json_path.relative_to(ROOT)}` (not committed; `make bench` writes it).",
        "",
    ]
    titles = {
        "latency": "Latency, enqueue to result event",
        "throughput": "Throughput over time, whole local pipeline",
        "cost": "Cost per million postings",
        "ledger": "Hot versus distinct accounts",
    }
    for key, file_name in charts.items():
        out += [f"![{titles[key]}]({file_name})", ""]
    for section in sections:
        out += [f"## {section.title}", "", "```", *section.lines, "```", "", f"Method: {section.method}", ""]
    return "\n".join(out)


def draw_charts(sections: dict[str, Section], directory: Path, prefix: str) -> dict[str, str]:
    """PNG charts of the run (matplotlib, headless); returns file names by chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, str] = {}

    def save(key: str, figure: Any) -> None:
        name = f"{prefix}{key}.png"
        figure.tight_layout()
        figure.savefig(directory / name, dpi=110)
        plt.close(figure)
        charts[key] = name

    if "pipeline" in sections:
        pipeline_charts(plt, sections["pipeline"], save)
    if "cost" in sections:
        cost_chart(plt, sections["cost"], save)
    if "ledger" in sections:
        ledger_chart(plt, sections["ledger"], save)
    return charts


def pipeline_charts(plt: Any, pipeline: Section, save: Any) -> None:
    phases = {n: p for n, p in pipeline.data["phases"].items() if p.get("samples")}
    figure, axis = plt.subplots(figsize=(7, 3.6))
    for name, phase in phases.items():
        latencies = sorted(phase["samples"]["latency_ms"])
        if latencies:
            shares = [(i + 1) / len(latencies) for i in range(len(latencies))]
            axis.plot(latencies, shares, label=f"{name} ({phase['in_flight']} in flight)")
    axis.set_xscale("log")
    axis.set_xlabel("enqueue -> result event, ms (log scale)")
    axis.set_ylabel("share of requests")
    axis.axhline(0.5, color="grey", linewidth=0.5)
    axis.axhline(0.99, color="grey", linewidth=0.5)
    axis.legend(fontsize=8)
    axis.set_title("Latency distribution (cumulative)")
    save("latency", figure)

    figure, axis = plt.subplots(figsize=(7, 3.6))
    for name, phase in phases.items():
        decided = phase["samples"]["decided_at_s"]
        if decided:
            seconds = int(max(decided)) + 1
            per_second = [0] * seconds
            for at in decided:
                per_second[max(0, int(at))] += 1
            axis.plot(range(seconds), per_second, label=name)
    axis.set_xlabel("seconds into the phase")
    axis.set_ylabel("results per second")
    axis.legend(fontsize=8)
    axis.set_title("Throughput over time")
    save("throughput", figure)


def cost_chart(plt: Any, cost: Section, save: Any) -> None:
    """Stacked bars per operating point and shape; the largest lines in distinct colours, the rest in greys."""
    breakdown = cost.data["breakdown"]
    bars = list(breakdown)
    components = list(dict.fromkeys(line["component"] for lines in breakdown.values() for line in lines))

    def usd(bar: str, component: str) -> float:
        return next((line["usd_per_million_postings"] for line in breakdown[bar] if line["component"] == component), 0)

    ranked = sorted(components, key=lambda component: -sum(usd(bar, component) for bar in bars))
    palette = plt.get_cmap("tab10")
    greys = plt.get_cmap("Greys")
    colours = {component: palette(index) for index, component in enumerate(ranked[:10])}
    rest = ranked[10:]
    colours |= {component: greys(0.25 + 0.5 * index / max(1, len(rest))) for index, component in enumerate(rest)}
    figure, axis = plt.subplots(figsize=(11, 4.6))
    left = [0.0] * len(bars)
    for component in ranked:
        values = [usd(bar, component) for bar in bars]
        axis.barh(bars, values, left=left, label=component, color=colours[component])
        left = [a + b for a, b in zip(left, values, strict=True)]
    goals = cost.data.get("goals_usd_per_million") or {"goal": cost.data.get("goal_usd_per_million", 5)}
    for style, (point, goal) in zip(("--", ":"), goals.items(), strict=False):
        axis.axvline(goal, color="black", linestyle=style, linewidth=1, label=f"{point} goal ${goal:g}")
    axis.invert_yaxis()
    axis.set_xlabel("$ per million postings")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axis.set_title("Cost per million postings, by line (template as deployed, on-demand)")
    save("cost", figure)


def ledger_chart(plt: Any, ledger: Section, save: Any) -> None:
    scenarios = ledger.data["scenarios"]
    labels = [f"{s['scenario']}\n{s['threads']} thread(s)" for s in scenarios]
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(8, 3.6))
    rate_axis.bar(labels, [s["postings_per_s_median"] for s in scenarios], color="tab:blue")
    rate_axis.set_ylabel("postings/s (median of repeats)")
    latency_axis.bar(labels, [s["latency_ms_p95"] for s in scenarios], color="tab:orange")
    latency_axis.set_ylabel("p95 ms per posting")
    for axis in (rate_axis, latency_axis):
        axis.tick_params(axis="x", labelsize=7)
    figure.suptitle("Ledger on DynamoDB Local: hot versus distinct accounts")
    save("ledger", figure)
