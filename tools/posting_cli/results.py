"""Read results back the way a consumer would: result events from the bus, dead letters from the DLQ."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, TextIO

from posting.steps.emit import EVENT_SOURCE
from posting_cli import operations
from posting_cli.target import Target


@dataclass(frozen=True)
class Result:
    message_id: str
    status: str  # POSTED, REJECTED, DUPLICATE or DEAD_LETTERED
    posting_id: str | None
    reason: str | None
    detail: str | None
    event_id: str | None
    observed_ms: int  # when the result event was delivered (ms since the epoch); 0 if unknown
    posting_status: str | None = None  # the decision recorded for the posting_id, when the event says
    moved: list[dict[str, Any]] | None = None  # a balancing posting's legs as posted, when it moved less


class ResultCollector:
    """Collects the first final result of each message id: result events and dead letters.

    Result events are read the way a consumer gets them: a rule on the results bus (the template's
    own pattern) delivers them to a queue of the collector's, created on start and removed on
    close. Local stacks only: on AWS the queue would also need a policy letting EventBridge in.
    """

    def __init__(self, target: Target, event_log: TextIO | None = None) -> None:
        """`event_log`, if given, gets every result event read (one JSON per line), repeats included."""
        if not target.is_local:
            raise ValueError("the result collector subscribes to local stacks only")
        self._target = target
        self._sqs = target.client("sqs")
        self._events = target.client("events")
        self._name = f"results-tap-{uuid.uuid4().hex[:8]}"
        self._queue_url = self._sqs.create_queue(QueueName=self._name)["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._events.put_rule(
            Name=self._name,
            EventBusName=target.event_bus_name,
            EventPattern=json.dumps({"source": [EVENT_SOURCE]}),
            State="ENABLED",
        )
        self._events.put_targets(
            Rule=self._name, EventBusName=target.event_bus_name, Targets=[{"Id": "tap", "Arn": queue_arn}]
        )
        self.results: dict[str, Result] = {}
        self.events_seen = 0
        self._event_log = event_log

    def close(self) -> None:
        self._events.remove_targets(Rule=self._name, EventBusName=self._target.event_bus_name, Ids=["tap"])
        self._events.delete_rule(Name=self._name, EventBusName=self._target.event_bus_name)
        self._sqs.delete_queue(QueueUrl=self._queue_url)

    def __enter__(self) -> ResultCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def poll_events(self, wait_seconds: int = 0) -> int:
        """Read every result event delivered so far; returns how many messages got their first result.

        With `wait_seconds`, the first read long-polls: it returns as soon as an event arrives, or
        after that many seconds with none (a wait that does not add latency, unlike a sleep).
        """
        new = 0
        wait = wait_seconds
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["SentTimestamp"],
            ).get("Messages", [])
            wait = 0
            if not messages:
                return new
            for message in messages:
                self.events_seen += 1
                event = json.loads(message["Body"])
                if self._event_log is not None:
                    self._event_log.write(
                        json.dumps({"detail_type": event.get("detail-type"), "detail": event.get("detail", {})}) + "\n"
                    )
                new += self._record(event, int(message["Attributes"]["SentTimestamp"]))
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )

    def poll_dead_letters(self) -> int:
        """Messages the queue's redrive policy moved to the DLQ carry no event: read them there."""
        new = 0
        for letter in operations.dead_letters(self._target):
            if letter.source_message_id not in self.results:
                self.results[letter.source_message_id] = Result(
                    message_id=letter.source_message_id,
                    status="DEAD_LETTERED",
                    posting_id=posting_id_of(letter.body),
                    reason=letter.error,
                    detail=letter.message,
                    event_id=None,
                    observed_ms=0,
                )
                new += 1
        return new

    def _record(self, event: dict[str, Any], observed_ms: int) -> int:
        detail = event.get("detail", {})
        message_id = detail.get("message_id")
        if not message_id or message_id in self.results:
            return 0
        self.results[message_id] = Result(
            message_id=message_id,
            status=detail.get("status", "UNKNOWN"),
            posting_id=detail.get("posting_id"),
            reason=detail.get("reason"),
            detail=detail.get("detail"),
            event_id=detail.get("event_id"),
            observed_ms=observed_ms,
            posting_status=detail.get("posting_status"),
            moved=detail.get("moved"),
        )
        return 1


def posting_id_of(body: str) -> str | None:
    """The posting_id a body claims, if it is JSON with a string posting_id (used before validation)."""
    try:
        value = json.loads(body).get("posting_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
