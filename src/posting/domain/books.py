"""Reading the books: figures summed from lines, checkpoints, running balances. Pure.

An account with a limit keeps its figures on its balance item; an account without one keeps none:
its figures are the sums of its lines (`Entry`) over its lanes. So that reading them stays bounded,
each lane has checkpoints: the sums of its lines up to an instant, written once that instant is past
the commit horizon (no line recorded at or before it can still commit). A lane's figures are then
its latest checkpoint plus the lines after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from posting.domain.model import AccountState
from posting.domain.plan import Entry

# Longer than a line can take from the instant it is recorded at (its decision time) to its commit:
# the post function's timeout (11 s) bounds every attempt, the SDK's own retries included, and
# decision times stay within 2 s of the host's clock; with a wide margin. A checkpoint is only ever
# written this far in the past. (docs/design/contention.md derives it.)
COMMIT_HORIZON_SECONDS = 60


@dataclass(frozen=True)
class Figures:
    """What an account's lines add up to: posted, pending debits and credits, and how many posted lines."""

    posted: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    entries: int = 0

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            self.posted + other.posted,
            self.pending_debits + other.pending_debits,
            self.pending_credits + other.pending_credits,
            self.entries + other.entries,
        )

    def __sub__(self, other: Figures) -> Figures:
        return Figures(
            self.posted - other.posted,
            self.pending_debits - other.pending_debits,
            self.pending_credits - other.pending_credits,
            self.entries - other.entries,
        )

    @classmethod
    def of(cls, lines: Iterable[Entry]) -> Figures:
        total = cls()
        for line in lines:
            total += cls(line.signed_amount, line.pending_debits, line.pending_credits, 0 if line.pending else 1)
        return total


@dataclass(frozen=True)
class Checkpoint:
    """The sums of one lane's lines recorded at or before `through` (UTC text, millisecond)."""

    account_id: str
    lane: int
    through: str
    figures: Figures


def with_figures(state: AccountState, figures: Figures) -> AccountState:
    """An account without a limit, with the figures its lines add up to."""
    return state.model_copy(
        update={
            "balance": figures.posted,
            "pending_debits": figures.pending_debits,
            "pending_credits": figures.pending_credits,
            "version": figures.entries,
            "known": True,
        }
    )


def lane_figures(checkpoint: Checkpoint | None, lines_after: Iterable[Entry]) -> Figures:
    """A lane's figures: its latest checkpoint (if any) plus the lines recorded after it."""
    return (checkpoint.figures if checkpoint else Figures()) + Figures.of(lines_after)


def statement_order(lines: Iterable[Entry]) -> list[Entry]:
    """Lines in the order they were booked: by recorded time, then posting and leg (lanes merged)."""
    return sorted(lines, key=lambda line: (line.recorded_at, line.posting_id, line.leg))


def with_running_balance(lines: Sequence[Entry], opening: int) -> list[Entry]:
    """Posted lines with the balance right after each: what a line recorded itself, or the running sum."""
    running = opening
    result = []
    for line in lines:
        if line.pending:
            continue
        if line.balance_after is None:
            running += line.signed_amount
            result.append(replace(line, balance_after=running))
        else:
            running = line.balance_after
            result.append(line)
    return result


def value_order(lines: Iterable[Entry]) -> list[Entry]:
    """Lines in the order of their value dates (then as booked): how a statement by value date reads."""
    return sorted(lines, key=lambda line: (line.effective_at, line.recorded_at, line.posting_id, line.leg))


def figures_by_value_date(lines: Iterable[Entry], moment: str) -> Figures:
    """What an account's lines dated at or before `moment` add up to: its figures as of that value
    date, whenever each line was recorded (a line dated later than it was recorded counts from its
    value date on, one dated earlier from that earlier date)."""
    return Figures.of(line for line in lines if line.effective_at <= moment)


def with_value_running_balance(lines: Iterable[Entry], opening: int) -> list[Entry]:
    """Posted lines in value-date order with the balance by value date right after each."""
    return with_running_balance([replace(line, balance_after=None) for line in value_order(lines)], opening)


def figures_after(line: Entry, since: Figures) -> Figures | None:
    """An account's figures at a line that recorded them, plus `since` (what lines after it add)."""
    after = line.figures_after()
    if after is None:
        return None
    return Figures(after[0], after[1], after[2], line.sequence) + since
