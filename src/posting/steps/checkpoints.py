"""Checkpoints: keep reading an unlimited account's figures bounded.

An account without a limit keeps no balance item: its figures are the sums of its lines, per lane.
The sweeper writes, for every lane with new lines, a checkpoint: the lane's sums up to an instant
COMMIT_HORIZON_SECONDS in the past, where no line can still commit. A reader then sums the latest
checkpoint and the lines after it. A checkpoint is immutable and keyed by its instant, so two
sweepers (or a retried one) write the same item once; it is derived data, which reconciliation
checks against the lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from posting.domain.books import COMMIT_HORIZON_SECONDS, Checkpoint, Figures
from posting.domain.model import utc_timestamp
from posting.steps.ports import Ledger


@dataclass(frozen=True)
class CheckpointReport:
    lanes: int  # lanes looked at
    written: int  # checkpoints written
    lines: int  # lines they summed


def checkpoint_lanes(ledger: Ledger, now: datetime) -> CheckpointReport:
    """Checkpoint every lane of every unlimited account that has lines since its last checkpoint."""
    through = utc_timestamp(now - timedelta(seconds=COMMIT_HORIZON_SECONDS))
    lanes = written = lines = 0
    for account_id, count in ledger.unlimited_accounts():
        for lane in range(count):
            lanes += 1
            latest, since, new_lines = ledger.lane_since_checkpoint(account_id, lane, through)
            if not new_lines:
                continue
            figures = (latest.figures if latest else Figures()) + since
            written += ledger.write_checkpoint(Checkpoint(account_id, lane, through, figures))
            lines += new_lines
    return CheckpointReport(lanes=lanes, written=written, lines=lines)
