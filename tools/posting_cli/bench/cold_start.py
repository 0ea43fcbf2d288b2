"""4. Cold start proxies: a fresh interpreter imports a handler module."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from posting_cli.bench.section import ROOT, Section, fmt_table, progress
from posting_cli.local.template import Template

COLD_START_RUNS = 5
HANDLER_MODULES = ("posting.handlers.validate", "posting.handlers.post", "posting.handlers.emit")
# Runs in the child: time the import alone, then the first AWS client the handler creates on its first call.
COLD_START_CHILD = """
import importlib, json, resource, sys, time
started = time.perf_counter()
importlib.import_module(sys.argv[1])
imported = time.perf_counter()
rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
client_ms = None
if len(sys.argv) > 2:
    from posting.handlers.config import aws_client
    before = time.perf_counter()
    for service in sys.argv[2:]:
        aws_client(service)
    client_ms = (time.perf_counter() - before) * 1000
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "rss_after_import_kb": rss_import,
    "first_clients_ms": client_ms,
    "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""
EMPTY_CHILD = (
    "import json, resource; print(json.dumps({'peak_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))"
)
CLIENTS_ON_FIRST_CALL = {"posting.handlers.post": ["dynamodb"], "posting.handlers.emit": ["events", "sqs"]}


def lambda_like_environment() -> dict[str, str]:
    """What a Lambda function of this template sees: its Globals and variables, a task root, dummy keys.

    LAMBDA_TASK_ROOT matters: with it Powertools' Tracer is enabled (Tracing: Active) and the X-Ray SDK
    runs in its Lambda mode; without it the SDK sets up its own sampling and imports much more.
    """
    template = Template.load()

    def value(setting: Any) -> str:
        # A parameter's value; any other reference (a table name, a queue URL) gets a placeholder: the
        # handlers read their configuration on the first call, not at import.
        if isinstance(setting, dict):
            return template.parameters.get(str(setting.get("Ref")), "placeholder")
        return str(setting)

    variables = {
        name: value(setting)
        for logical_id in ("ValidateFunction", "PostFunction", "EmitFunction")
        for name, setting in template.function_setting(logical_id, "Environment")["Variables"].items()
    }
    return {
        "PATH": os.environ.get("PATH", ""),
        "LAMBDA_TASK_ROOT": str(ROOT / "src"),
        "AWS_LAMBDA_FUNCTION_NAME": "posting-bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(template.function_globals().get("MemorySize", 128)),
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_EC2_METADATA_DISABLED": "true",
        **variables,
    }


def bench_cold_start() -> Section:
    environment = lambda_like_environment()
    python = sys.executable
    results: dict[str, dict[str, Any]] = {}

    def run(arguments: list[str]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        done = subprocess.run([python, *arguments], env=environment, capture_output=True, text=True, check=True)
        wall_ms = (time.perf_counter() - started) * 1000
        last_line = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "{}"
        return wall_ms, json.loads(last_line)

    baseline = [run(["-c", EMPTY_CHILD]) for _ in range(COLD_START_RUNS)]
    results["python -c (empty)"] = {
        "process_wall_ms": round(statistics.median(w for w, _ in baseline), 1),
        "peak_rss_mb": round(statistics.median(r["peak_rss_kb"] for _, r in baseline) / 1024, 1),
    }
    for module in HANDLER_MODULES:
        progress(f"cold start: {module} x{COLD_START_RUNS}")
        runs = [
            run(["-c", COLD_START_CHILD, module, *CLIENTS_ON_FIRST_CALL.get(module, [])])
            for _ in range(COLD_START_RUNS)
        ]
        clients = [r["first_clients_ms"] for _, r in runs if r["first_clients_ms"] is not None]
        results[module] = {
            "import_ms": round(statistics.median(r["import_ms"] for _, r in runs), 1),
            "import_ms_min_max": [
                round(min(r["import_ms"] for _, r in runs), 1),
                round(max(r["import_ms"] for _, r in runs), 1),
            ],
            "rss_after_import_mb": round(statistics.median(r["rss_after_import_kb"] for _, r in runs) / 1024, 1),
            "first_clients": CLIENTS_ON_FIRST_CALL.get(module, []),
            "first_clients_ms": round(statistics.median(clients), 1) if clients else None,
            "peak_rss_mb": round(statistics.median(r["peak_rss_kb"] for _, r in runs) / 1024, 1),
            "process_wall_ms": round(statistics.median(w for w, _ in runs), 1),
        }
    rows = []
    for name, r in results.items():
        first = r.get("first_clients_ms")
        client_cell = f"{first:,.0f} ({'+'.join(r['first_clients'])})" if first else "-"
        rows.append(
            [
                name,
                f"{r['import_ms']:,.0f}" if "import_ms" in r else "-",
                f"{r['rss_after_import_mb']:.0f}" if "rss_after_import_mb" in r else "-",
                client_cell,
                f"{r['peak_rss_mb']:.0f}",
                f"{r['process_wall_ms']:,.0f}",
            ]
        )
    lines = [
        *fmt_table(["module", "import ms", "RSS MB", "first client(s) ms", "peak RSS MB", "process wall ms"], rows),
        "environment: the template's variables, LAMBDA_TASK_ROOT set (X-Ray in Lambda mode), dummy credentials;",
        "x86 here, arm64 on AWS; the Lambda runtime's own start-up is not included.",
    ]
    return Section(
        key="cold_start",
        title=f"4. Cold start proxies (fresh interpreter per run, median of {COLD_START_RUNS})",
        method=(
            "subprocess per run: perf_counter around importlib.import_module(handler module), then (post, emit) "
            "around creating the boto3 clients the handler builds on its first call; ru_maxrss after each; "
            "process wall time measured by the parent. Lambda-like environment (LAMBDA_TASK_ROOT, template variables)."
        ),
        data={"runs": COLD_START_RUNS, "results": results},
        lines=lines,
    )
