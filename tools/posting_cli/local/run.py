"""`posting local run`: push request files through the pipeline and write what became of every line."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from posting.domain.outcomes import Decision
from posting_cli import operations
from posting_cli.groups import group_ids
from posting_cli.results import Result, ResultCollector, posting_id_of
from posting_cli.target import Target

IN_FLIGHT = 400  # messages sent but not yet decided; moto's SQS slows down as a backlog grows


class RunIncomplete(Exception):
    """Some lines got no final outcome within the bounded wait; the message names them."""


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, counted across all request files in order
    body: str | None  # None when the line is not text SQS can carry
    problem: str | None = None
    group_id: str | None = None  # its message group, on a FIFO posting queue


@dataclass
class LineOutcome:
    line: int
    posting_id: str | None
    status: str
    reason: str | None
    detail: str | None = None
    message_id: str | None = None
    sent_ms: int | None = None
    observed_ms: int | None = None
    posting_status: str | None = None
    event_id: str | None = None
    moved: list[dict[str, Any]] | None = None  # from the result event: a balancing posting's legs as posted

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "posting_id": self.posting_id,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "message_id": self.message_id,
            "posting_status": self.posting_status,
            "event_id": self.event_id,
        }


def read_lines(paths: Sequence[Path], first_number: int = 1) -> list[list[Line]]:
    """Every line of every file, exactly as written (without its newline), numbered across files."""
    files = []
    number = first_number
    for path in paths:
        lines = []
        raw = path.read_bytes()
        chunks = raw.split(b"\n")
        if chunks and chunks[-1] == b"":
            chunks.pop()  # the newline that ends the last line does not start another one
        for chunk in chunks:
            try:
                lines.append(Line(number, chunk.decode("utf-8")))
            except UnicodeDecodeError:
                lines.append(Line(number, None, "not UTF-8 text: an SQS message body cannot carry it as written"))
            number += 1
        files.append(lines)
    return files


@dataclass(frozen=True)
class Pace:
    """How to feed the queue and how long to wait: bounded in flight, bounded stall, bounded overall."""

    stall_seconds: float
    deadline: float  # a time.monotonic() value
    in_flight: int = IN_FLIGHT
    # The longest wait for the next result event, rounded up to whole seconds (SQS long polling);
    # it ends as soon as an event arrives, so it bounds how often the stall check runs, not latency.
    poll_seconds: float = 0.2


def run(
    target: Target,
    request_files: Sequence[Path],
    *,
    stall_seconds: float,
    deadline_seconds: float,
    on_progress: Callable[[int, int], None] | None = None,
    event_log: TextIO | None = None,
    group_by: str = "linked",
) -> list[LineOutcome]:
    """Send each file's lines (each file drained before the next) and wait for every final outcome.

    `event_log` gets every result event seen, one JSON object per line (repeats included). On a FIFO
    posting queue each file's lines go in the message groups `group_by` makes of them
    (posting_cli.groups), and so are decided in order within each group.
    """
    outcomes: list[LineOutcome] = []
    files = read_lines(request_files)
    if target.is_fifo:
        files = [grouped(lines, group_by) for lines in files]
    total = sum(len(lines) for lines in files)
    pace = Pace(stall_seconds=stall_seconds, deadline=time.monotonic() + deadline_seconds)
    with ResultCollector(target, event_log=event_log) as collector:
        for lines in files:
            progress = (lambda done: on_progress(len(outcomes) + done, total)) if on_progress else None
            outcomes.extend(drain(target, collector, lines, pace, progress))
    return outcomes


def drain(
    target: Target,
    collector: ResultCollector,
    lines: list[Line],
    pace: Pace,
    on_progress: Callable[[int], None] | None = None,
) -> list[LineOutcome]:
    """Send the lines (at most `pace.in_flight` undecided at a time) and wait until each has an outcome."""
    outcomes: dict[int, LineOutcome] = {}
    waiting: dict[str, LineOutcome] = {}  # message id -> its line's outcome-to-be
    unsent = list(lines)
    last_progress = time.monotonic()
    last_dlq_check = 0.0
    while unsent or waiting:
        room = pace.in_flight - len(waiting)
        if unsent and room > 0:
            chunk, unsent = unsent[:room], unsent[room:]
            _send(target, chunk, outcomes, waiting)
        progressed = collector.poll_events(wait_seconds=max(1, math.ceil(pace.poll_seconds)))
        now = time.monotonic()
        if waiting and now - last_progress > 5 and now - last_dlq_check > 5:
            progressed += collector.poll_dead_letters()
            last_dlq_check = now
        for message_id in [m for m in waiting if m in collector.results]:
            _settle(waiting.pop(message_id), collector.results[message_id])
        if progressed:
            last_progress = now
        if on_progress:
            on_progress(len(outcomes) - len(waiting))
        if not waiting and not unsent:
            break
        if now - last_progress > pace.stall_seconds or now > pace.deadline:
            if collector.poll_dead_letters():  # a last look: the DLQ is read every 5 s only
                last_progress = now
                continue
            pending = list(waiting.values())
            raise _incomplete(pending, now > pace.deadline, pace.stall_seconds, _whereabouts(target, pending))
    return [outcomes[line.number] for line in lines]


def grouped(lines: list[Line], group_by: str) -> list[Line]:
    """The lines, each with its message group: those SQS can carry grouped as `group_by` says."""
    sendable = [line for line in lines if line.body is not None]
    groups = group_ids([line.body or "" for line in sendable], group_by)
    ids = dict(zip((line.number for line in sendable), groups, strict=True))
    return [replace(line, group_id=ids.get(line.number)) for line in lines]


def _incomplete(
    pending: list[LineOutcome], past_deadline: bool, stall_seconds: float, whereabouts: str = ""
) -> RunIncomplete:
    pending.sort(key=lambda outcome: outcome.line)
    named = ", ".join(f"line {o.line}" + (f" ({o.posting_id})" if o.posting_id else "") for o in pending[:20])
    more = f" and {len(pending) - 20} more" if len(pending) > 20 else ""
    why = "the deadline was reached" if past_deadline else f"no progress for {int(stall_seconds)} s"
    return RunIncomplete(
        f"{len(pending)} line(s) got no final outcome ({why}): {named}{more}. "
        + (whereabouts + " " if whereabouts else "")
        + "The Lambda log is in .posting-local/logs/lambda.log."
    )


QUEUE_COUNTS = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


def _whereabouts(target: Target, pending: list[LineOutcome]) -> str:
    """What the stack itself can tell about lines with no outcome: the posting queue's counts and the
    ledger's decisions for their posting ids (their DLQ was read just before)."""
    try:
        attributes = target.client("sqs").get_queue_attributes(
            QueueUrl=target.queue_url, AttributeNames=list(QUEUE_COUNTS.values())
        )["Attributes"]
        table = operations.ledger(target)
        decisions = {o.line: table.get_decision(o.posting_id) for o in pending if o.posting_id is not None}
    except Exception as error:  # noqa: BLE001 - the run's own failure must be reported all the same
        return f"The posting queue and the ledger could not be read to say where they are ({error})."
    counts = {name: int(attributes.get(attribute, 0)) for name, attribute in QUEUE_COUNTS.items()}
    return explain_whereabouts(pending, counts, decisions)


def explain_whereabouts(
    pending: list[LineOutcome], queue_counts: dict[str, int], decisions: dict[int, Decision | None]
) -> str:
    """Where lines with no outcome are, from the posting queue's counts (`visible`, `in_flight`,
    `delayed`) and the ledger's decision for each line's posting id (by line number; None: none).

    The DLQ holds none of them: it was read last. Each case names what the stack did wrong.
    """
    visible, in_flight, delayed = queue_counts["visible"], queue_counts["in_flight"], queue_counts["delayed"]
    sentences = [
        f"The posting queue holds {visible} visible, {in_flight} in-flight and {delayed} delayed message(s), "
        "and the DLQ none of these lines."
    ]
    undecided = []
    for outcome in sorted(pending, key=lambda o: o.line):
        decision = decisions.get(outcome.line)
        if decision is None:
            undecided.append(outcome)
        elif decision.message_id == outcome.message_id:
            sentences.append(
                f"The ledger decided line {outcome.line} ({decision.status}) from its own message, but its result "
                "event never reached the collector."
            )
        else:
            sentences.append(
                f"The ledger decided posting {decision.posting_id} (line {outcome.line}) from another message "
                f"({decision.message_id}); no result event for line {outcome.line}'s own message arrived."
            )
    if not undecided:
        return " ".join(sentences)
    lines = f"{len(undecided)} line(s) with no decision in the ledger"
    if visible + in_flight + delayed == 0:
        sentences.append(
            f"So the {lines} are nowhere: the queue accepted their messages (ids "
            + ", ".join(str(o.message_id) for o in undecided[:5])
            + (", ..." if len(undecided) > 5 else "")
            + ") and no longer holds them, and no workflow ran them. The queue lost them."
        )
        return " ".join(sentences)
    if in_flight:
        sentences.append(
            f"{in_flight} message(s) are in flight: received and neither deleted nor returned, as when an execution "
            "hangs or a poller stops mid-batch; they return after the queue's visibility timeout."
        )
    if visible:
        sentences.append(f"{visible} message(s) are visible and waiting: nothing is receiving them.")
    sentences.append(f"The {lines} may be among them.")
    return " ".join(sentences)


def _send(target: Target, chunk: list[Line], outcomes: dict[int, LineOutcome], waiting: dict[str, LineOutcome]) -> None:
    sendable = [line for line in chunk if line.body is not None]
    for line in chunk:
        if line.body is None:
            outcomes[line.number] = LineOutcome(line.number, None, "REJECTED", "INVALID_REQUEST", line.problem)
    bodies = [line.body or "" for line in sendable]
    groups = [line.group_id for line in sendable]
    answers = (
        operations.submit(target, bodies, [group or "" for group in groups])
        if any(groups)
        else operations.submit(target, bodies)
    )
    for line, submitted in zip(sendable, answers, strict=True):
        outcome = LineOutcome(
            line.number,
            posting_id_of(line.body or ""),
            "REJECTED",
            "INVALID_REQUEST",
            submitted.error,
            submitted.message_id,
            submitted.sent_ms,
        )
        outcomes[line.number] = outcome
        if submitted.message_id is not None:
            waiting[submitted.message_id] = outcome


def _settle(outcome: LineOutcome, result: Result) -> None:
    outcome.status = result.status
    outcome.reason = result.reason
    outcome.detail = result.detail
    outcome.posting_id = result.posting_id if result.posting_id is not None else outcome.posting_id
    outcome.observed_ms = result.observed_ms or None
    outcome.posting_status = result.posting_status
    outcome.event_id = result.event_id
    outcome.moved = result.moved


def write_results(path: Path, outcomes: list[LineOutcome]) -> None:
    with path.open("w") as out:
        for outcome in outcomes:
            out.write(json.dumps(outcome.to_json()) + "\n")


def write_balances(target: Target, account_ids: Sequence[str], path: Path) -> dict[str, dict[str, Any]]:
    states = operations.books(target).get_accounts(account_ids)
    # `balance` is the posted balance (the file's original field); the other figures came with holds.
    balances = {
        account_id: {
            "currency": states[account_id].account.currency,
            "balance": states[account_id].balance,
            "posted": states[account_id].balance,
            "pending_debits": states[account_id].pending_debits,
            "pending_credits": states[account_id].pending_credits,
            "available": states[account_id].available,
        }
        for account_id in sorted(states)
    }
    path.write_text(json.dumps(balances, indent=2) + "\n")
    return balances
