"""Result events on the EventBridge bus, with retries of the entries PutEvents could not take."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

PUT_EVENTS_MAX_ENTRIES = 10  # an EventBridge limit per PutEvents call
ATTEMPTS = 3


@dataclass(frozen=True)
class ResultEvent:
    detail_type: str
    detail: dict[str, Any]


class EventBus:
    """Publishes result events; returns which ones could not be delivered instead of raising."""

    def __init__(self, client: Any, bus_name: str, source: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self.bus_name = bus_name
        self.source = source
        self._sleep = sleep

    def publish(self, events: Sequence[ResultEvent]) -> list[bool]:
        """Send every event (10 per call); element i tells whether event i was accepted."""
        delivered = [False] * len(events)
        for start in range(0, len(events), PUT_EVENTS_MAX_ENTRIES):
            chunk = range(start, min(start + PUT_EVENTS_MAX_ENTRIES, len(events)))
            pending = list(chunk)
            for attempt in range(ATTEMPTS):
                if attempt:
                    self._sleep(0.05 * 2**attempt)
                pending = self._put([events[i] for i in pending], pending)
                if not pending:
                    break
            for index in chunk:
                delivered[index] = index not in pending
        return delivered

    def _put(self, events: list[ResultEvent], indexes: list[int]) -> list[int]:
        """One PutEvents call; returns the indexes that were not accepted."""
        entries = [
            {
                "EventBusName": self.bus_name,
                "Source": self.source,
                "DetailType": event.detail_type,
                "Detail": json.dumps(event.detail, separators=(",", ":")),
            }
            for event in events
        ]
        try:
            response = self._client.put_events(Entries=entries)
        except (ClientError, BotoCoreError):
            return indexes
        return [index for index, result in zip(indexes, response["Entries"], strict=True) if result.get("ErrorCode")]
