"""Named fault points in the local runtime: switched on by configuration, seeded, counted.

Faults are injected at the boundaries of the production code, never inside it:

- at the Lambda dispatch (what the local runtime does around a handler call):
  `post_crash_after_commit`, `emit_crash_after_put_events`, `task_timeout`;
- at the boto3 clients the handlers use (botocore event hooks on those clients only):
  `dynamodb_throttle`, `transaction_conflict_storm`, `put_events_partial_failure`;
- in the local pipe's poller: `poller_dies`;
- around the whole process (by `posting local soak`, which kills and restarts it): `process_kill`.

Whether a fault fires is decided by a hash of (seed, kind, what the call is about, how many times
that was seen before), compared with the kind's probability. So the same seed makes the same
decisions for the same requests whatever the thread interleaving; the batching and the contention
of a concurrent run still vary a little from run to run, and so do the counts.

Every fault that fires is counted by kind and, with `log_path`, appended to a JSONL file (one line
per fault: kind, key, detail), so a process that is killed still leaves its count behind.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posting.adapters.ledger_keys import KEY_NAMES

FAULT_KINDS: dict[str, str] = {
    "post_crash_after_commit": "the Post function crashes after its transactions committed, before it returns",
    "emit_crash_after_put_events": "the Emit function crashes after PutEvents succeeded, before it returns",
    "put_events_partial_failure": "PutEvents fails some entries (FailedEntryCount > 0), which are not delivered",
    "dynamodb_throttle": "DynamoDB throttles: ProvisionedThroughputExceededException, or a transaction "
    "cancelled with ThrottlingError reasons",
    "transaction_conflict_storm": "a storm of transactions cancelled with TransactionConflict",
    "task_timeout": "a Lambda task times out (before it did anything, or after it did everything)",
    "poller_dies": "the pipe's poller dies mid-batch; its messages reappear after the visibility timeout",
    "process_kill": "the whole local process is killed, then restarted on the same DynamoDB Local with the "
    "same request files (posting local soak)",
}
IN_PROCESS_KINDS = tuple(kind for kind in FAULT_KINDS if kind != "process_kill")
DEFAULT_PROBABILITY = 0.05


class FaultSpecError(ValueError):
    """A --faults value that names no fault kind, or a probability outside [0, 1]."""


@dataclass(frozen=True)
class FaultPlan:
    """Which faults are on, with what probability, under which seed."""

    seed: int = 0
    probabilities: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str, seed: int = 0, probability: float = DEFAULT_PROBABILITY) -> FaultPlan:
        """`all`, `none`, or `kind[=p],kind[=p],...` (a kind without `=p` gets `probability`)."""
        probabilities: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, value = part.partition("=")
            chance = float(value) if value else probability
            if not 0 <= chance <= 1:
                raise FaultSpecError(f"fault probability must be within 0..1, got {part!r}")
            if name == "all":
                probabilities.update(dict.fromkeys(FAULT_KINDS, chance))
            elif name == "none":
                probabilities.clear()
            elif name in FAULT_KINDS:
                probabilities[name] = chance
            else:
                raise FaultSpecError(f"no fault kind {name!r}; choose from all, none, {', '.join(FAULT_KINDS)}")
        return cls(seed=seed, probabilities={k: v for k, v in probabilities.items() if v > 0})

    def on(self, kind: str) -> bool:
        return self.probabilities.get(kind, 0) > 0

    def to_spec(self, kinds: tuple[str, ...] = tuple(FAULT_KINDS)) -> str:
        """The plan as a --faults value (restricted to `kinds`)."""
        return ",".join(f"{kind}={p}" for kind, p in self.probabilities.items() if kind in kinds) or "none"


class InjectedFault(Exception):
    """Base of the failures the local runtime injects; `error_type` is what Lambda would report."""

    error_type = "InjectedFault"


class LambdaCrash(InjectedFault):
    error_type = "Runtime.ExitError"  # what Lambda reports when the runtime process dies


class LambdaTaskTimeout(InjectedFault):
    error_type = "Sandbox.Timedout"  # what Lambda reports when a function runs past its Timeout


class FaultInjector:
    """Decides, counts and logs faults for one local process. Thread-safe."""

    def __init__(self, plan: FaultPlan, log_path: Path | None = None) -> None:
        self.plan = plan
        self.counts: Counter[str] = Counter()
        self._seen: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._log = log_path.open("a", buffering=1) if log_path else None
        self._local = threading.local()
        self._storm_left = 0

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- deciding ------------------------------------------------------------------------------

    def draw(self, kind: str, key: str) -> float:
        """A number in [0, 1) fixed by the seed, the kind, the key and how often the key was drawn."""
        with self._lock:
            occurrence = self._seen[(kind, key)]
            self._seen[(kind, key)] += 1
        digest = hashlib.sha256(f"{self.plan.seed}|{kind}|{key}|{occurrence}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def fires(self, kind: str, key: str) -> bool:
        return self.plan.on(kind) and self.draw(kind, key) < self.plan.probabilities[kind]

    def fired(self, kind: str, key: str, detail: str = "") -> None:
        with self._lock:
            self.counts[kind] += 1
            if self._log is not None:
                self._log.write(json.dumps({"kind": kind, "key": key[:200], "detail": detail}) + "\n")

    # -- the Lambda dispatch -------------------------------------------------------------------

    def around_invoke(self, logical_id: str, event: Any, call: Callable[[], Any]) -> Any:
        """Run one Lambda invocation (`call`) with the dispatch-level faults that apply to it."""
        key = f"{logical_id}|{batch_key(event)}"
        if self.fires("task_timeout", key):
            before = self.draw("task_timeout.stage", key) < 0.5
            self.fired("task_timeout", key, "before the handler ran" if before else "after the handler ran")
            if not before:
                call()  # it did all its work; its answer is lost with the timeout
            raise LambdaTaskTimeout(f"{logical_id} timed out (injected)")
        self._local.put_events_succeeded = 0
        result = call()
        if logical_id == "PostFunction" and _decided_any(result) and self.fires("post_crash_after_commit", key):
            self.fired("post_crash_after_commit", key)
            raise LambdaCrash("post crashed after its transactions committed (injected)")
        succeeded = getattr(self._local, "put_events_succeeded", 0)
        if logical_id == "EmitFunction" and succeeded and self.fires("emit_crash_after_put_events", key):
            self.fired("emit_crash_after_put_events", key, f"after {succeeded} successful PutEvents")
            raise LambdaCrash("emit crashed after PutEvents succeeded (injected)")
        return result

    # -- the pipe ------------------------------------------------------------------------------

    def poller_death(self, records: list[dict[str, Any]]) -> str | None:
        """Where the poller dies in this batch (`received`, `executed`, `deleting`), or None."""
        key = batch_key(records)
        if not self.fires("poller_dies", key):
            return None
        stage = ("received", "executed", "deleting")[int(self.draw("poller_dies.stage", key) * 3)]
        self.fired("poller_dies", key, stage)
        return stage

    # -- boto3 clients -------------------------------------------------------------------------

    def instrument(self, client: Any) -> None:
        """Register the client-level faults on one boto3 client (dynamodb or events) and only it."""
        service = client.meta.service_model.service_name
        events = client.meta.events
        if service == "dynamodb":
            events.register("before-send.dynamodb", self._dynamodb_before_send)
        elif service == "events":
            events.register("before-parameter-build.eventbridge.PutEvents", self._put_events_params)
            events.register("before-call.eventbridge.PutEvents", self._put_events_short_circuit)
            events.register("after-call.eventbridge.PutEvents", self._put_events_after)

    def _dynamodb_before_send(self, request: Any, event_name: str = "", **_: Any) -> Any:
        operation = event_name.rsplit(".", 1)[-1]
        if operation not in {"TransactWriteItems", "GetItem", "BatchGetItem", "PutItem", "UpdateItem"}:
            return None
        body = json.loads(request.body or b"{}")
        key = f"{operation}|{_dynamodb_subject(body)}"
        items = len(body.get("TransactItems", []))
        if operation == "TransactWriteItems":
            with self._lock:
                in_storm = self._storm_left > 0
                if in_storm:
                    self._storm_left -= 1
            if in_storm or self.fires("transaction_conflict_storm", key):
                if not in_storm:
                    length = 3 + int(self.draw("storm.length", key) * 12)
                    with self._lock:
                        self._storm_left = length
                    self.fired("transaction_conflict_storm", key, "storm starts")
                return _cancelled(items, "TransactionConflict", "Transaction is ongoing for the item")
        if self.fires("dynamodb_throttle", key):
            as_cancellation = operation == "TransactWriteItems" and self.draw("throttle.shape", key) < 0.5
            self.fired("dynamodb_throttle", key, "ThrottlingError reasons" if as_cancellation else "exception")
            if as_cancellation:
                return _cancelled(items, "ThrottlingError", "Throughput exceeds the current capacity of your table")
            return _dynamodb_error(
                "ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            )
        return None

    def _put_events_params(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        entries = params.get("Entries", [])
        failing = [i for i, entry in enumerate(entries) if self.fires("put_events_partial_failure", _entry_key(entry))]
        if not failing:
            return
        for index in failing:
            self.fired("put_events_partial_failure", _entry_key(entries[index]))
        context["injected_failures"] = (failing, len(entries))
        if len(failing) < len(entries):
            params["Entries"] = [entry for i, entry in enumerate(entries) if i not in failing]
        else:
            context["injected_fail_all"] = True  # nothing to send: answered without a call

    def _put_events_short_circuit(self, context: dict[str, Any], **_: Any) -> Any:
        if context.get("injected_fail_all"):
            return _FakeHttpResponse(200), {"Entries": [], "FailedEntryCount": 0, "ResponseMetadata": {}}
        return None

    def _put_events_after(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if getattr(http_response, "status_code", 500) < 300:
            if "injected_failures" in context:
                failing, total = context.pop("injected_failures")
                delivered = iter(parsed.get("Entries", []))
                parsed["Entries"] = [
                    {"ErrorCode": "InternalFailure", "ErrorMessage": "injected: entry not delivered"}
                    if index in failing
                    else next(delivered)
                    for index in range(total)
                ]
                parsed["FailedEntryCount"] = sum(1 for entry in parsed["Entries"] if entry.get("ErrorCode"))
            if any(not entry.get("ErrorCode") for entry in parsed.get("Entries", [])):
                self._local.put_events_succeeded = getattr(self._local, "put_events_succeeded", 0) + 1


def batch_key(event: Any) -> str:
    """What a batch is about, stable across runs: its bodies (or posting ids) and delivery counts."""
    if isinstance(event, dict) and isinstance(event.get("items"), list):
        parts = [
            f"{item.get('posting_id')}|{item.get('request_hash')}|{item.get('receive_count')}"
            for item in event["items"]
        ]
    elif isinstance(event, list):
        parts = [
            hashlib.sha256(str(record.get("body", "")).encode("utf-8", "surrogatepass")).hexdigest()[:16]
            + "|"
            + str(record.get("attributes", {}).get("ApproximateReceiveCount"))
            for record in event
            if isinstance(record, dict)
        ]
    else:
        parts = [json.dumps(event, sort_keys=True, default=str)[:500]]
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:24]


def _decided_any(result: Any) -> bool:
    items = result.get("items", []) if isinstance(result, dict) else []
    return any(isinstance(item, dict) and item.get("outcome") for item in items)


def _dynamodb_subject(body: dict[str, Any]) -> str:
    """The keys a DynamoDB request is about (the posting record first), for the fault key."""
    if "TransactItems" in body:
        keys = [
            json.dumps(action.get("Key") or {k: action["Item"][k] for k in KEY_NAMES if k in action.get("Item", {})})
            for item in body["TransactItems"]
            for action in item.values()
        ]
        return keys[0] if keys else ""
    if "RequestItems" in body:
        return json.dumps(
            sorted(json.dumps(k, sort_keys=True) for t in body["RequestItems"].values() for k in t["Keys"])
        )
    return json.dumps(
        body.get("Key") or {k: v for k, v in body.get("Item", {}).items() if k in KEY_NAMES}, sort_keys=True
    )


def _entry_key(entry: dict[str, Any]) -> str:
    try:
        detail = json.loads(entry.get("Detail", "{}"))
    except ValueError:
        detail = {}
    return f"{detail.get('event_id')}|{detail.get('message_id')}"


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


class _FakeHttpResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}
        self.content = b""


def _dynamodb_error(code: str, message: str, **extra: Any) -> Any:
    """An HTTP 400 answer in DynamoDB's JSON protocol: botocore parses (and retries) it as real."""
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected-fault"}
    return AWSResponse("http://127.0.0.1/injected", 400, headers, _Raw(body))


def _cancelled(items: int, code: str, message: str) -> Any:
    reasons = [{"Code": "None"} for _ in range(max(items, 1))]
    reasons[min(1, len(reasons) - 1)] = {"Code": code, "Message": message}  # an account update, not the record
    codes = ", ".join(reason["Code"] for reason in reasons)
    return _dynamodb_error(
        "TransactionCanceledException",
        f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        CancellationReasons=reasons,
    )
