"""`posting smoke`: prove a live stack works end to end, with nothing but the stack's own outputs.

It opens two uniquely named accounts, sends a posting, then a duplicate of it and a malformed
request, and waits (bounded) for their result events in the stack's results log group, read with
CloudWatch Logs' FilterLogEvents (the template's audit rule puts every result event there, so no
extra infrastructure is needed). It checks the outcomes and the balances, reports the latency from
enqueue to the event reaching the log group, and closes its accounts whatever happened.

Only APIs that exist on AWS are used (SQS SendMessage, DynamoDB reads and writes on the ledger
table, FilterLogEvents), so the same command runs against `posting local up` and a deployed stack.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from posting.domain.events import EVENT_SOURCE, PostingPosted, PostingRejected
from posting.domain.model import Account, AccountStatus
from posting.domain.outcomes import TransientPostingError
from posting_cli import operations
from posting_cli.target import Target

AMOUNT = 100
CURRENCY = "EUR"
# Result events are stamped by the bus, in whole seconds, on the service's clock: look back a little.
CLOCK_MARGIN_MS = 60_000


@dataclass(frozen=True)
class Probe:
    """One request the smoke test sends, and what must come back for it."""

    name: str
    body: str
    detail_type: str
    status: str
    reason: str | None = None


@dataclass
class Observed:
    """A result event read from the log group, answering one sent message."""

    detail_type: str
    detail: dict[str, Any]
    logged_ms: int


@dataclass
class SmokeReport:
    run_id: str
    accounts: list[str]
    sent_ms: dict[str, int] = field(default_factory=dict)  # probe name -> when it was sent
    latencies_ms: dict[str, int] = field(default_factory=dict)  # probe name -> enqueue to logged event
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def new_run_id() -> str:
    """Unique and sortable, so leftovers of old runs are easy to recognise in the ledger."""
    return f"smoke-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def accounts_for(run_id: str) -> tuple[Account, Account]:
    def account(account_id: str, overdraft_limit: int | None) -> Account:
        return Account.model_validate(
            {
                "account_id": account_id,
                "currency": CURRENCY,
                "normal_balance": "credit",
                "overdraft_limit": overdraft_limit,
                "status": "open",
            },
            strict=False,
        )

    return account(f"{run_id}-payer", None), account(f"{run_id}-payee", 0)


def probes_for(run_id: str, payer: Account, payee: Account) -> tuple[Probe, Probe, Probe]:
    posting = json.dumps(
        {
            "posting_id": f"{run_id}-posting",
            "legs": [
                {"account_id": payer.account_id, "side": "debit", "amount": AMOUNT, "currency": CURRENCY},
                {"account_id": payee.account_id, "side": "credit", "amount": AMOUNT, "currency": CURRENCY},
            ],
            "effective_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "description": "posting smoke test",
        }
    )
    # A usable posting_id but no legs: refused by validation. (Whether such an id is recorded is
    # not part of what this test relies on.)
    malformed = json.dumps({"posting_id": f"{run_id}-malformed", "legs": "none", "effective_at": "yesterday"})
    return (
        Probe("posting", posting, PostingPosted.detail_type, "POSTED"),
        Probe("duplicate", posting, PostingPosted.detail_type, "DUPLICATE"),
        Probe("malformed", malformed, PostingRejected.detail_type, "REJECTED", "INVALID_REQUEST"),
    )


def check_outcomes(probes: dict[str, Probe], observed: dict[str, Observed]) -> list[str]:
    """Each probe's event has the expected detail-type, status and reason; the duplicate re-announces."""
    problems = []
    for name, probe in probes.items():
        event = observed.get(name)
        if event is None:
            problems.append(f"{name}: no result event")
            continue
        got = (event.detail_type, event.detail.get("status"), event.detail.get("reason"))
        want = (probe.detail_type, probe.status, probe.reason)
        if got != want:
            problems.append(
                f"{name}: expected {want[0]!r} status {want[1]} reason {want[2]}, "
                f"got {got[0]!r} status {got[1]} reason {got[2]} ({event.detail.get('detail')})"
            )
    if "posting" in observed and "duplicate" in observed:
        first, again = observed["posting"].detail, observed["duplicate"].detail
        if first.get("event_id") != again.get("event_id"):
            problems.append(
                f"duplicate: event_id {again.get('event_id')} differs from the posting's {first.get('event_id')}"
            )
    return problems


def check_balances(balances: dict[str, tuple[int, int] | None], payer: str, payee: str) -> list[str]:
    """balances: account id -> (balance, entries), or None when the account cannot be read."""
    want = {payer: (-AMOUNT, 1), payee: (AMOUNT, 1)}
    problems = []
    for account_id, expected in want.items():
        got = balances.get(account_id)
        if got != expected:
            problems.append(
                f"{account_id}: expected balance {expected[0]} after {expected[1]} entry, got "
                + ("no account" if got is None else f"balance {got[0]} after {got[1]} entries")
            )
    return problems


class ResultLog:
    """Result events from the stack's results log group, keyed by the SQS message id they answer."""

    def __init__(self, target: Target, since_ms: int) -> None:
        self._logs = target.client("logs")
        self._group = target.results_log_group
        self._since_ms = since_ms - CLOCK_MARGIN_MS

    def read(self, message_ids: set[str]) -> dict[str, Observed]:
        found: dict[str, Observed] = {}
        kwargs: dict[str, Any] = {"logGroupName": self._group, "startTime": self._since_ms}
        while True:
            page = self._logs.filter_log_events(**kwargs)
            for log_event in page.get("events", []):
                event = _event_of(log_event.get("message", ""))
                message_id = event.get("detail", {}).get("message_id") if event else None
                if event is None or message_id not in message_ids or message_id in found:
                    continue
                found[message_id] = Observed(
                    detail_type=str(event.get("detail-type")),
                    detail=event["detail"],
                    logged_ms=int(log_event.get("ingestionTime") or log_event["timestamp"]),
                )
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return found
            kwargs["nextToken"] = token


def _event_of(message: str) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("source") != EVENT_SOURCE or not isinstance(event.get("detail"), dict):
        return None
    return event


def run_smoke(
    target: Target,
    *,
    timeout_seconds: float = 120,
    poll_seconds: float = 2,
    run_id: str | None = None,
    say: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> SmokeReport:
    run_id = run_id or new_run_id()
    payer, payee = accounts_for(run_id)
    report = SmokeReport(run_id=run_id, accounts=[payer.account_id, payee.account_id])
    posting, duplicate, malformed = probes_for(run_id, payer, payee)
    probes = {probe.name: probe for probe in (posting, duplicate, malformed)}
    log = ResultLog(target, since_ms=_now_ms())
    deadline = time.monotonic() + timeout_seconds
    observed: dict[str, Observed] = {}
    say(f"smoke run {run_id}: accounts {payer.account_id}, {payee.account_id}")
    try:
        operations.open_accounts(target, [payer, payee])
        # The posting first, alone: its duplicate must find it decided, whatever the batching.
        for stage in ([posting], [duplicate, malformed]):
            sent = _send(target, stage, report)
            if report.problems:
                return report
            observed.update(_await_events(log, sent, deadline, poll_seconds, sleep))
            missing = [name for name in sent.values() if name not in observed]
            if missing:
                report.problems += [
                    f"{name}: no result event in {target.results_log_group} within {timeout_seconds:g} s"
                    for name in missing
                ]
                return report
        for name, event in observed.items():
            report.latencies_ms[name] = event.logged_ms - report.sent_ms[name]
        report.problems += check_outcomes(probes, observed)
        report.problems += check_balances(_balances(target, report.accounts), payer.account_id, payee.account_id)
        return report
    finally:
        _close(target, report)


def _send(target: Target, probes: list[Probe], report: SmokeReport) -> dict[str, str]:
    """Send each probe's body; returns message id -> probe name."""
    answers = operations.submit(target, [probe.body for probe in probes])
    sent = {}
    for probe, answer in zip(probes, answers, strict=True):
        if answer.message_id is None:
            report.problems.append(f"{probe.name}: the queue refused it: {answer.error}")
        else:
            sent[answer.message_id] = probe.name
            report.sent_ms[probe.name] = answer.sent_ms
    return sent


def _await_events(
    log: ResultLog, sent: dict[str, str], deadline: float, poll_seconds: float, sleep: Callable[[float], None]
) -> dict[str, Observed]:
    found: dict[str, Observed] = {}
    while True:
        found = log.read(set(sent))
        if len(found) == len(sent) or time.monotonic() >= deadline:
            return {sent[message_id]: event for message_id, event in found.items()}
        sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def _balances(target: Target, account_ids: list[str]) -> dict[str, tuple[int, int] | None]:
    balances: dict[str, tuple[int, int] | None] = {}
    for account_id in account_ids:
        state = operations.balance(target, account_id)
        balances[account_id] = None if state is None else (state.balance, state.version)
    return balances


CLOSE_ATTEMPTS = 6


def _close(target: Target, report: SmokeReport, sleep: Callable[[float], None] = time.sleep) -> None:
    """Mark the run's accounts closed so nothing posts to them again; they stay in the books.

    A posting still in flight on an account holds its item, and DynamoDB refuses the close with a
    transaction conflict until it commits: such a refusal is tried again, with backoff (about 3 s).
    """
    table = operations.ledger(target)
    for account_id in report.accounts:
        for attempt in range(CLOSE_ATTEMPTS):
            try:
                if table.read_accounts([account_id]):
                    table.set_account_status(account_id, AccountStatus.CLOSED)
                break
            except TransientPostingError as error:
                if attempt == CLOSE_ATTEMPTS - 1:
                    report.problems.append(f"{account_id}: could not be closed: {error}")
                else:
                    sleep(0.05 * 2**attempt)
            except Exception as error:  # noqa: BLE001 - report it, never hide the run's own verdict
                report.problems.append(f"{account_id}: could not be closed: {error}")
                break


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
