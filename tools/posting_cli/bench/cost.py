"""8. Cost per posting on AWS, us-east-1: the cost model at two operating points, for three traffic shapes.

    .venv/bin/python -m posting_cli.bench.cost      (`make cost`: the committed inputs, no engines, seconds)

`make bench` prints the same report from what its run measured (section 7 and the others). The
points: 20M postings a month, flat (7.6/s), at the fill the pipe really gets (simulated from the
pollers, the batching window and the measured workflow time); and the AWS guidance's 1,111/s,
sustained, with full batches. The shapes: spread (2-leg transfers between customers), hot (2-leg
card payments into one unlimited settlement account) and demo (the demo's traffic, shape by shape).
The report ends with one line per point and shape, `cost <point> <shape>: $<usd> per million`.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from posting_cli.bench import cost_inputs as inputs
from posting_cli.bench.batch_fill import FillResult, simulate_fill
from posting_cli.bench.cost_model import (
    GUIDANCE_REQUESTS_PER_MONTH,
    GUIDANCE_USD_PER_MONTH,
    HOURS_PER_MONTH,
    PRICES_SOURCE,
    SECONDS_PER_MONTH,
    XRAY_DEFAULT_FIXED_RATE,
    XRAY_DEFAULT_RESERVOIR_PER_SECOND,
    BatchProfile,
    CostLine,
    Deployment,
    ExtraInputs,
    FunctionTiming,
    Mix,
    OperatingPoint,
    Prices,
    cloudtrail_events_per_posting,
    cost_lines,
    lambda_cpu_stretch,
    lambda_init_gb_seconds_per_month,
    line_usd,
    provisioned_break_even_utilisation,
    snapstart_usd_per_month,
    storage_per_month_kept,
    total_usd,
    xray_traced_fraction,
)
from posting_cli.bench.section import Section, fmt_table
from posting_cli.local.template import Template

SHAPES = ("spread", "hot", "demo")
POINTS = (inputs.POINT_FLAT, inputs.POINT_FULL)
TARGETS_USD_PER_MILLION = {inputs.POINT_FULL: 5.00, inputs.POINT_FLAT: 8.00}
LATENCY_P99_BUDGET_MS = 1_000  # enqueue -> result at the flat point, for any batching window default
POLLER_UTILISATION = 0.7  # pollers busy this share of the time at 1,111/s: Pipes scales them out to keep up


@dataclass(frozen=True)
class Lever:
    """A change to the template that costs no semantics, priced against the template without any."""

    name: str
    pulled: bool  # template.yaml has it
    deployment: Deployment  # the template without the levers, with this one
    profile: BatchProfile | None = None  # a lever on what the handlers write, not on the template
    why_not: str = ""  # for a lever left out: what it would cost, or why it does not apply


@dataclass
class CostModel:
    """Every figure of the report, computed from explicit inputs."""

    template: Template
    prices: Prices
    profile: BatchProfile
    deployment: Deployment
    mixes: dict[str, Mix]
    init_ms: Mapping[str, float]
    points: dict[str, OperatingPoint]
    fills: dict[str, FillResult]

    def concurrency(self, point: OperatingPoint) -> dict[str, float]:
        """Busy execution environments per function (Little's law: executions/s x duration)."""
        return {
            name: point.executions_per_second * self.profile.lambda_ms(name, point.fill) / 1000
            for name in self.profile.functions
        }

    def extras(self, point: OperatingPoint, deployment: Deployment) -> ExtraInputs:
        init = lambda_init_gb_seconds_per_month(
            self.init_ms, self.concurrency(point), deployment.lambda_memory_mb, inputs.ENVIRONMENT_LIFETIME_HOURS
        )
        return ExtraInputs(init, inputs.fixed_monthly_costs(self.template, deployment, self.prices))

    def lines(
        self, shape: str, point: str, deployment: Deployment | None = None, profile: BatchProfile | None = None
    ) -> list[CostLine]:
        deployment = deployment or self.deployment
        at = self.points[point]
        return cost_lines(
            self.mixes[shape],
            profile or self.profile,
            at,
            deployment,
            prices=self.prices,
            extra=self.extras(at, deployment),
        )

    def total(
        self, shape: str, point: str, deployment: Deployment | None = None, profile: BatchProfile | None = None
    ) -> float:
        return total_usd(self.lines(shape, point, deployment, profile))

    @property
    def provisioned_target(self) -> float:
        return inputs.provisioned_target(self.template)

    def with_point(self, point: str, **changes: Any) -> CostModel:
        points = dict(self.points)
        points[point] = dataclasses.replace(points[point], **changes)
        return dataclasses.replace(self, points=points)


def build_model(
    *,
    template: Template | None = None,
    profile: BatchProfile | None = None,
    init_ms: Mapping[str, float] | None = None,
    hot_attempts: float = 1.0,
    prices: Prices | None = None,
) -> CostModel:
    """The model from the committed inputs, or from a bench run's measurements where given."""
    template = template or Template.load()
    deployment = inputs.deployment_from_template(template)
    profile = (profile or inputs.batch_profile()).at_memory(deployment.lambda_memory_mb)
    hot = inputs.hot_mix()
    if hot_attempts != 1.0:
        hot = Mix(
            hot.name, tuple((s, dataclasses.replace(r, transaction_attempts=hot_attempts)) for s, r in hot.shapes)
        )
    mixes = {"spread": inputs.spread_mix(), "hot": hot, "demo": inputs.demo_mix()}
    flat_rate = inputs.FLAT_POSTINGS_PER_MONTH / SECONDS_PER_MONTH
    batch = deployment.batch_size
    flat = simulate(
        profile, flat_rate, pollers=inputs.PIPE_POLLERS, batch_size=batch, window_s=deployment.batching_window_s
    )
    full_pollers = pollers_for(profile, inputs.FULL_POSTINGS_PER_SECOND, batch)
    full = simulate(profile, inputs.FULL_POSTINGS_PER_SECOND, pollers=full_pollers, batch_size=batch, window_s=1.0)
    points = {
        inputs.POINT_FLAT: OperatingPoint(inputs.POINT_FLAT, flat_rate, flat.mean_fill),
        inputs.POINT_FULL: OperatingPoint(
            inputs.POINT_FULL, inputs.FULL_POSTINGS_PER_SECOND, float(deployment.batch_size)
        ),
    }
    return CostModel(
        template=template,
        prices=prices or Prices(),
        profile=profile,
        deployment=deployment,
        mixes=mixes,
        init_ms=dict(init_ms or inputs.INIT_MS),
        points=points,
        fills={inputs.POINT_FLAT: flat, inputs.POINT_FULL: full},
    )


def pollers_for(profile: BatchProfile, rate: float, batch_size: int) -> int:
    """Pollers that keep up with `rate` in full batches, each busy POLLER_UTILISATION of the time
    (Little's law: executions per second x seconds per execution)."""
    busy = rate / batch_size * (inputs.SQS_HANDOVER_MS + profile.workflow_ms(batch_size)) / 1000
    return max(1, math.ceil(busy / POLLER_UTILISATION))


def simulate(
    profile: BatchProfile,
    rate: float,
    *,
    pollers: int,
    batch_size: int,
    window_s: float,
    producer_flush_ms: float = 0.0,
) -> FillResult:
    return simulate_fill(
        rate,
        pollers=pollers,
        batch_size=batch_size,
        window_s=window_s,
        workflow_ms=profile.workflow_ms,
        handover_ms=inputs.SQS_HANDOVER_MS,
        delivery_ms=inputs.RESULT_DELIVERY_MS,
        producer_flush_ms=producer_flush_ms,
    )


# --- the levers -------------------------------------------------------------------------------------
# What the template would be without the levers that cost no semantics: X-Ray's default rule, Lambda's
# text logs, the trail recording every principal, 512 MB, every metric of the handlers written each batch.
UNPULLED_MEMORY_MB = 512
AUDIT_LOG_NOT_PULLED = (
    "`posting smoke` and `make logs` read the audit log group with FilterLogEvents, which the Infrequent "
    "Access class refuses (InvalidOperationException), as it refuses Live Tail, metric and subscription "
    "filters; and a log group's class cannot change once created"
)


def without_levers(deployment: Deployment) -> Deployment:
    return dataclasses.replace(
        deployment,
        trail_excludes_pipeline_roles=False,
        xray_reservoir_per_second=XRAY_DEFAULT_RESERVOIR_PER_SECOND,
        xray_fixed_rate=XRAY_DEFAULT_FIXED_RATE,
        platform_log_bytes_per_invocation=inputs.PLATFORM_LOG_BYTES_PER_INVOCATION,
        audit_log_infrequent_access=False,
        lambda_memory_mb=UNPULLED_MEMORY_MB,
        provisioned_utilisation=None,
    )


def untrimmed(profile: BatchProfile) -> BatchProfile:
    """The handlers writing every metric each batch, zeros included (measured before they were trimmed)."""
    return dataclasses.replace(
        profile,
        log_bytes_per_batch=inputs.LOG_BYTES_PER_BATCH_EVERY_METRIC,
        log_bytes_per_record=inputs.LOG_BYTES_PER_RECORD_EVERY_METRIC,
    )


def template_levers(model: CostModel) -> list[Lever]:
    """Each lever alone on the template without any: pulled (as template.yaml is) or left out, and why."""
    deployment = model.deployment
    base = without_levers(deployment)
    replace = dataclasses.replace
    sampled = deployment.xray_reservoir_per_second == 0
    rate = deployment.xray_fixed_rate if sampled else 0.01
    memory = chosen_memory_mb(model)
    return [
        Lever(
            "CloudTrail: leave out the pipeline's own roles",
            deployment.trail_excludes_pipeline_roles,
            replace(base, trail_excludes_pipeline_roles=True),
        ),
        Lever(
            f"X-Ray: sampling rule, no reservoir, {rate:.0%} of executions",
            sampled,
            replace(base, xray_reservoir_per_second=0.0, xray_fixed_rate=rate),
        ),
        Lever(
            "Lambda JSON logs, system log level WARN",
            deployment.platform_log_bytes_per_invocation == 0,
            replace(base, platform_log_bytes_per_invocation=0.0),
        ),
        Lever(
            "metric lines: only what dashboards and alarms read, no zeros",
            model.profile.log_bytes_per_batch < inputs.LOG_BYTES_PER_BATCH_EVERY_METRIC,
            base,
            profile=model.profile,
        ),
        Lever(
            f"Lambda memory {memory} MB (measured CPU and memory)",
            deployment.lambda_memory_mb == memory != UNPULLED_MEMORY_MB,
            replace(base, lambda_memory_mb=memory),
            why_not="" if memory != UNPULLED_MEMORY_MB else "the measurements keep 512 MB",
        ),
        Lever(
            "audit log group in the Infrequent Access class",
            deployment.audit_log_infrequent_access,
            replace(base, audit_log_infrequent_access=True),
            why_not=AUDIT_LOG_NOT_PULLED,
        ),
        Lever(
            f"provisioned capacity, auto scaling at {model.provisioned_target:.0%}",
            deployment.provisioned_utilisation is not None,
            replace(base, provisioned_utilisation=model.provisioned_target),
            why_not="offered, not the default: CapacityMode=PROVISIONED, for steady traffic (see capacity)",
        ),
    ]


def lever_rows(model: CostModel, shape: str = "demo") -> list[dict[str, Any]]:
    base, base_profile = without_levers(model.deployment), untrimmed(model.profile)
    before = {point: model.total(shape, point, base, base_profile) for point in POINTS}
    rows = []
    for lever in template_levers(model):
        saves = {
            point: before[point] - model.total(shape, point, lever.deployment, lever.profile or base_profile)
            for point in POINTS
        }
        rows.append(
            {
                "lever": lever.name,
                "pulled": lever.pulled,
                "saves_usd_per_million": {p: round(v, 3) for p, v in saves.items()},
                "why_not": "" if lever.pulled else lever.why_not,
            }
        )
    rows.append(
        {
            "lever": "all the pulled levers: template.yaml as it is",
            "pulled": True,
            "saves_usd_per_million": {p: round(before[p] - model.total(shape, p), 3) for p in POINTS},
            "why_not": "",
        }
    )
    return rows


# --- memory -------------------------------------------------------------------------------------------
def memory_rows(model: CostModel) -> list[dict[str, Any]]:
    """Each memory size the template could take: what the demo mix costs, how long the workflow takes
    (CPU stretched by Lambda's share), the INIT range, and whether the measured memory fits twice."""
    needed = inputs.HANDLERS_PEAK_RSS_MB + inputs.LAMBDA_RUNTIME_MB
    budget_ms = LATENCY_P99_BUDGET_MS - inputs.SQS_HANDOVER_MS - inputs.RESULT_DELIVERY_MS
    rows = []
    for memory in inputs.MEMORY_SIZES:
        profile = model.profile.at_memory(memory)
        deployment = dataclasses.replace(model.deployment, lambda_memory_mb=memory)
        full = profile.workflow_ms(model.deployment.batch_size)
        init = max(model.init_ms.values())
        rows.append(
            {
                "memory_mb": memory,
                "demo_usd_per_million": {p: round(model.total("demo", p, deployment, profile), 3) for p in POINTS},
                "lambda_usd_per_million": {
                    p: round(line_usd(model.lines("demo", p, deployment, profile), "Lambda duration"), 3)
                    for p in POINTS
                },
                "workflow_ms": {"1": round(profile.workflow_ms(1)), str(model.deployment.batch_size): round(full)},
                "init_ms": [round(init), round(init * lambda_cpu_stretch(memory))],
                "memory_share": round(needed / memory, 2),
                "fits": memory >= inputs.MEMORY_HEADROOM * needed,
                "within_budget": full <= budget_ms,
            }
        )
    return rows


def chosen_memory_mb(model: CostModel) -> int:
    """The smallest size that holds twice the measured memory and keeps a full batch's workflow within
    the latency budget: below a whole vCPU, less memory always costs less (the waiting is billed by
    memory, the CPU work by CPU time whatever the memory), and only takes longer."""
    fitting = [row["memory_mb"] for row in memory_rows(model) if row["fits"] and row["within_budget"]]
    return min(fitting) if fitting else UNPULLED_MEMORY_MB


def producer_rows(model: CostModel) -> list[dict[str, Any]]:
    """At the flat point: how producer batching and the pipe's window change fill, cost and latency."""
    point = model.points[inputs.POINT_FLAT]
    rows = []
    cases = [
        ("SendMessage, window 0 (template)", 0.0, 0.0, inputs.PIPE_POLLERS),
        (f"SendMessage, window 0, {inputs.PIPE_POLLERS_LOW} pollers", 0.0, 0.0, inputs.PIPE_POLLERS_LOW),
        ("SendMessage, window 1 s", 0.0, 1.0, inputs.PIPE_POLLERS),
        ("SendMessageBatch, 100 ms flush, window 0", 100.0, 0.0, inputs.PIPE_POLLERS),
        ("SendMessageBatch, 1 s flush, window 0", 1000.0, 0.0, inputs.PIPE_POLLERS),
        ("SendMessageBatch, 1 s flush, window 1 s", 1000.0, 1.0, inputs.PIPE_POLLERS),
    ]
    for label, flush_ms, window_s, pollers in cases:
        fill = simulate(
            model.profile,
            point.postings_per_second,
            pollers=pollers,
            batch_size=model.deployment.batch_size,
            window_s=window_s,
            producer_flush_ms=flush_ms,
        )
        varied = model.with_point(
            inputs.POINT_FLAT, fill=fill.mean_fill, producer_calls_per_posting=fill.producer_calls_per_message
        )
        rows.append(
            {
                "producer and pipe": label,
                "fill": round(fill.mean_fill, 2),
                "demo_usd_per_million": round(varied.total("demo", inputs.POINT_FLAT), 2),
                "latency_p50_ms": round(fill.latency_p50_ms),
                "latency_p99_ms": round(fill.latency_p99_ms),
                "producer_wait_p99_ms": round(fill.producer_wait_p99_ms),
                "p99_within_budget": fill.latency_p99_ms + fill.producer_wait_p99_ms <= LATENCY_P99_BUDGET_MS,
            }
        )
    return rows


# --- the report -------------------------------------------------------------------------------------
def report(model: CostModel) -> tuple[list[str], dict[str, Any]]:
    """The printed lines and the JSON of the whole model."""
    lines = [
        f"prices: {PRICES_SOURCE}; no free tiers. Inputs measured {inputs.MEASURED_ON}, or stated as assumed.",
        settings_line(model.deployment),
        *point_lines(model),
        *per_batch_lines(model),
    ]
    totals: dict[str, dict[str, float]] = {}
    provisioned = dataclasses.replace(model.deployment, provisioned_utilisation=model.provisioned_target)
    by_line: dict[str, list[str]] = {}
    columns = [(point, shape) for point in POINTS for shape in SHAPES]
    breakdown: dict[str, list[dict[str, Any]]] = {}
    for point, shape in columns:
        current = model.lines(shape, point)
        breakdown[f"{point} {shape}"] = [asdict(line) for line in current]
        totals.setdefault(point, {})[shape] = total_usd(current)
        for line in current:
            by_line.setdefault(line.component, []).append(f"{line.usd_per_million_postings:,.3f}")
    provisioned_totals = {f"{p} {s}": model.total(s, p, provisioned) for p, s in columns}
    header = ["$ per million postings", *(f"{p} {s}" for p, s in columns)]
    rows = [[component, *values] for component, values in by_line.items()]
    rows.append(
        [
            "total, on-demand" if model.deployment.provisioned_utilisation is None else "total",
            *(f"{totals[p][s]:,.2f}" for p, s in columns),
        ]
    )
    rows.append(
        [
            f"total, provisioned at {model.provisioned_target:.0%}",
            *(f"{provisioned_totals[f'{p} {s}']:,.2f}" for p, s in columns),
        ]
    )
    lines += fmt_table(header, rows)
    lines += shape_lines(model)
    lines += fixed_lines(model)
    lines += capacity_lines(model, totals, provisioned_totals)
    producers = producer_rows(model)
    lines += producer_lines(producers)
    levers = lever_rows(model)
    lines += lever_lines(levers)
    memory = memory_rows(model)
    lines += memory_lines(model, memory)
    lines += snapstart_lines(model)
    targets = target_rows(model, totals)
    lines += target_lines(targets)
    guidance = GUIDANCE_USD_PER_MONTH / GUIDANCE_REQUESTS_PER_MONTH * 1_000_000
    lines.append(f"the AWS guidance's own estimate: ${guidance:,.1f} per million requests (about 20M a month).")
    lines += summary_lines(totals)
    data = {
        "prices": asdict(model.prices),
        "prices_source": PRICES_SOURCE,
        "measured_on": inputs.MEASURED_ON,
        "deployment": asdict(model.deployment),
        "profile": {
            "functions": {name: asdict(t) for name, t in model.profile.functions.items()},
            "log_bytes_per_batch": model.profile.log_bytes_per_batch,
            "log_bytes_per_record": model.profile.log_bytes_per_record,
            "sfn_overhead_ms_per_task": model.profile.sfn_overhead_ms_per_task,
        },
        "points": {name: asdict(point) for name, point in model.points.items()},
        "fills": {name: asdict(fill) for name, fill in model.fills.items()},
        "totals_usd_per_million": {p: {s: round(v, 4) for s, v in t.items()} for p, t in totals.items()},
        "provisioned_totals_usd_per_million": {k: round(v, 4) for k, v in provisioned_totals.items()},
        "breakdown": breakdown,
        "shapes": {name: [[share, asdict(shape)] for share, shape in mix.shapes] for name, mix in model.mixes.items()},
        "fixed_monthly": {
            p: [asdict(c) for c in model.extras(model.points[p], model.deployment).fixed_monthly] for p in POINTS
        },
        "producers": producers,
        "levers": levers,
        "memory": memory,
        "snapstart": snapstart_rows(model),
        "targets": targets,
        "goals_usd_per_million": TARGETS_USD_PER_MILLION,
        "guidance_usd_per_million": round(guidance, 2),
    }
    return lines, data


def settings_line(deployment: Deployment) -> str:
    trail = "off"
    if deployment.trail_records_data_events:
        trail = "table and queue data events" + (", Lambda Invoke" if deployment.trail_records_lambda_invokes else "")
        trail += ", pipeline roles left out" if deployment.trail_excludes_pipeline_roles else ", every principal"
    capacity = (
        "on-demand"
        if deployment.provisioned_utilisation is None
        else f"provisioned at {deployment.provisioned_utilisation:.0%}"
    )
    platform = "on" if deployment.platform_log_bytes_per_invocation else "off"
    audit = "Infrequent Access" if deployment.audit_log_infrequent_access else "Standard"
    return (
        f"template: Lambda arm64 {deployment.lambda_memory_mb} MB; PipeBatchSize {deployment.batch_size}, window "
        f"{deployment.batching_window_s:g} s; trail: {trail}; X-Ray {deployment.xray_reservoir_per_second:g}/s + "
        f"{deployment.xray_fixed_rate:.0%}; Lambda platform logs {platform}; audit log class {audit}; ledger "
        f"{capacity}; "
        f"logs kept {deployment.log_retention_months * 30.44:.0f} days, archive "
        f"{deployment.archive_retention_months * 30.44:.0f} days"
    )


def point_lines(model: CostModel) -> list[str]:
    flat, full = model.fills[inputs.POINT_FLAT], model.fills[inputs.POINT_FULL]
    low = simulate(
        model.profile,
        model.points[inputs.POINT_FLAT].postings_per_second,
        pollers=inputs.PIPE_POLLERS_LOW,
        batch_size=model.deployment.batch_size,
        window_s=model.deployment.batching_window_s,
    )
    full_pollers = pollers_for(model.profile, inputs.FULL_POSTINGS_PER_SECOND, model.deployment.batch_size)
    unwindowed = simulate(
        model.profile,
        inputs.FULL_POSTINGS_PER_SECOND,
        pollers=full_pollers,
        batch_size=model.deployment.batch_size,
        window_s=0.0,
    )
    partial = model.with_point(inputs.POINT_FULL, fill=unwindowed.mean_fill).total("demo", inputs.POINT_FULL)
    return [
        f"{inputs.POINT_FLAT}: {model.points[inputs.POINT_FLAT].postings_per_second:.1f}/s all month; the pipe's fill "
        f"{flat.mean_fill:.2f} (batch-fill simulation: {inputs.PIPE_POLLERS} pollers, window "
        f"{model.deployment.batching_window_s:g} s, one SendMessage per request, workflow "
        f"{model.profile.workflow_ms(1):.0f} ms at 1 record; {inputs.PIPE_POLLERS_LOW} pollers: {low.mean_fill:.2f}); "
        f"{flat.executions_per_second:.1f} executions/s; enqueue -> result p50 {flat.latency_p50_ms:,.0f} ms, "
        f"p99 {flat.latency_p99_ms:,.0f} ms",
        f"{inputs.POINT_FULL}: sustained, full batches of {model.deployment.batch_size} (a 1 s window fills them: "
        f"simulated fill {full.mean_fill:.2f} with {full_pollers} pollers, p99 {full.latency_p99_ms:,.0f} ms); "
        f"{model.points[inputs.POINT_FULL].executions_per_second:.0f} executions/s; with no window the same pollers "
        f"fill {unwindowed.mean_fill:.2f} per execution and the demo mix costs ${partial:,.2f}",
    ]


def per_batch_lines(model: CostModel) -> list[str]:
    """What a batch costs and what a record adds, and the per-batch lines at each point."""
    profile = model.profile
    functions = ", ".join(
        f"{name} {t.fixed_ms:.1f} + {t.per_record_ms:.2f}/record" for name, t in profile.functions.items()
    )
    cpu = ", ".join(f"{name} {t.fixed_ms:.1f} + {t.per_record_ms:.2f}/record" for name, t in profile.cpu.items())
    out = [
        f"per execution (measured at fills 1 and 10, section 7): {functions} ms, of which CPU (section 5) "
        f"{cpu} ms, stretched {lambda_cpu_stretch(model.deployment.lambda_memory_mb):.1f}x on Lambda at "
        f"{model.deployment.lambda_memory_mb} MB; Step Functions "
        f"{profile.sfn_overhead_ms_per_task:.0f} ms per task (assumed); Lambda logs "
        f"{profile.log_bytes_per_batch:,.0f} B per batch + {profile.log_bytes_per_record:,.0f} B per record at "
        "INFO, plus "
        f"{model.deployment.platform_log_bytes_per_invocation:,.0f} B of platform lines per invocation",
    ]
    halved = dataclasses.replace(
        profile,
        functions={name: FunctionTiming(t.fixed_ms / 2, t.per_record_ms / 2) for name, t in profile.functions.items()},
    )
    quicker = dataclasses.replace(model, profile=halved)
    out.append(
        "the durations are the local stack's (an upper bound): at half of them the demo mix costs "
        + ", ".join(f"${model.total('demo', p) - quicker.total('demo', p):,.2f} less at {p}" for p in POINTS)
    )
    tasks = len(profile.functions)
    demo = model.mixes["demo"]
    for name, point in model.points.items():
        trail = cloudtrail_events_per_posting(demo, point, model.deployment, tasks)
        everyone = dataclasses.replace(model.deployment, trail_excludes_pipeline_roles=False)
        traced = xray_traced_fraction(
            point.executions_per_second, model.deployment.xray_reservoir_per_second, model.deployment.xray_fixed_rate
        )
        recorded = (
            f"the producers' sends ({point.producer_calls_per_posting:g} per request); the pipeline's own calls "
            f"would add {cloudtrail_events_per_posting(demo, point, everyone, tasks) - trail:.2f} (polls, deletes, "
            f"the batch read, {demo.mean('table_calls'):.2f} own table calls, the workflow's invokes)"
            if model.deployment.trail_excludes_pipeline_roles
            else f"send {point.producer_calls_per_posting:g}, poll + delete + batch read per batch, "
            f"{demo.mean('table_calls'):.2f} own table calls"
        )
        out.append(
            f"{name}: workflow {profile.workflow_ms(point.fill):,.0f} ms per execution of {point.fill:.2f}; CloudTrail "
            f"{trail:.2f} data events per request: {recorded}; X-Ray traces {traced:.1%} of "
            f"{point.executions_per_second:,.1f} executions/s"
        )
    return out


def shape_lines(model: CostModel) -> list[str]:
    demo = model.mixes["demo"]
    grouped: dict[str, list[Any]] = {}
    for share, shape in demo.shapes:
        family = shape.name.split(" of ")[0] if " of " in shape.name else shape.name
        key = family if family in ("duplicate", "reused id") else shape.name
        entry = grouped.setdefault(key, [0.0, 0.0, 0.0, 0.0, 0.0, shape])
        entry[0] += share
        entry[1] += share * len(shape.transaction_item_bytes + shape.plain_write_item_bytes)
        entry[2] += share * shape.write_units
        entry[3] += share * shape.own_reads
        entry[4] += share * shape.table_calls
    rows = []
    for key, (share, items, wcu, rcu, _, shape) in grouped.items():
        rows.append(
            [
                key,
                f"{share:.1%}",
                f"{items / share:.2g}",
                f"{wcu / share:.3g}",
                f"{rcu / share:.3g}",
                ", ".join(shape.shared_accounts) if key not in ("duplicate", "reused id") else "as the original",
                "cancelled"
                if shape.transaction_cancelled or key in ("duplicate", "reused id")
                else (
                    "none"
                    if not shape.reaches_ledger
                    else ("committed" if shape.transaction_item_bytes else "plain Put")
                ),
            ]
        )
    flat_fill = model.points[inputs.POINT_FLAT].fill
    return [
        "the demo's traffic under the ledger's write path (posting_cli.demo.Traffic, seed 7, 10,000 requests drawn); "
        "items written, write units, own reads per request; shared (unlimited) accounts are read once per batch:",
        *fmt_table(["kind", "share", "items", "WCU", "own RCU", "shared reads", "transaction"], rows),
        f"demo mean: {demo.mean('write_units'):.2f} WCU and {demo.reads_per_request(flat_fill):.2f} RCU per request at "
        f"fill {flat_fill:.2f}, {demo.reads_per_request(10):.2f} RCU at 10; spread "
        f"{model.mixes['spread'].mean('write_units'):.0f} WCU, hot {model.mixes['hot'].mean('write_units'):.0f} "
        "WCU. A cancelled transaction pays its write units (DynamoDB "
        "Developer Guide, read/write operations); a failed conditional Put pays 1 WCU per KB of the item (minimum 1).",
    ]


def fixed_lines(model: CostModel) -> list[str]:
    costs = model.extras(model.points[inputs.POINT_FLAT], model.deployment).fixed_monthly
    rows = [
        [c.item, f"{c.quantity:,.{0 if c.quantity >= 10 else 2}f} {c.unit}", f"${c.usd_per_month:,.2f}"] for c in costs
    ]
    monthly = sum(c.usd_per_month for c in costs)
    per_point = ", ".join(f"{p} ${monthly / model.points[p].postings_per_month * 1e6:,.3f}/M" for p in POINTS)
    return [
        "fixed monthly costs (alarms, dashboards and keys counted in template.yaml; metrics in the handlers):",
        *fmt_table(["item", "quantity", "$ per month"], rows),
        f"fixed: ${monthly:,.2f} a month -> {per_point}",
    ]


def capacity_lines(model: CostModel, totals: dict[str, dict[str, float]], provisioned: dict[str, float]) -> list[str]:
    break_even = provisioned_break_even_utilisation(model.prices)
    demo = model.mixes["demo"]
    per_month = storage_per_month_kept(demo, model.prices)
    trail = model.lines("demo", inputs.POINT_FLAT)
    trail_month = line_usd(trail, "CloudTrail log files")
    return [
        f"capacity: a provisioned write unit costs ${model.prices.dynamodb_wcu_hour / 3600 * 1e6:.4f} per million "
        f"used at 100% use, on-demand ${model.prices.dynamodb_per_million_write_units:.3f}: provisioned is "
        "cheaper while auto scaling keeps "
        f"it above {break_even:.0%} utilised on average (flat or slowly changing traffic; it scales in minutes, so "
        f"bursts above the provisioned rate are throttled). On-demand is cheaper for spiky traffic (peaks over "
        f"{1 / break_even:.1f}x the mean) and needs no capacity planning. Demo at 20M/month: on-demand "
        f"${totals[inputs.POINT_FLAT]['demo']:,.2f}, provisioned ${provisioned[f'{inputs.POINT_FLAT} demo']:,.2f}; "
        f"at 1111/s ${totals[inputs.POINT_FULL]['demo']:,.2f} vs ${provisioned[f'{inputs.POINT_FULL} demo']:,.2f}.",
        f"retention: the totals count the month a posting is made. Each further month its rows stay costs "
        f"${per_month:,.3f}/M (storage + PITR, demo mix) and its trail records ${trail_month:,.3f}/M; a ledger keeps "
        f"rows for years: 7 years would add ${per_month * 83:,.2f}/M in the table and ${trail_month * 83:,.2f}/M "
        f"in the trail's bucket ({inputs.CLOUDTRAIL_LOG_RETENTION_MONTHS} months by its lifecycle rule). Logs are "
        "kept their retention (raw bytes: an upper bound, CloudWatch stores them compressed), the archive 90 days.",
    ]


def producer_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    table = [
        [
            row["producer and pipe"],
            row["fill"],
            f"${row['demo_usd_per_million']:,.2f}",
            f"{row['latency_p50_ms']:,}",
            f"{row['latency_p99_ms']:,}",
            f"{row['producer_wait_p99_ms']:,}",
            "yes" if row["p99_within_budget"] else "NO",
        ]
        for row in rows
    ]
    check = "; ".join(
        f"{producer}: {run['measured']} measured, {run['simulated']} simulated"
        for producer, run in inputs.LOCAL_FILL_CHECK.items()
    )
    return [
        f"the simulation against the local stack at 7.6/s, 4 pollers, window 0 (section 7): {check}.",
        f"producers and the batching window at {inputs.POINT_FLAT} (simulated; AWS adds that with a window a quiet "
        "queue may wait up to 20 s before invoking, which no row includes):",
        *fmt_table(
            ["producer, pipe", "fill", "demo $/M", "p50 ms", "p99 ms", "producer wait p99", "p99 <= 1 s"], table
        ),
        "enqueue -> result = handover + workflow + result delivery (assumed "
        f"{inputs.SQS_HANDOVER_MS:.0f} + measured + {inputs.RESULT_DELIVERY_MS:.0f} ms); a producer's flush interval "
        "adds its own wait before the enqueue. The window stays 0 by default: at this rate a 1 s window misses the "
        "1 s p99 budget; SendMessageBatch saves requests without it.",
    ]


def lever_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    table = [
        [
            row["lever"],
            "yes" if row["pulled"] else "no",
            *(f"{-value:+,.3f}" for value in row["saves_usd_per_million"].values()),
        ]
        for row in rows
    ]
    reasons = [f"  {row['lever']}: {row['why_not']}" for row in rows if row["why_not"]]
    return [
        "levers that cost no semantics, each alone on the template without any (demo mix, $/M; negative saves):",
        *fmt_table(["lever", "in template.yaml", *(f"{p}" for p in POINTS)], table),
        "left out:",
        *reasons,
    ]


def memory_lines(model: CostModel, rows: Sequence[dict[str, Any]]) -> list[str]:
    full = str(model.deployment.batch_size)
    table = [
        [
            f"{row['memory_mb']} MB",
            *(f"${row['demo_usd_per_million'][p]:,.2f} (${row['lambda_usd_per_million'][p]:,.3f})" for p in POINTS),
            f"{row['workflow_ms']['1']:,} / {row['workflow_ms'][full]:,}",
            f"{row['init_ms'][0]:,}-{row['init_ms'][1]:,}",
            f"{row['memory_share']:.0%}",
            "yes" if row["fits"] and row["within_budget"] else "no",
        ]
        for row in rows
    ]
    chosen = chosen_memory_mb(model)
    return [
        "Lambda memory (the CPU time measured apart from the waiting, section 5; Lambda gives CPU in proportion "
        "to memory, one vCPU at 1,769 MB):",
        *fmt_table(
            [
                "memory",
                *(f"demo $/M at {p} (Lambda duration)" for p in POINTS),
                f"workflow ms, fill 1 / {full}",
                "INIT ms",
                "memory used",
                "chosen rule",
            ],
            table,
        ),
        f"memory used = measured peak {inputs.HANDLERS_PEAK_RSS_MB:.0f} MB (three handlers in one process) + "
        f"{inputs.LAMBDA_RUNTIME_MB:.0f} MB for Lambda's runtime (assumed); the rule: at most 1/"
        f"{inputs.MEMORY_HEADROOM:g} of the memory, and a full batch's workflow within the {LATENCY_P99_BUDGET_MS:,} "
        f"ms p99 budget less handover and delivery. Chosen: {chosen} MB (template: "
        f"{model.deployment.lambda_memory_mb} MB). INIT: as measured (a whole core) to stretched by the CPU share "
        "(whether INIT runs at the function's share is not documented). Needs an account: Max Memory Used and "
        "Duration from the functions' REPORT lines (SystemLogLevel INFO for a day) at two memory sizes.",
    ]


def snapstart_rows(model: CostModel) -> dict[str, Any]:
    """SnapStart's own charges at each point against what it would save: billed INIT, and cold starts."""
    out: dict[str, Any] = {}
    memory = model.deployment.lambda_memory_mb
    for name, point in model.points.items():
        concurrency = model.concurrency(point)
        inits = sum(
            max(1, math.ceil(concurrency.get(function, 0.0))) * HOURS_PER_MONTH / inputs.ENVIRONMENT_LIFETIME_HOURS
            for function in model.init_ms
        )
        cache, restores = snapstart_usd_per_month(len(model.init_ms), memory, inits, model.prices)
        init_usd = (
            model.extras(point, model.deployment).init_gb_seconds_per_month * model.prices.lambda_arm_per_gb_second
        )
        executions = point.executions_per_second * SECONDS_PER_MONTH
        out[name] = {
            "cache_usd_per_month": round(cache, 2),
            "restores_usd_per_month": round(restores, 2),
            "restores_per_month": round(inits),
            "usd_per_million": round((cache + restores) / point.postings_per_month * 1e6, 3),
            "billed_init_usd_per_month": round(init_usd, 3),
            "cold_start_share_of_executions": inits / executions,
        }
    return out


def snapstart_lines(model: CostModel) -> list[str]:
    rows = snapstart_rows(model)
    init = model.init_ms.get("Post", max(model.init_ms.values()))
    stretched = init * lambda_cpu_stretch(model.deployment.lambda_memory_mb)
    each = "; ".join(
        f"{p}: cache ${r['cache_usd_per_month']:,.2f} + restores ${r['restores_usd_per_month']:,.2f} a month "
        f"(${r['usd_per_million']:,.3f}/M) against ${r['billed_init_usd_per_month']:,.3f} of billed INIT, cold starts "
        f"{r['cold_start_share_of_executions']:.3%} of executions"
        for p, r in rows.items()
    )
    return [
        f"SnapStart (Python, one published version per function, {model.deployment.lambda_memory_mb} MB): {each}. "
        f"Not adopted: it costs more than the INIT it saves, and the cold starts it shortens (Post's INIT "
        f"{init:,.0f}-{stretched:,.0f} ms) are too rare at either point to reach the p99.",
    ]


def target_rows(model: CostModel, totals: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """For each target: the demo mix without the levers, as template.yaml is, with provisioned capacity,
    and with producers sending in batches too; what remains, and what closing it would cost in semantics."""
    base = without_levers(model.deployment)
    best = dataclasses.replace(model.deployment, provisioned_utilisation=model.provisioned_target)
    rows = []
    for point, goal in TARGETS_USD_PER_MILLION.items():
        batched = producers_batching(model, point)
        steps = {
            "without the levers": model.total("demo", point, base, untrimmed(model.profile)),
            "as template.yaml is (on-demand)": totals[point]["demo"],
            "and provisioned capacity": model.total("demo", point, best),
            "and producers' SendMessageBatch": batched.total("demo", point, best),
        }
        remainder = steps["and producers' SendMessageBatch"] - goal
        lines = batched.lines("demo", point, best)
        biggest = sorted(lines, key=lambda line: line.usd_per_million_postings, reverse=True)[:4]
        rows.append(
            {
                "point": point,
                "goal": goal,
                "steps": {k: round(v, 3) for k, v in steps.items()},
                "remainder_as_template_is": round(steps["as template.yaml is (on-demand)"] - goal, 3),
                "remainder": round(remainder, 3),
                "largest_lines": {line.component: round(line.usd_per_million_postings, 3) for line in biggest},
                "semantic_levers": semantic_levers(batched, point, best),
            }
        )
    return rows


def producers_batching(model: CostModel, point: str) -> CostModel:
    """The model with producers sending SendMessageBatch as the latency budget allows: at 1,111/s ten
    requests arrive within 10 ms, so every call is full; at the flat point a 100 ms flush (simulated)."""
    if point == inputs.POINT_FULL:
        return model.with_point(point, producer_calls_per_posting=0.1)
    at = model.points[point]
    fill = simulate(
        model.profile,
        at.postings_per_second,
        pollers=inputs.PIPE_POLLERS,
        batch_size=model.deployment.batch_size,
        window_s=0.0,
        producer_flush_ms=100.0,
    )
    return model.with_point(point, fill=fill.mean_fill, producer_calls_per_posting=fill.producer_calls_per_message)


def semantic_levers(model: CostModel, point: str, deployment: Deployment) -> dict[str, float]:
    """What the remaining levers would save at `point`, each at a cost in semantics."""
    demo = model.mixes["demo"]
    price = (
        model.prices.dynamodb_per_million_write_units
        if deployment.provisioned_utilisation is None
        else model.prices.dynamodb_wcu_hour / 3600 / deployment.provisioned_utilisation * 1e6
    )
    entries = sum(
        share * (len(shape.stored_item_bytes) - 1)
        for share, shape in demo.shapes
        if shape.transaction_item_bytes and not shape.transaction_cancelled
    )
    at = model.points[point]
    current = model.lines("demo", point, deployment)
    levers = {
        "entries written by a Streams consumer (1 WCU each, not 2)": entries * price,
        "one result event per batch instead of one per request": model.prices.eventbridge_per_million_events
        * (1 - 1 / at.fill),
        "no event archive and no audit log copy": line_usd(current, "Event archive")
        + line_usd(current, "CloudWatch Logs, audit"),
        "one Rejected metric instead of one per reason": (inputs.custom_metrics().get("Rejected", 1) - 1)
        * model.prices.cloudwatch_metric_per_month
        / at.postings_per_month
        * 1e6,
        # With the pipeline's roles left out, what the trail still records per posting is the producers' sends.
        "the trail leaves out the producers too (each message keeps its SenderId)": line_usd(
            current, "CloudTrail data events"
        ),
    }
    if point == inputs.POINT_FLAT:
        window = simulate(
            model.profile,
            at.postings_per_second,
            pollers=inputs.PIPE_POLLERS,
            batch_size=model.deployment.batch_size,
            window_s=1.0,
            producer_flush_ms=100.0,
        )
        windowed = model.with_point(point, fill=window.mean_fill)
        levers[f"a 1 s batching window (p99 {window.latency_p99_ms + window.producer_wait_p99_ms:,.0f} ms)"] = (
            total_usd(current) - windowed.total("demo", point, deployment)
        )
    return {name: round(value, 3) for name, value in levers.items()}


def target_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    out = ["targets (demo mix, all lines):"]
    for row in rows:
        steps = "; ".join(f"{k} ${v:,.2f}" for k, v in row["steps"].items())
        verdict = "met" if row["remainder"] <= 0 else f"MISSED by ${row['remainder']:,.2f}"
        as_is = row["remainder_as_template_is"]
        template = "met" if as_is <= 0 else f"missed by ${as_is:,.2f}"
        out.append(f"  {row['point']} <= ${row['goal']:.2f}: {steps} -> {verdict} (template.yaml as it is: {template})")
        if row["remainder"] > 0:
            largest = ", ".join(f"{k} ${v:,.2f}" for k, v in row["largest_lines"].items())
            out.append(f"    largest lines left: {largest}")
            levers = "; ".join(f"{k}: -${v:,.2f}" for k, v in row["semantic_levers"].items())
            out.append(f"    closing it costs semantics: {levers}")
    return out


def summary_lines(totals: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per point and shape, in the form scripts read: `cost 1111/s demo: $4.87 per million`."""
    return [f"cost {point} {shape}: ${totals[point][shape]:.2f} per million" for point in POINTS for shape in SHAPES]


# --- make bench ---------------------------------------------------------------------------------------
def bench_cost(
    sizes: dict[str, Any],
    *,
    pipeline: dict[str, Any],
    ledger: dict[str, Any],
    cold_start: dict[str, Any],
    hot_accounts: dict[str, Any] | None = None,
    batch_costs: dict[str, Any] | None = None,
    memory: dict[str, Any] | None = None,
) -> Section:
    """Section 8 from this run's measurements: the batch profile (7), CPU per handler (5), INIT (2),
    conflicts (4)."""
    profile = None
    cpu = cpu_timings((memory or {}).get("handlers"))
    if batch_costs:
        measured = batch_costs["profile"]
        profile = inputs.batch_profile(
            {
                name: FunctionTiming(**timing)
                for name, timing in measured["functions"].items()
                if name in inputs.FUNCTION_TIMINGS
            },
            measured["log_bytes_per_batch"],
            measured["log_bytes_per_record"],
            cpu=cpu,
        )
    elif cpu:
        profile = inputs.batch_profile(cpu=cpu)
    init_ms = dict(inputs.INIT_MS)
    for module, result in cold_start.get("results", {}).items():
        if module.startswith("posting.handlers."):
            init_ms[module.rsplit(".", 1)[1].capitalize()] = result["import_ms"] + (result.get("first_clients_ms") or 0)
    conflicts = ((hot_accounts or {}).get("hot") or {}).get("conflicts_per_posting") or 0.0
    model = build_model(profile=profile, init_ms=init_ms, hot_attempts=1.0 + conflicts)
    lines, data = report(model)
    two = sizes.get("card payment (2-leg)") or sizes.get("2-leg")
    if two:
        lines.insert(
            2,
            f"item sizes this run: decision {two['posting_item_bytes']} B, entries {two['entry_item_bytes']} B, event "
            f"{two['event_envelope_bytes']} B with its envelope (committed inputs: decision "
            f"{inputs.DECISION_BYTES['card-payment']} B, entry {inputs.ENTRY_BYTES} B); every item under 1 KB.",
        )
    data["item_sizes"] = sizes
    data["pipeline_statuses"] = (pipeline.get("phases", {}).get("saturation") or {}).get("statuses")
    return Section(
        key="cost",
        title="8. Cost per million postings on AWS, us-east-1, at 20M/month and at 1,111/s (a model, not a bill)",
        method=(
            "pure arithmetic (cost_model, unit-tested), fed with this run's batch profile (7), CPU per handler "
            "(5), INIT (2) and hot-account conflicts (4); request shapes under the ledger's write path "
            "(cost_inputs); the flat point's fill from the batch-fill simulation; fixed costs counted in "
            "template.yaml and the handlers. `make cost` prints the same model from the committed inputs."
        ),
        data=data,
        lines=lines,
    )


def cpu_timings(handlers: dict[str, Any] | None) -> dict[str, FunctionTiming] | None:
    """Each step's CPU ms as fixed + per record, from the memory section's fills 1 and 10."""
    if not handlers:
        return None
    fills = handlers["fills"]
    (low, high) = sorted(fills, key=float)
    return {
        name: FunctionTiming.from_two_fills(
            float(low), fills[low][name]["cpu_ms"], float(high), fills[high][name]["cpu_ms"]
        )
        for name in fills[low]
        if name in inputs.FUNCTION_TIMINGS
    }


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    model = build_model()
    lines, _ = report(model)
    print("Cost per million postings on AWS, us-east-1: a model, not a bill (`make bench` re-measures its inputs)")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
