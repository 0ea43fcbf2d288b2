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
