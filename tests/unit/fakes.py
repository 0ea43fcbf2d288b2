"""Hand-written fakes of the adapters, for unit tests of the steps only."""

from __future__ import annotations

from posting.adapters.event_bus import ResultEvent


class FakeEventBus:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.published: list[ResultEvent] = []
        self._refuse = refuse or set()  # message ids whose events are not accepted

    def publish(self, events):
        accepted = []
        for event in events:
            ok = event.detail.get("message_id") not in self._refuse
            if ok:
                self.published.append(event)
            accepted.append(ok)
        return accepted


class RecordingSqs:
    """An SQS client that keeps what it was asked to send (under the real DeadLetterQueue adapter)."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send_message(self, **kwargs: object) -> dict:
        self.sent.append(kwargs)
        return {"MessageId": "dlq-1"}


class FakeDeadLetterQueue:
    def __init__(self, broken: bool = False) -> None:
        self.messages: list[dict] = []
        self._broken = broken

    def send(
        self,
        body,
        message_id,
        receive_count,
        error,
        message,
        *,
        producer_id=None,
        original_producer_id=None,
        group_id=None,
    ):
        if self._broken:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://sqs")
        self.messages.append(
            {
                "body": body,
                "message_id": message_id,
                "receive_count": receive_count,
                "error": error,
                "message": message,
                "producer_id": producer_id,
                "original_producer_id": original_producer_id,
                "group_id": group_id,
            }
        )
