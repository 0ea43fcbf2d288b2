"""Scheduled functions, locally: what EventBridge Scheduler does on AWS, at a shorter period.

A function with a `Schedule`/`ScheduleV2` event in the template (the expiry sweeper, `rate(1 minute)`)
is invoked in this process every `period_seconds` instead, so that a local run sees its effect in
seconds. Errors are logged and the next tick tries again, as the scheduler would.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)
SCHEDULE_EVENT_TYPES = frozenset({"Schedule", "ScheduleV2"})


def scheduled(function_properties: dict[str, Any]) -> bool:
    events = function_properties.get("Events") or {}
    return any(event.get("Type") in SCHEDULE_EVENT_TYPES for event in events.values())


class LocalSchedule:
    def __init__(self, invoke: Callable[[str, Any], Any], function_names: list[str], period_seconds: float) -> None:
        self._invoke = invoke
        self.function_names = function_names
        self.period_seconds = period_seconds
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.ticks = 0

    def start(self) -> None:
        if self.function_names and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="local-schedule", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        while not self._stopped.wait(self.period_seconds):
            for name in self.function_names:
                try:
                    self._invoke(name, {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}})
                except Exception:
                    log.exception("scheduled invocation of %s failed", name)
            self.ticks += 1
