"""This host's clock against DynamoDB's: measured from every answer, bounded before lines are written.

A line is recorded at its decision time, taken from this host's clock, and two things rest on that
clock being right within a few seconds: an account's lines sort in the order its balance moved (a
fast clock would drag every later decision on the account forward), and a checkpoint written one
commit horizon behind the clock never misses a line (a slow clock would date lines before it).

Each DynamoDB answer carries the server's `Date` header (whole seconds). A call sent at local t0 and
answered at t1 was handled at some server instant in [Date, Date + 1 s) and some local instant in
[t0, t1], so this host's offset (local - server) lies in (t0 - Date - 1 s, t1 - Date]. The watch
keeps the intersection of recent intervals, which narrows as answers come in, and starts again when
they disagree (the clock was stepped). `check` refuses, as a transient error, when the offset is
known to exceed the bound either way: the host stops deciding until its clock is right, and the
requests go to another host or come back later. Unknown (no answer yet) is not refused.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any

from posting.domain.outcomes import TransientPostingError

MAX_CLOCK_OFFSET_SECONDS = 2.0  # within the 60 s commit horizon's margin, and CLOCK_AHEAD_LIMIT's
_WINDOW_SECONDS = 300.0  # intervals older than this are forgotten (a clock drifts, NTP steps it)


class ClockWatch:
    """The offset of this host's clock from DynamoDB's, as bounds that narrow with each answer."""

    def __init__(self, clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._guard = threading.Lock()
        self._intervals: deque[tuple[float, float, float]] = deque(maxlen=64)  # (low, high, seen at)

    def attach(self, client: Any) -> ClockWatch:
        """Measure every call this botocore DynamoDB client makes."""
        client.meta.events.register("before-call.dynamodb", self._before_call)
        client.meta.events.register("after-call.dynamodb", self._after_call)
        return self

    def observe(self, sent: float, answered: float, server_date: float) -> None:
        """One answer: sent and answered on this host's clock, `server_date` its Date header (epoch s)."""
        low, high = sent - server_date - 1.0, answered - server_date
        now = self._monotonic()
        with self._guard:
            self._intervals.append((low, high, now))

    def bounds(self) -> tuple[float, float] | None:
        """(lowest, highest) this host's offset from DynamoDB's clock can be, in seconds; None if unknown."""
        now = self._monotonic()
        with self._guard:
            recent = [(low, high) for low, high, seen in self._intervals if now - seen <= _WINDOW_SECONDS]
        if not recent:
            return None
        low, high = recent[-1]
        for earlier_low, earlier_high in reversed(recent[:-1]):
            narrowed = max(low, earlier_low), min(high, earlier_high)
            if narrowed[0] > narrowed[1]:
                break  # disagrees with what came after it: the clock moved; trust the later answers
            low, high = narrowed
        return low, high

    def offset_ms(self) -> int | None:
        """The middle of the bounds, in whole milliseconds (positive: this host is ahead)."""
        found = self.bounds()
        return None if found is None else round((found[0] + found[1]) / 2 * 1000)

    def check(self, bound: float = MAX_CLOCK_OFFSET_SECONDS) -> None:
        """Raise TransientPostingError if this host's clock is known to be off by more than `bound`."""
        found = self.bounds()
        if found is None:
            return
        low, high = found
        if low > bound or high < -bound:
            side = "ahead of" if low > 0 else "behind"
            seconds = low if low > 0 else -high
            raise TransientPostingError(
                f"this host's clock is at least {seconds:.1f} s {side} DynamoDB's (more than {bound:g} s): "
                "it decides nothing until it is right"
            )

    def _before_call(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context["clock_watch_sent"] = self._clock()

    def _after_call(self, http_response: Any = None, context: dict[str, Any] | None = None, **_: Any) -> None:
        sent = (context or {}).get("clock_watch_sent")
        date = getattr(http_response, "headers", {}).get("Date") if http_response is not None else None
        if sent is None or not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        self.observe(sent, self._clock(), server)
