"""A local stand-in for the EventBridge Pipe (SQS source -> Step Functions target, REQUEST_RESPONSE).

moto keeps Pipes as records only; nothing polls. This poller honours the contract the deployed pipe
keeps with the queue and the workflow:

- batches of up to `BatchSize` records, collected for at most `MaximumBatchingWindowInSeconds`;
- the records are handed over in the pipe's SQS record format as the execution input, and the
  workflow is run synchronously (StartSyncExecution: REQUEST_RESPONSE);
- on SUCCEEDED, the output's `batchItemFailures` name the records to keep; every other record is
  deleted. An output the pipe cannot read, or an id that is not in the batch, fails the whole batch;
- on FAILED or TIMED_OUT nothing is deleted;
- records that are kept are left in flight untouched, so they return after the queue's visibility
  timeout and the queue's redrive policy moves them to the DLQ after maxReceiveCount deliveries;
- several pollers run concurrently, as the pipe scales out;
- from a FIFO queue (its name ends in .fifo), batches of at most 10 and no batching window, the limits
  Lambda's event source mapping documents for a FIFO source; the queue itself keeps a message group
  locked while any of its records is in flight, so no two batches hold records of one group, and a
  batch holds a group's records in their order. The records carry the group's attributes
  (MessageGroupId, MessageDeduplicationId, SequenceNumber) as SQS returns them.

`poller_death` (fault injection, see faults.py) can make a poller die at one stage of a batch:
`received` (before the workflow runs), `executed` (after it, before any delete) or `deleting`
(after part of the deletes). The records it did not delete come back after the visibility timeout,
and a new poller takes its place, as the Pipes service replaces a failed poller.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from posting.adapters.fifo import is_fifo

log = logging.getLogger(__name__)

SQS_RECEIVE_MAX = 10  # an SQS limit per ReceiveMessage call


@dataclass(frozen=True)
class PipeSettings:
    name: str
    source_queue_url: str
    source_queue_arn: str
    state_machine_arn: str
    batch_size: int
    batching_window_seconds: int
    invocation_type: str


@dataclass
class PipeStats:
    batches: int = 0
    records: int = 0
    deleted: int = 0
    kept: int = 0
    failed_executions: int = 0
    poller_deaths: int = 0
    errors: list[str] = field(default_factory=list)


class PollerDied(Exception):
    """A poller stopped mid-batch (injected): what it did not delete stays in flight."""


class LocalPipe:
    """Polls the source queue with `pollers` threads and runs the workflow for each batch."""

    def __init__(
        self,
        settings: PipeSettings,
        sqs: Any,
        stepfunctions: Any,
        *,
        pollers: int = 2,
        region: str = "us-east-1",
        poller_death: Callable[[list[dict[str, Any]]], str | None] | None = None,
    ) -> None:
        if settings.invocation_type != "REQUEST_RESPONSE":
            raise ValueError(
                f"pipe {settings.name} uses {settings.invocation_type}: only REQUEST_RESPONSE lets failed "
                "records flow back to the queue"
            )
        if is_fifo(settings.source_queue_arn) and (
            settings.batch_size > SQS_RECEIVE_MAX or settings.batching_window_seconds
        ):
            raise ValueError(
                f"pipe {settings.name}: a FIFO source takes batches of at most {SQS_RECEIVE_MAX} and no batching "
                f"window (got {settings.batch_size} and {settings.batching_window_seconds} s)"
            )
        self.settings = settings
        self._sqs = sqs
        self._sfn = stepfunctions
        self._pollers = pollers
        self._region = region
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._executions = 0
        self._poller_death = poller_death
        self.stats = PipeStats()

    def start(self) -> None:
        """Start the pollers (again, after a stop)."""
        self._stop.clear()
        for index in range(self._pollers):
            thread = threading.Thread(target=self._poll, name=f"pipe-{self.settings.name}-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                records = self._collect_batch()
                if records:
                    self._deliver(records)
            except PollerDied as died:
                log.warning("pipe poller died (%s); a new one takes over", died)
                with self._lock:
                    self.stats.poller_deaths += 1
            except Exception as error:
                log.exception("pipe poller error")
                with self._lock:
                    self.stats.errors.append(f"{type(error).__name__}: {error}")
                self._stop.wait(0.5)

    def _collect_batch(self) -> list[dict[str, Any]]:
        """Up to BatchSize records, waiting at most the batching window once the first one arrived."""
        window = self.settings.batching_window_seconds
        deadline: float | None = None
        records: list[dict[str, Any]] = []
        while len(records) < self.settings.batch_size and not self._stop.is_set():
            if deadline is None:
                wait = 1  # long poll for the first record; short so that stop() is prompt
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if remaining < 1:  # SQS waits in whole seconds: sleep out the window, then one last look
                    self._stop.wait(remaining)
                wait = min(1, int(remaining))
            response = self._sqs.receive_message(
                QueueUrl=self.settings.source_queue_url,
                MaxNumberOfMessages=min(SQS_RECEIVE_MAX, self.settings.batch_size - len(records)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            records.extend(self._pipe_record(message) for message in received)
            if records and deadline is None:
                if window == 0:
                    break
                deadline = time.monotonic() + window
            if not received and records and window == 0:
                break
        return records

    def _pipe_record(self, message: dict[str, Any]) -> dict[str, Any]:
        """An SQS message in the shape the pipe hands to its target."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.settings.source_queue_arn,
            "awsRegion": self._region,
        }

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        dies_at = self._poller_death(records) if self._poller_death else None
        if dies_at == "received":
            raise PollerDied("after receiving the batch, before running the workflow")
        with self._lock:
            self._executions += 1
            name = f"{self.settings.name}-{self._executions}-{time.time_ns()}"
            self.stats.batches += 1
            self.stats.records += len(records)
        result = self._sfn.start_sync_execution(
            stateMachineArn=self.settings.state_machine_arn, name=name, input=json.dumps(records)
        )
        keep = self._records_to_keep(result, records)
        done = [record for record in records if record["messageId"] not in keep]
        if dies_at == "executed":
            raise PollerDied("after the workflow ran, before deleting anything")
        if dies_at == "deleting":
            done = done[: len(done) // 2]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self.settings.source_queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )
        with self._lock:
            self.stats.deleted += len(done)
            self.stats.kept += len(keep)
            if result.get("status") != "SUCCEEDED":
                self.stats.failed_executions += 1
        if dies_at == "deleting":
            raise PollerDied("after deleting part of the batch")

    @staticmethod
    def _records_to_keep(result: dict[str, Any], records: list[dict[str, Any]]) -> set[str]:
        everything = {record["messageId"] for record in records}
        if result.get("status") != "SUCCEEDED":
            log.warning("execution %s: %s %s", result.get("status"), result.get("error"), result.get("cause"))
            return everything
        try:
            failures = json.loads(result.get("output") or "{}").get("batchItemFailures", [])
            keep = {failure["itemIdentifier"] for failure in failures}
        except (ValueError, AttributeError, TypeError, KeyError):
            log.warning("unreadable workflow output: the whole batch stays on the queue")
            return everything
        if not keep <= everything:
            log.warning("batchItemFailures names records not in the batch: the whole batch stays on the queue")
            return everything
        return keep
