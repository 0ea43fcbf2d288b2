"""How full the pipe's batches are at a given arrival rate, and what that does to latency: a simulation.

The pipe's pollers behave as AWS documents its SQS pollers (EventBridge Pipes, "Amazon SQS as a
source", and Lambda's SQS event source mapping, which Pipes does not document apart):

- each poller long-polls; a poll returns what the queue holds the moment a message is there, up to
  the batch size, and (REQUEST_RESPONSE) the poller waits for the workflow before it polls again;
- with a batching window W > 0, "the next batching window begins as soon as the previous function
  invocation completes": a poller keeps collecting for W seconds or until its batch is full;
- AWS adds that on a quiet queue with a window a poller "might wait for up to 20 seconds" before it
  invokes. That wait is not simulated here: it only makes a window worse for latency.

Producers send each request alone (SendMessage) or gather what arrives within a flush interval into
SendMessageBatch calls of up to 10: a batch of messages lands in the queue at once, and one poll
takes it whole. Pure, seeded, no I/O: the same inputs give the same figures.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from posting_cli.bench.section import percentile

SQS_SEND_BATCH_MAX = 10  # SendMessageBatch carries at most 10 messages


@dataclass(frozen=True)
class FillResult:
    """What the simulated pipe did: batch fill, executions, producer calls and latencies."""

    arrival_rate: float  # requests per second
    mean_fill: float  # records per workflow execution
    executions_per_second: float
    producer_calls_per_message: float  # SendMessage(Batch) calls per request
    latency_p50_ms: float  # SQS enqueue -> result event delivered
    latency_p99_ms: float
    producer_wait_p50_ms: float  # request ready -> enqueued (what producer batching adds)
    producer_wait_p99_ms: float


@dataclass
class _Poller:
    state: str = "idle"  # idle (long-polling), collecting (inside a batching window), busy
    batch: list[float] = field(default_factory=list)  # enqueue times of the records it holds
    deadline: float = 0.0


class _Pipe:
    """The pollers, the queue and the clock of one simulation."""

    def __init__(
        self,
        *,
        pollers: int,
        batch_size: int,
        window_s: float,
        service_s: Callable[[int], float],
        delivery_ms: float,
        rng: random.Random,
    ) -> None:
        self.pollers = [_Poller() for _ in range(pollers)]
        self.batch_size = batch_size
        self.window_s = window_s
        self.service_s = service_s
        self.delivery_ms = delivery_ms
        self.rng = rng
        self.queue: deque[float] = deque()
        self.idle = list(range(pollers))  # pollers long-polling, in the order they became idle
        self.collecting: list[int] = []  # pollers inside a batching window
        self.events: list[tuple[float, int, str, int]] = []  # (time, sequence, kind, poller)
        self.sequence = 0
        self.latencies_ms: list[float] = []
        self.executions = 0
        self.last_done = 0.0

    def run_until(self, moment: float) -> None:
        """Handle every poller event due by `moment` (all of them with inf)."""
        while self.events and self.events[0][0] <= moment:
            at, _, kind, index = heapq.heappop(self.events)
            poller = self.pollers[index]
            if kind == "free":
                self._free(index, at)
            elif poller.state == "collecting" and poller.deadline == at:  # a window that ended
                self.collecting.remove(index)
                if poller.batch:
                    self._start(index, at)
                else:
                    self._idle(index)

    def arrive(self, at: float, count: int) -> None:
        """`count` messages land in the queue at `at` (one producer call)."""
        for _ in range(count):
            if not self.collecting:
                self.queue.append(at)
                continue
            index = self.rng.choice(self.collecting)
            self.pollers[index].batch.append(at)
            if len(self.pollers[index].batch) >= self.batch_size:
                self.collecting.remove(index)
                self._start(index, at)
        while self.queue and self.idle:  # a long poll returns the moment messages are there
            index = self.idle.pop(0)
            self._take(index)
            self._start(index, at)

    def _schedule(self, at: float, kind: str, index: int) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (at, self.sequence, kind, index))

    def _idle(self, index: int) -> None:
        self.pollers[index].state = "idle"
        self.idle.append(index)

    def _take(self, index: int) -> None:
        batch = self.pollers[index].batch
        while self.queue and len(batch) < self.batch_size:
            batch.append(self.queue.popleft())

    def _start(self, index: int, at: float) -> None:
        poller = self.pollers[index]
        done = at + self.service_s(len(poller.batch))
        self.latencies_ms.extend((done - enqueued) * 1000 + self.delivery_ms for enqueued in poller.batch)
        self.executions += 1
        self.last_done = max(self.last_done, done)
        poller.state, poller.batch = "busy", []
        self._schedule(done, "free", index)

    def _free(self, index: int, at: float) -> None:
        poller = self.pollers[index]
        self._take(index)
        if self.window_s > 0 and len(poller.batch) < self.batch_size:
            poller.state, poller.deadline = "collecting", at + self.window_s
            self.collecting.append(index)
            self._schedule(poller.deadline, "deadline", index)
        elif poller.batch:
            self._start(index, at)
        else:
            self._idle(index)


def simulate_fill(
    rate_per_s: float,
    *,
    pollers: int,
    batch_size: int,
    window_s: float,
    workflow_ms: Callable[[int], float],
    handover_ms: float = 0.0,
    delivery_ms: float = 0.0,
    producer_flush_ms: float = 0.0,
    messages: int = 20_000,
    seed: int = 1,
) -> FillResult:
    """Simulate `messages` Poisson arrivals at `rate_per_s` through `pollers` pipe pollers.

    `workflow_ms(n)` is how long one execution of n records takes; `handover_ms` what SQS and the
    pipe add before the workflow starts; `delivery_ms` what the result event takes to reach a
    consumer. `producer_flush_ms` 0 sends every request alone; above 0, a producer sends what arrived
    within each interval in SendMessageBatch calls of up to 10.
    """
    if rate_per_s <= 0 or pollers < 1 or batch_size < 1 or messages < 1:
        raise ValueError("rate, pollers, batch size and messages must be positive")
    rng = random.Random(seed)
    ready, now = [], 0.0
    for _ in range(messages):
        now += rng.expovariate(rate_per_s)
        ready.append(now)
    pipe = _Pipe(
        pollers=pollers,
        batch_size=batch_size,
        window_s=window_s,
        service_s=lambda records: (handover_ms + workflow_ms(records)) / 1000,
        delivery_ms=delivery_ms,
        rng=rng,
    )
    calls = _producer_calls(ready, producer_flush_ms / 1000)
    waits: list[float] = []
    for at, sent in calls:
        pipe.run_until(at)
        waits.extend((at - ready_at) * 1000 for ready_at in sent)
        pipe.arrive(at, len(sent))
    pipe.run_until(math.inf)
    span = pipe.last_done or ready[-1]
    return FillResult(
        arrival_rate=rate_per_s,
        mean_fill=messages / pipe.executions,
        executions_per_second=pipe.executions / span,
        producer_calls_per_message=len(calls) / messages,
        latency_p50_ms=percentile(pipe.latencies_ms, 0.50),
        latency_p99_ms=percentile(pipe.latencies_ms, 0.99),
        producer_wait_p50_ms=percentile(waits, 0.50),
        producer_wait_p99_ms=percentile(waits, 0.99),
    )


def _producer_calls(ready: list[float], flush_s: float) -> list[tuple[float, list[float]]]:
    """(send time, ready times of its messages) per SendMessage or SendMessageBatch call."""
    if flush_s <= 0:
        return [(moment, [moment]) for moment in ready]
    calls: list[tuple[float, list[float]]] = []
    pending: list[float] = []
    flush_at = 0.0
    for moment in ready:
        if pending and moment > flush_at:
            calls += _chunks(flush_at, pending)
            pending = []
        if not pending:
            flush_at = (int(moment / flush_s) + 1) * flush_s
        pending.append(moment)
    if pending:
        calls += _chunks(flush_at, pending)
    return calls


def _chunks(at: float, pending: list[float]) -> list[tuple[float, list[float]]]:
    return [(at, pending[i : i + SQS_SEND_BATCH_MAX]) for i in range(0, len(pending), SQS_SEND_BATCH_MAX)]
