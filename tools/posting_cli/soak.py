"""`posting local soak`: demo-like traffic under injected faults, then proof that nothing went wrong.

The soak generates a book and traffic like the demo's (client retries, reused ids, malformed and
unbalanced requests, overdraft attempts...) plus a drain race: many debits at once from one
no-overdraft account that can only pay some of them. It runs them with `posting local run` in a
child process against one DynamoDB Local, with the in-process faults on (faults.py). With
`process_kill` on, it kills that child at a seeded point mid-run (SIGKILL: its queues, in-flight
batches and unread events die with it) and runs it again on the same DynamoDB Local with the same
request files, as an operator would after a crash.

Then it proves, from the ledger, the final results, every result event seen and the fault logs:
1. every line is accounted for: one final outcome, or a dead letter that carries its reason;
2. nothing lost, nothing applied twice: balances equal an independent recomputation from the
   requests reported POSTED, each POSTED posting has one entry per leg, the trial balance per
   currency is zero (and the ledger's own reconciliation holds);
3. no account with a limit ever went past it: every entry's balance_after is checked, and the
   drain race posted exactly what the account could pay;
4. every decided posting has at least one result event, and all of a posting's events (apart from
   conflicts, which are about another request) share one event_id;
and prints the faults that fired, by kind. Any violation makes the exit code non-zero.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from posting.adapters.ledger_keys import DECISION_PREFIX, KEY_NAMES
from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import Account, AccountState, Side
from posting.domain.outcomes import Decision, Status
from posting.domain.plan import Entry
from posting_cli import operations
from posting_cli.demo_traffic import Book, Traffic, _leg
from posting_cli.local.dynamodb_local import attach_or_start
from posting_cli.local.faults import FAULT_KINDS, IN_PROCESS_KINDS, FaultPlan
from posting_cli.target import Target

STACK_NAME = "posting-soak"
DRAIN_ACCOUNT = "drain-EUR"
DRAIN_FUNDS = 10_000
DRAIN_DEBIT = 1_000
FINAL = {"POSTED", "REJECTED", "DUPLICATE", "DEAD_LETTERED"}
BACKSTOP_REASON = "MaxReceiveCountExceeded"  # the redrive policy moved it: no reason was recorded


@dataclass
class SoakSettings:
    postings: int
    seed: int
    faults: str = "all"
    probability: float = 0.05
    workdir: Path = Path(".posting-local/soak")
    visibility_timeout: int = 6
    max_receive_count: int = 5
    pollers: int = 4
    drain_debits: int = 25
    timeout: float = 3600


@dataclass
class SoakReport:
    lines: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    runs: int = 0
    killed_after: int | None = None  # decisions in the ledger when the process was killed
    events: int = 0
    postings_posted: int = 0
    entries: int = 0
    drain_posted: int = 0
    elapsed_seconds: float = 0.0
    facts: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


# -- traffic ----------------------------------------------------------------------------------------


def generate(settings: SoakSettings) -> tuple[list[Account], list[str], list[str]]:
    """The book, the funding requests and the everyday requests (drain race included), seeded."""
    rng = random.Random(settings.seed)
    book = Book.seed(rng, customers=max(12, min(120, settings.postings // 12)), merchants=6)
    book.accounts.append(
        Account(account_id=DRAIN_ACCOUNT, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=0)
    )
    traffic = Traffic(book, rng)
    funding = traffic.funding()
    funding.append(
        json.dumps(
            {
                "posting_id": "soak-drain-funding",
                "legs": [
                    _leg("funding-EUR", "debit", DRAIN_FUNDS, "EUR"),
                    _leg(DRAIN_ACCOUNT, "credit", DRAIN_FUNDS, "EUR"),
                ],
                "effective_at": "2026-11-27T10:00:00Z",
            }
        )
    )
    everyday = [traffic.next() for _ in range(max(0, settings.postings - len(funding) - settings.drain_debits))]
    race = [
        json.dumps(
            {
                "posting_id": f"soak-drain-{n:03d}",
                "legs": [
                    _leg(DRAIN_ACCOUNT, "debit", DRAIN_DEBIT, "EUR"),
                    _leg(book.merchants[n % len(book.merchants)], "credit", DRAIN_DEBIT, "EUR"),
                ],
                "effective_at": "2026-11-27T10:00:00Z",
            }
        )
        for n in range(settings.drain_debits)
    ]
    at = rng.randrange(0, len(everyday) + 1)
    everyday[at:at] = race  # one burst: the pollers take these concurrently
    return book.accounts, funding, everyday


# -- running ----------------------------------------------------------------------------------------


def run_soak(settings: SoakSettings, console: Console) -> SoakReport:
    started = time.monotonic()
    report = SoakReport()
    work = settings.workdir
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("events.jsonl", "faults.jsonl"):
        (work / stale).unlink(missing_ok=True)
    accounts, funding, everyday = generate(settings)
    (work / "accounts.json").write_text(json.dumps([a.model_dump(mode="json") for a in accounts]))
    (work / "funding.jsonl").write_text("".join(body + "\n" for body in funding))
    (work / "everyday.jsonl").write_text("".join(body + "\n" for body in everyday))
    bodies = funding + everyday
    report.lines = len(bodies)
    plan = FaultPlan.parse(settings.faults, seed=settings.seed, probability=settings.probability)
    console.print(
        f"soak: {len(accounts)} accounts, {len(funding)} fundings, {len(everyday)} mixed requests "
        f"(a drain race of {settings.drain_debits} on {DRAIN_ACCOUNT}); seed {settings.seed}; faults: "
        + (", ".join(f"{k}={p}" for k, p in plan.probabilities.items()) or "none")
    )
    with attach_or_start(log_dir=work / "logs") as dynamodb:
        client = dynamodb.client()
        table = LedgerTable(client, f"{STACK_NAME}-LedgerTable")
        results_path = _run_children(
            settings,
            plan=plan,
            endpoint=dynamodb.endpoint_url,
            client=client,
            table_name=table.table_name,
            report=report,
            console=console,
        )
        if results_path is None:
            report.elapsed_seconds = time.monotonic() - started
            return report
        _check(
            settings,
            plan=plan,
            bodies=bodies,
            accounts=accounts,
            results_path=results_path,
            table=table,
            endpoint=dynamodb.endpoint_url,
            report=report,
        )
    report.elapsed_seconds = time.monotonic() - started
    _print(report, plan, console)
    return report


def _run_children(
    settings: SoakSettings,
    *,
    plan: FaultPlan,
    endpoint: str,
    client: Any,
    table_name: str,
    report: SoakReport,
    console: Console,
) -> Path | None:
    """Run `posting local run` (killing the first at a seeded point if asked); the final results file."""
    rng = random.Random(settings.seed * 7919 + 1)
    kill_at = int(report.lines * (0.2 + 0.5 * rng.random())) if plan.on("process_kill") else None
    attempt = 0
    while True:
        attempt += 1
        results = settings.workdir / f"results-{attempt}.jsonl"
        child = _child(settings, plan, endpoint, attempt, results)
        report.runs += 1
        output = settings.workdir / f"run-{attempt}.log"
        if kill_at is not None and attempt == 1:
            killed = _kill_when(child, client, table_name, kill_at)
            if killed is not None:
                report.killed_after = killed
                report.faults["process_kill"] += 1
                console.print(f"killed the run (SIGKILL) with {killed} decisions in the ledger; running it again")
                continue
        code = child.wait(timeout=settings.timeout)
        if code != 0:
            report.violations.append(f"run {attempt} exited with {code}; see {output}")
            console.print(output.read_text()[-3000:])
            return None
        return results


def _child(settings: SoakSettings, plan: FaultPlan, endpoint: str, attempt: int, results: Path) -> Any:
    work = settings.workdir
    command = [sys.executable, "-m", "posting_cli.cli", "local", "run", "--stack-name", STACK_NAME]
    command += ["--accounts", "accounts.json", "--requests", "funding.jsonl", "--requests", "everyday.jsonl"]
    command += ["--results", results.name, "--balances", f"balances-{attempt}.json", "--events", "events.jsonl"]
    command += ["--pollers", str(settings.pollers), "--timeout", str(settings.timeout)]
    command += ["--parameter", f"VisibilityTimeoutSeconds={settings.visibility_timeout}"]
    command += ["--parameter", f"MaxReceiveCount={settings.max_receive_count}"]
    command += ["--stall-timeout", str(6 * settings.visibility_timeout * settings.max_receive_count + 60)]
    in_process = plan.to_spec(IN_PROCESS_KINDS)
    if in_process != "none":
        # Each run its own seed: a rerun must not replay the very same faults on the same requests.
        command += ["--faults", in_process, "--fault-seed", str(plan.seed * 100 + attempt)]
        command += ["--fault-log", "faults.jsonl"]
    if attempt == 1:
        command.append("--fresh-books")
    env = {**os.environ, "DYNAMODB_ENDPOINT": endpoint, "AWS_EC2_METADATA_DISABLED": "true"}
    log = (work / f"run-{attempt}.log").open("w")
    return subprocess.Popen(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _kill_when(child: Any, client: Any, table_name: str, decisions: int) -> int | None:
    """SIGKILL the child once the ledger holds `decisions` decisions; None if it finished first."""
    while child.poll() is None:
        count = _decision_count(client, table_name)
        if count >= decisions:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            return count
        time.sleep(0.5)
    return None


def _decision_count(client: Any, table_name: str) -> int:
    """How many decisions the ledger holds (a read-only count of its decision items)."""
    count = 0
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "Select": "COUNT",
        "FilterExpression": "begins_with(#pk, :posting)",
        "ExpressionAttributeNames": {"#pk": KEY_NAMES[0]},
        "ExpressionAttributeValues": {":posting": {"S": DECISION_PREFIX}},
    }
    try:
        while True:
            page = client.scan(**kwargs)
            count += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except client.exceptions.ResourceNotFoundException:
        return 0  # the run has not created the table yet


# -- proving ----------------------------------------------------------------------------------------


@dataclass
class Evidence:
    """What the proof reads: the final results, every event seen, and the whole ledger."""

    results: list[dict[str, Any]]
    events: list[dict[str, Any]]
    states: dict[str, AccountState]
    entries: dict[str, list[Entry]]
    decisions: dict[str, Decision]

    @property
    def posted(self) -> dict[str, Decision]:
        return {pid: d for pid, d in self.decisions.items() if d.status == Status.POSTED}


def _check(
    settings: SoakSettings,
    *,
    plan: FaultPlan,
    bodies: list[str],
    accounts: list[Account],
    results_path: Path,
    table: LedgerTable,
    endpoint: str,
    report: SoakReport,
) -> None:
    evidence = _gather(settings, results_path, table, report)
    report.postings_posted = len(evidence.posted)
    report.entries = sum(len(lines) for lines in evidence.entries.values())
    report.events = len(evidence.events)
    _check_lines(evidence, bodies, report)
    _check_money(evidence, bodies, accounts, report)
    reconciliation = operations.reconcile(_ledger_target(table, endpoint))
    report.violations += [f"reconcile: {problem}" for problem in reconciliation.problems]
    if any(reconciliation.trial_balance.values()):
        report.violations.append(f"trial balance is not zero: {reconciliation.trial_balance}")
    report.facts.append(
        "trial balance per currency: " + ", ".join(f"{c} {n}" for c, n in reconciliation.trial_balance.items())
    )
    _check_limits(evidence, settings, report)
    _check_events(evidence, report)
    for kind in plan.probabilities:
        if not report.faults.get(kind):
            report.facts.append(f"fault {kind} was on but never fired (too few postings or too low a probability)")


def prove(settings: SoakSettings, table: LedgerTable, endpoint: str, results_path: Path) -> SoakReport:
    """Check a finished soak's work directory and ledger again (the traffic is regenerated from the seed)."""
    accounts, funding, everyday = generate(settings)
    report = SoakReport(lines=len(funding) + len(everyday))
    plan = FaultPlan.parse(settings.faults, seed=settings.seed, probability=settings.probability)
    _check(
        settings,
        plan=plan,
        bodies=funding + everyday,
        accounts=accounts,
        results_path=results_path,
        table=table,
        endpoint=endpoint,
        report=report,
    )
    return report


def _gather(settings: SoakSettings, results_path: Path, table: LedgerTable, report: SoakReport) -> Evidence:
    results = [json.loads(line) for line in results_path.read_text().splitlines()]
    events = [json.loads(line) for line in (settings.workdir / "events.jsonl").read_text().splitlines() if line]
    fault_log = settings.workdir / "faults.jsonl"
    if fault_log.exists():
        report.faults.update(json.loads(line)["kind"] for line in fault_log.read_text().splitlines() if line)
    evidence = Evidence(results, events, {}, defaultdict(list), {})
    for record in table.books.scan():
        if isinstance(record, AccountState):
            evidence.states[record.account_id] = record
        elif isinstance(record, Entry):
            evidence.entries[record.account_id].append(record)
        elif isinstance(record, Decision):
            evidence.decisions[record.posting_id] = record
    # Balances as the ledger answers them (an unlimited account's lanes summed), not as items are stored.
    evidence.states.update(table.books.get_accounts(list(evidence.states)))
    return evidence


def _check_lines(evidence: Evidence, bodies: list[str], report: SoakReport) -> None:
    """1. Every line has one final outcome, or is a dead letter that carries its reason."""
    results = evidence.results
    if [r["line"] for r in results] != list(range(1, len(bodies) + 1)):
        report.violations.append(f"results name {len(results)} lines, not the {len(bodies)} sent, in order")
    for result in results:
        report.statuses[result["status"]] += 1
        if result["status"] not in FINAL:
            report.violations.append(f"line {result['line']}: no final outcome ({result['status']})")
        elif result["status"] == "DEAD_LETTERED" and result["reason"] in (None, BACKSTOP_REASON):
            report.violations.append(
                f"line {result['line']} ({result['posting_id']}): dead-lettered without its reason"
            )


def _check_money(evidence: Evidence, bodies: list[str], accounts: list[Account], report: SoakReport) -> None:
    """2. Balances = recomputation from the requests reported POSTED; one entry per leg; no strays."""
    posted, violations = evidence.posted, report.violations
    normal = {account.account_id: account.normal_balance for account in accounts}
    reported_posted: dict[str, str] = {}
    for result, body in zip(evidence.results, bodies, strict=False):
        decided = result.get("posting_status") or result["status"]
        if result["status"] in {"POSTED", "DUPLICATE"} and decided == "POSTED" and result["posting_id"]:
            reported_posted.setdefault(result["posting_id"], body)
    dead_but_posted = {
        r["posting_id"] for r in evidence.results if r["status"] == "DEAD_LETTERED" and r["posting_id"] in posted
    } - reported_posted.keys()
    if dead_but_posted:
        report.facts.append(f"{len(dead_but_posted)} dead-lettered request(s) had been posted (a redrive answers them)")
    for posting_id in sorted(reported_posted.keys() - posted.keys()):
        violations.append(f"lost: {posting_id} was reported POSTED but the ledger has no such posting")
    for posting_id in sorted(posted.keys() - reported_posted.keys() - dead_but_posted):
        violations.append(f"{posting_id} is POSTED in the ledger but no request was reported POSTED")
    legs_of = {pid: json.loads(body)["legs"] for pid, body in reported_posted.items()}
    legs_of.update({pid: (posted[pid].request or {}).get("legs", []) for pid in dead_but_posted})
    expected: Counter[str] = Counter()
    for legs in legs_of.values():
        for leg in legs:
            expected[leg["account_id"]] += leg["amount"] if leg["side"] == normal[leg["account_id"]] else -leg["amount"]
    for account_id in sorted(normal):
        actual = evidence.states[account_id].balance if account_id in evidence.states else None
        if actual != expected[account_id]:
            violations.append(f"{account_id}: balance {actual}, independent recomputation {expected[account_id]}")
    per_posting = Counter(entry.posting_id for lines in evidence.entries.values() for entry in lines)
    for posting_id, decision in posted.items():
        legs = len((decision.request or {}).get("legs", []))
        if per_posting[posting_id] != legs:
            violations.append(f"{posting_id}: {per_posting[posting_id]} entries for {legs} legs")
    for posting_id in sorted(per_posting.keys() - posted.keys()):
        violations.append(f"{posting_id}: entries without a POSTED decision")


def _check_limits(evidence: Evidence, settings: SoakSettings, report: SoakReport) -> None:
    """3. No account past its limit after any entry; the drain race paid exactly what it could."""
    for account_id, lines in evidence.entries.items():
        state = evidence.states.get(account_id)
        limit = state.account.overdraft_limit if state else None
        if limit is None:
            continue
        for entry in lines:
            if entry.balance_after is not None and entry.balance_after < -limit:
                report.violations.append(
                    f"{account_id} went to {entry.balance_after} (limit {limit}) at {entry.posting_id}"
                )
    posted = evidence.posted
    funded = DRAIN_FUNDS if "soak-drain-funding" in posted else 0
    race = [pid for pid in posted if pid.startswith("soak-drain-") and pid != "soak-drain-funding"]
    undecided = sum(
        r["status"] == "DEAD_LETTERED" for r in evidence.results if (r["posting_id"] or "").startswith("soak-drain-0")
    )
    report.drain_posted = len(race)
    can_pay = min(settings.drain_debits, funded // DRAIN_DEBIT)
    if len(race) > can_pay or (undecided == 0 and len(race) != can_pay):
        report.violations.append(f"drain race: {len(race)} debits posted; the account could pay exactly {can_pay}")


def _check_events(evidence: Evidence, report: SoakReport) -> None:
    """4. Every decision announced at least once, always under one event_id; no phantom POSTED."""
    by_posting: dict[str, set[str]] = defaultdict(set)
    announced: dict[str, set[str]] = defaultdict(set)
    for event in evidence.events:
        detail = event.get("detail", {})
        posting_id, status = detail.get("posting_id"), detail.get("status")
        if not posting_id or status == "DEAD_LETTERED" or detail.get("reason") == "IDEMPOTENCY_CONFLICT":
            continue  # a conflict is about another request; a dead letter announces no decision
        decided = detail.get("posting_status") or status
        announced[posting_id].add(decided)
        if posting_id in evidence.decisions and decided == evidence.decisions[posting_id].status:
            by_posting[posting_id].add(detail.get("event_id"))
    for posting_id, decision in sorted(evidence.decisions.items()):
        if not by_posting.get(posting_id):
            report.violations.append(f"{posting_id} is {decision.status} in the ledger but no event announced it")
        elif len(by_posting[posting_id]) > 1:
            report.violations.append(f"{posting_id}: its events carry {len(by_posting[posting_id])} event_ids")
    for posting_id, statuses in sorted(announced.items()):
        if "POSTED" in statuses and posting_id not in evidence.posted:
            report.violations.append(f"{posting_id}: an event announced POSTED, but the ledger has no such posting")


def _ledger_target(table: LedgerTable, endpoint: str) -> Target:
    outputs = dict.fromkeys(
        ("PostingQueueUrl", "DeadLetterQueueUrl", "EventBusName", "ResultsLogGroupName", "StateMachineArn"), "-"
    )
    outputs["LedgerTableName"] = table.table_name
    return Target(outputs=outputs, region="us-east-1", endpoints={"default": endpoint, "dynamodb": endpoint})


def _print(report: SoakReport, plan: FaultPlan, console: Console) -> None:
    console.print(
        f"lines {report.lines}: " + ", ".join(f"{status} {n}" for status, n in sorted(report.statuses.items()))
    )
    console.print(
        f"ledger: {report.postings_posted} postings posted, {report.entries} entries; drain race: "
        f"{report.drain_posted} of its debits posted; {report.events} result events seen; {report.runs} run(s)"
        + (f", the first killed with {report.killed_after} decisions made" if report.killed_after is not None else "")
    )
    fired = ", ".join(f"{kind} {report.faults[kind]}" for kind in FAULT_KINDS if kind in plan.probabilities)
    console.print(f"faults fired by kind: {fired or 'none'} (total {sum(report.faults.values())})")
    for fact in report.facts:
        console.print(f"  {fact}")
    console.print(f"elapsed: {report.elapsed_seconds:,.1f} s")
    checks = (
        "every line accounted for (one final outcome or a dead letter with its reason); 0 lost, 0 applied twice "
        "(balances = independent recomputation, one entry per leg, trial balance zero); no limit crossed "
        "(every entry's balance_after); every decision announced, one event_id per posting"
    )
    if report.ok:
        console.print(f"[bold green]OK[/bold green]: {checks}")
    else:
        console.print(f"[bold red]FAILED[/bold red]: {len(report.violations)} violation(s)")
        for violation in report.violations[:40]:
            console.print(f"  - {violation}")
