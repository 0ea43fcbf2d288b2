"""The demo's own checks: the books hold what its traffic asked for. Pure.

The ledger's reconciliation (posting.domain.reconciliation) proves the books consistent with
themselves. These checks hold them against what this generator sent and what the pipeline reported,
from one scan of the ledger:

- balances: every account's balance equals a recomputation from the requests reported POSTED (a
  balancing leg's by the amount its result event says it moved);
- chains: a chain posted has each member decided, with its chain_id, and each member's moves in the
  books as it asked; a chain refused names the member that refused it (the one built to be
  unfundable, when there is one), moved nothing and consumed no member's posting_id;
- balancing legs: each moved exactly min(asked, what its account could give when it was decided:
  available plus limit), never more, and said so in its result event; nothing to give: refused;
- value-dated postings: their lines carry their effective_at, a value date before they were booked;
  and, given the ledger's read of a balance as of a value date, that balance equals the sum of the
  lines dated at or before it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from posting.domain.books import statement_order
from posting.domain.model import AccountState, Side, signed_amount, utc_timestamp
from posting.domain.outcomes import Decision, Reason, Status
from posting.domain.plan import Entry
from posting_cli.demo_traffic import Traffic
from posting_cli.local.run import LineOutcome

MIRROR = {"debit": "credit", "credit": "debit"}


@dataclass
class Books:
    """One scan of the ledger, arranged for the checks."""

    accounts: dict[str, AccountState]  # as stored (an account without a limit: its terms)
    lines: dict[str, list[Entry]]  # posting_id -> its lines, posted and pending
    statements: dict[str, list[Entry]]  # account_id -> its posted lines, in the order they were booked
    decisions: dict[str, Decision]

    @classmethod
    def of(cls, records: Iterable[Any]) -> Books:
        accounts: dict[str, AccountState] = {}
        lines: dict[str, list[Entry]] = defaultdict(list)
        by_account: dict[str, list[Entry]] = defaultdict(list)
        decisions: dict[str, Decision] = {}
        for record in records:
            if isinstance(record, AccountState):
                accounts[record.account_id] = record
            elif isinstance(record, Entry):
                lines[record.posting_id].append(record)
                if not record.pending:
                    by_account[record.account_id].append(record)
            elif isinstance(record, Decision):
                decisions[record.posting_id] = record
        statements = {account_id: statement_order(found) for account_id, found in by_account.items()}
        return cls(accounts, dict(lines), statements, decisions)

    def posted_lines(self, posting_id: str) -> list[Entry]:
        return [line for line in self.lines.get(posting_id, []) if not line.pending]


def reported_by_id(outcomes: Iterable[LineOutcome]) -> dict[str, LineOutcome]:
    """Per posting_id, the outcome that decided it (POSTED) or else the first that answered for it."""
    found: dict[str, LineOutcome] = {}
    for outcome in outcomes:
        if outcome.posting_id is None:
            continue
        if outcome.posting_id not in found or outcome.status == "POSTED":
            found[outcome.posting_id] = outcome
    return found


def posted_legs(body: Mapping[str, Any], by_id: Mapping[str, Any], moved: Sequence[Any] | None = None) -> list[Any]:
    """The legs a request moves when it is accepted (a chain: its members'); `moved`: the legs its
    result event says a balancing posting moved."""
    kind = body.get("kind", "posting")
    if kind == "chain":
        return [leg for member in body["requests"] for leg in posted_legs(member, by_id)]
    if kind == "capture":
        return list(body.get("legs") or by_id[body["hold_id"]]["legs"])
    if kind == "reversal":
        original = by_id[body["reverses"]]["legs"] if not body.get("legs") else []
        return list(body.get("legs") or [{**leg, "side": MIRROR[leg["side"]]} for leg in original])
    if kind == "posting":
        return list(moved or body["legs"])
    return []  # holds, voids and expiries move nothing posted


def expected_balances(
    outcomes: Iterable[LineOutcome], bodies: Mapping[int, str], normal: Mapping[str, Side], traffic: Traffic
) -> dict[str, int]:
    """Every balance's movement, recomputed from the requests reported POSTED."""
    expected: dict[str, int] = defaultdict(int)
    for outcome in outcomes:
        if outcome.status != "POSTED":
            continue
        for leg in posted_legs(json.loads(bodies[outcome.line]), traffic.by_id, outcome.moved):
            expected[leg["account_id"]] += signed_amount(normal[leg["account_id"]], leg["side"], leg["amount"])
    return expected


# -- chains -----------------------------------------------------------------------------------------


@dataclass
class ChainTally:
    sent: Counter[str] = field(default_factory=Counter)  # shape -> chains decided
    posted: Counter[str] = field(default_factory=Counter)
    refused: Counter[tuple[int, str]] = field(default_factory=Counter)  # (member index, reason) -> chains


def check_chains(traffic: Traffic, books: Books) -> tuple[ChainTally, list[str]]:
    tally = ChainTally()
    problems: list[str] = []
    settled_by = {d.settled_by for d in books.decisions.values() if d.settled_by}
    reversed_by = {r for d in books.decisions.values() for r in d.reversed_by or []}
    for chain_id, shape in traffic.chains.items():
        decision = books.decisions.get(chain_id)
        if decision is None:
            problems.append(f"chain {chain_id} has no decision")
            continue
        members = (decision.request or traffic.by_id[chain_id])["requests"]
        tally.sent[shape] += 1
        if decision.status == Status.POSTED:
            tally.posted[shape] += 1
            problems += _posted_chain(chain_id, decision, members, books, traffic.by_id)
            if chain_id in traffic.unfundable:
                refused_at = traffic.unfundable[chain_id]
                problems.append(f"chain {chain_id} was posted, but its requests[{refused_at}] cannot be funded")
            continue
        index, why = _refusing_member(decision, members)
        if index is None:
            problems.append(f"chain {chain_id} was refused without naming a member: {why}")
        else:
            tally.refused[(index, str(decision.reason))] += 1
        unfundable = traffic.unfundable.get(chain_id)
        if unfundable is not None and (index, decision.reason) != (unfundable, Reason.INSUFFICIENT_FUNDS):
            problems.append(f"chain {chain_id} should be refused at requests[{unfundable}] (INSUFFICIENT_FUNDS): {why}")
        ids = [member["posting_id"] for member in members]
        if any(books.lines.get(posting_id) for posting_id in [chain_id, *ids]):
            problems.append(f"chain {chain_id} was refused, yet its members have lines in the books")
        used = [posting_id for posting_id in ids if posting_id in books.decisions]
        used += [posting_id for posting_id in ids if posting_id in settled_by or posting_id in reversed_by]
        if used:
            problems.append(f"chain {chain_id} was refused, yet it used member id(s) {', '.join(sorted(set(used)))}")
    return tally, problems


def _refusing_member(decision: Decision, members: Sequence[Mapping[str, Any]]) -> tuple[int | None, str]:
    detail = decision.detail or ""
    for index, member in enumerate(members):
        if detail.startswith(f"requests[{index}] ({member['posting_id']}):"):
            return index, f"{decision.reason}: {detail}"
    return None, f"{decision.reason}: {detail}"


def _posted_chain(
    chain_id: str, decision: Decision, members: Sequence[Mapping[str, Any]], books: Books, by_id: Mapping[str, Any]
) -> list[str]:
    problems = []
    listed = [(m["posting_id"], m["kind"]) for m in decision.members or []]
    if listed != [(m["posting_id"], m.get("kind", "posting")) for m in members]:
        problems.append(f"chain {chain_id} lists its members as {listed}")
    for member in members:
        member_id, kind = member["posting_id"], member.get("kind", "posting")
        found = books.decisions.get(member_id)
        if found is None or found.status != Status.POSTED or found.chain_id != chain_id:
            state = "none" if found is None else f"{found.status}, chain_id {found.chain_id}"
            problems.append(f"chain {chain_id} was posted, but its member {member_id} is decided: {state}")
            continue
        if (found.kind or "posting") != kind:
            problems.append(f"chain {chain_id}: member {member_id} is decided as a {found.kind or 'posting'}")
        moved = Counter((line.account_id, str(line.side), line.amount) for line in books.posted_lines(member_id))
        asked = Counter((leg["account_id"], leg["side"], leg["amount"]) for leg in posted_legs(member, by_id))
        if moved != asked:
            problems.append(f"chain {chain_id}: member {member_id} moved {dict(moved)}, it asked {dict(asked)}")
        target = member.get("hold_id") or member.get("reverses")
        if target is not None:
            acted_on = books.decisions.get(target)
            marks: list[str | None] = []
            if acted_on is not None:
                marks = [acted_on.settled_by] if kind == "capture" else list(acted_on.reversed_by or [])
            if member_id not in marks:
                problems.append(f"chain {chain_id}: {target} does not record member {member_id} acting on it")
    return problems


# -- balancing legs ---------------------------------------------------------------------------------


@dataclass
class BalancingTally:
    sent: int = 0
    asked: int = 0  # by the ones that moved money
    moved: int = 0
    in_full: int = 0
    less: int = 0
    nothing: int = 0  # refused: nothing to give


def check_balancing(
    traffic: Traffic, books: Books, reported: Mapping[str, LineOutcome]
) -> tuple[BalancingTally, list[str]]:
    """Each balancing leg against its account's lines, in the order they were booked.

    What an account could give at a balancing leg's decision is its posted balance from the lines
    before that leg's, less what was pending then, plus its limit. The demo sends balancing legs
    once every hold on their accounts is decided, so what was pending then is pending now."""
    tally = BalancingTally()
    problems: list[str] = []
    for posting_id in traffic.balancing:
        legs = traffic.by_id[posting_id]["legs"]
        balancing = next(leg for leg in legs if leg.get("balancing"))
        account_id, asked = balancing["account_id"], balancing["amount"]
        decision, state = books.decisions.get(posting_id), books.accounts.get(account_id)
        if decision is None or state is None or state.account.overdraft_limit is None:
            problems.append(f"balancing posting {posting_id} has no decision, or {account_id} no limit")
            continue
        tally.sent += 1
        limit, pending = state.account.overdraft_limit, state.balance - state.available
        statement = books.statements.get(account_id, [])
        position = next((n for n, line in enumerate(statement) if line.posting_id == posting_id), None)
        if decision.status != Status.POSTED:
            before = sum(line.signed_amount for line in statement if line.recorded_at <= decision.decided_at)
            tally.nothing += 1
            if decision.reason != Reason.INSUFFICIENT_FUNDS or position is not None or before - pending + limit > 0:
                problems.append(
                    f"balancing posting {posting_id} was refused ({decision.reason}) while {account_id} could give "
                    f"{before - pending + limit}"
                )
            continue
        if position is None:
            problems.append(f"balancing posting {posting_id} was posted but has no line on {account_id}")
            continue
        line = statement[position]
        before = sum(earlier.signed_amount for earlier in statement[:position])
        could_give = before - pending + limit
        if line.amount != min(asked, could_give) or before + line.signed_amount - pending < -limit:
            problems.append(
                f"balancing posting {posting_id} moved {line.amount} from {account_id}: it asked {asked} and the "
                f"account could give {could_give} (limit {limit})"
            )
        others = [other.amount for other in books.posted_lines(posting_id) if other.account_id != account_id]
        if others != [line.amount]:
            problems.append(f"balancing posting {posting_id}: its other leg moved {others}, not {line.amount}")
        outcome = reported.get(posting_id)
        said = _reported_move(outcome, account_id, asked)
        if said != line.amount:
            problems.append(f"balancing posting {posting_id}: its result event says it moved {said}, not {line.amount}")
        tally.asked += asked
        tally.moved += line.amount
        tally.in_full += line.amount == asked
        tally.less += line.amount < asked
    return tally, problems


def _reported_move(outcome: LineOutcome | None, account_id: str, asked: int) -> int | None:
    """What a result event says a balancing leg moved: its `moved` leg on the account, else all it asked."""
    if outcome is None or outcome.status not in ("POSTED", "DUPLICATE"):
        return None
    if not outcome.moved:
        return asked
    return next((leg["amount"] for leg in outcome.moved if leg["account_id"] == account_id), None)


# -- value-dated postings ---------------------------------------------------------------------------


@dataclass
class ValueDatedTally:
    posted: int = 0
    refused: int = 0
    lines: int = 0
    days: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    latest: str = ""  # the latest value date among them


def check_value_dated(traffic: Traffic, books: Books) -> tuple[ValueDatedTally, list[str]]:
    tally = ValueDatedTally()
    problems: list[str] = []
    for posting_id in traffic.value_dated:
        dated = utc_timestamp(datetime.fromisoformat(traffic.by_id[posting_id]["effective_at"]))
        decision = books.decisions.get(posting_id)
        if decision is None:
            problems.append(f"value-dated posting {posting_id} has no decision")
            continue
        if decision.status != Status.POSTED:
            tally.refused += 1
            continue
        lines = books.posted_lines(posting_id)
        if not lines:
            problems.append(f"value-dated posting {posting_id} was posted but has no lines")
        for line in lines:
            if line.effective_at != dated or not line.effective_at < line.recorded_at:
                problems.append(
                    f"value-dated posting {posting_id}: its line on {line.account_id} carries effective_at "
                    f"{line.effective_at!r}, recorded at {line.recorded_at}; the posting is dated {dated}"
                )
            tally.accounts.add(line.account_id)
        tally.posted += 1
        tally.lines += len(lines)
        tally.days.add(dated[:10])
        tally.latest = max(tally.latest, dated)
    return tally, problems


# The ledger's read of an account's posted balance as of a value date: (account_id, moment) -> balance.
ValueDateRead = Callable[[str, str], int]


def value_date_balances(
    books: Books, accounts: Iterable[str], moment: str, read: ValueDateRead | None
) -> list[str] | None:
    """Each account's balance as of value date `moment`, as the ledger reads it, against the sum of
    its lines dated at or before `moment` (back-valued ones included, later-dated ones not).

    The ledger's balance-by-value-date read plugs in here as `read`. None (the ledger has no such
    read) checks nothing and returns None; otherwise the problems found."""
    if read is None:
        return None
    problems = []
    for account_id in sorted(accounts):
        dated = sum(line.signed_amount for line in books.statements.get(account_id, []) if line.effective_at <= moment)
        balance = read(account_id, moment)
        if balance != dated:
            problems.append(
                f"{account_id}: balance as of value date {moment} reads {balance}; "
                f"its lines dated by then sum to {dated}"
            )
    return problems
