"""CPU time of this process and of DynamoDB Local: where a run's cycles went, on a machine of few cores."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process `pid` so far (Linux /proc), or None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime field 14, stime field 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuClock:
    """CPU seconds at one moment: this process (all its threads) and the DynamoDB Local JVM, if ours."""

    python_s: float
    dynamodb_s: float | None

    @classmethod
    def now(cls, endpoint: Any) -> CpuClock:
        pid = getattr(endpoint, "pid", None)
        return cls(time.process_time(), process_cpu_seconds(pid) if pid else None)

    def per_unit_ms(self, later: CpuClock, units: int) -> dict[str, float | None]:
        """CPU ms per unit of work between this moment and `later`."""
        python = (later.python_s - self.python_s) * 1000 / units if units else None
        dynamodb = (
            (later.dynamodb_s - self.dynamodb_s) * 1000 / units
            if units and later.dynamodb_s is not None and self.dynamodb_s is not None
            else None
        )
        return {"python": _round(python), "dynamodb_local": _round(dynamodb)}


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None
