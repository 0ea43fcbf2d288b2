"""The report: the machine a run measured on, and the JSON (and Markdown) a run writes to bench-results/."""

from __future__ import annotations

import json
import math
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
    "cannot bring it under the target. Lambda SnapStart would shorten it, but at both operating points cold",
    "starts are under 0.01% of executions and its charges exceed the INIT it saves (section 8). The local pipeline's",
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
    if "hot_accounts" in sections:
        hot_accounts_chart(plt, sections["hot_accounts"], save)
    return charts


def pipeline_charts(plt: Any, pipeline: Section, save: Any) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    phases = {n: p for n, p in pipeline.data["phases"].items() if p.get("samples")}
    figure, axis = plt.subplots(figsize=(9, 3.8))
    for name, phase in phases.items():
        latencies = sorted(phase["samples"]["latency_ms"])
        if latencies:
            shares = [(i + 1) / len(latencies) for i in range(len(latencies))]
            axis.plot(latencies, shares, label=f"{name} ({phase['in_flight']} in flight)")
    axis.set_xscale("log")
    # Plain milliseconds at 1, 2 and 5 of each decade; no labels on the other minor ticks (they overlap).
    axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel("enqueue -> result event, ms (log scale)")
    axis.set_ylabel("share of requests")
    axis.axhline(0.5, color="grey", linewidth=0.5)
    axis.axhline(0.99, color="grey", linewidth=0.5)
    # Beside the plot, not over it: the curves fill its whole width.
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.set_title("Latency distribution (cumulative)")
    save("latency", figure)

    figure, axis = plt.subplots(figsize=(9, 3.8))
    ends = [max(p["samples"]["decided_at_s"]) for p in phases.values() if p["samples"]["decided_at_s"]]
    longest = max(ends, default=0.0)
    width = bin_seconds(longest)
    for name, phase in phases.items():
        decided = phase["samples"]["decided_at_s"]
        if decided:
            starts, rates = binned_rate(decided, width)
            axis.step(starts, rates, where="post", label=name)
    axis.set_xlabel(f"seconds into the phase ({width:g} s bins)")
    axis.set_ylabel("results per second")
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    axis.set_title("Throughput over time")
    save("throughput", figure)


BIN_WIDTHS_S = (0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0)
# Results arrive a batch at a time: a bin holds several batches when the longest phase has about a dozen.
BINS_PER_RUN = 12


def bin_seconds(longest_s: float) -> float:
    """The round bin width that gives the longest phase the number of bins nearest BINS_PER_RUN."""
    return min(BIN_WIDTHS_S, key=lambda width: abs(longest_s / width - BINS_PER_RUN))


def binned_rate(moments_s: list[float], width_s: float) -> tuple[list[float], list[float]]:
    """Results per second in bins of `width_s` from 0 to the last result; the last bin is as wide as the
    run it covers (a phase that ends mid-bin shows no drop that did not happen), and one shorter than
    half a bin joins the one before (a few results over a sliver would show a spike). The last value
    is repeated to close the step."""
    end = max(moments_s)
    count = max(1, math.ceil(end / width_s))
    if count > 1 and end - (count - 1) * width_s < width_s / 2:
        count -= 1
    totals = [0] * count
    for moment in moments_s:
        totals[min(count - 1, max(0, int(moment / width_s)))] += 1
    starts = [index * width_s for index in range(count)]
    widths = [width_s] * (count - 1) + [end - starts[-1] or width_s]
    rates = [total / covered for total, covered in zip(totals, widths, strict=True)]
    return [*starts, end], [*rates, rates[-1]]


def cost_chart(plt: Any, cost: Section, save: Any) -> None:
    """Stacked bars per operating point and shape: the largest lines in colours no two of which are alike
    (and labelled with their share), the rest in greys."""
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
    colours |= {component: greys(0.2 + 0.45 * index / max(1, len(rest))) for index, component in enumerate(rest)}
    hatches = {component: "//" for component in ranked[7:10]}  # tab10's last colours are the palest: hatched
    figure, axis = plt.subplots(figsize=(11, 4.8))
    left = [0.0] * len(bars)
    for component in ranked:
        values = [usd(bar, component) for bar in bars]
        axis.barh(
            bars,
            values,
            left=left,
            label=component,
            color=colours[component],
            hatch=hatches.get(component),
            edgecolor="white",
            linewidth=0.5,
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    for index, total in enumerate(left):
        axis.text(total, index, f" ${total:,.2f}", va="center", fontsize=8)
    goals = cost.data.get("goals_usd_per_million") or {"goal": cost.data.get("goal_usd_per_million", 5)}
    for style, (point, goal) in zip(("--", ":"), goals.items(), strict=False):
        axis.axvline(goal, color="black", linestyle=style, linewidth=1, label=f"{point} goal ${goal:g}")
    axis.invert_yaxis()
    axis.set_xlim(right=max(left, default=1) * 1.12)
    axis.set_xlabel("$ per million postings")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axis.set_title("Cost per million postings, by line (template.yaml as it is, on-demand)")
    save("cost", figure)


def hot_accounts_chart(plt: Any, contention: Section, save: Any) -> None:
    """Section 4 as the report quotes it: each traffic shape through the local pipeline under
    DynamoDB's conflict rule (spread, hot settlement, funding burst) and the busy limited account,
    with its rate, its conflicts per posting and its latency."""
    data = contention.data
    scenarios = [*data["shapes"], data["busy_limited_account"]]
    labels = [str(s["shape"]).replace(" ", "\n", 1) for s in scenarios]
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"][: len(scenarios)]
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    rates = [s["postings_per_s"] or 0 for s in scenarios]
    rate_axis.bar(labels, rates, color=colours)
    for index, scenario in enumerate(scenarios):
        rate_axis.annotate(
            f"{rates[index]:,.1f}/s\n{scenario['conflicts_per_posting'] or 0:.2f} conflicts/posting",
            (index, rates[index]),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    rate_axis.set_ylabel("postings/s")
    rate_axis.set_ylim(top=max(rates) * 1.35 or 1)
    rate_axis.tick_params(axis="x", labelsize=7)
    positions = range(len(scenarios))
    latency_axis.bar([p - 0.2 for p in positions], [s["latency_ms"]["p50"] for s in scenarios], 0.4, label="p50")
    latency_axis.bar([p + 0.2 for p in positions], [s["latency_ms"]["p99"] for s in scenarios], 0.4, label="p99")
    latency_axis.set_xticks(list(positions), labels)
    latency_axis.tick_params(axis="x", labelsize=7)
    latency_axis.set_ylabel("ms per posting")
    latency_axis.legend(fontsize=8)
    tau = (data.get("capacity_model") or {}).get("tau_ms")
    rules = f"strict conflict rules, τ {tau:g} ms" if tau else "conflict rules not recorded"
    figure.suptitle(
        f"Contention on DynamoDB Local, {rules}: hot settlement / spread {data['hot_vs_spread']:.2f}x",
        fontsize=10,
    )
    save("ledger", figure)
