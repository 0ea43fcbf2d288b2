"""What every measurement returns (a Section), and small helpers for statistics, tables and progress."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
RESULTS_DIR = ROOT / "bench-results"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 = the middle value); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Section:
    """One measurement: its JSON (with how it was measured) and its lines of the printed report."""

    key: str
    title: str
    method: str
    data: dict[str, Any]
    lines: list[str]

    def print(self) -> None:
        print(f"\n{self.title}", flush=True)
        for line in self.lines:
            print(f"  {line}", flush=True)

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "method": self.method, **self.data}


def progress(message: str) -> None:
    """Progress goes to stderr: stdout is the report (and belongs to the handlers while the stack runs)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fmt_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned first column, right-aligned others."""
    cells = [list(map(str, header))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in cells
    ]
