"""The books' invariants, checked independent ways from everything the ledger holds. Pure.

`reconcile` takes every account (as stored), line, checkpoint and decision, and returns what does
not add up. The operator's `posting reconcile`, the demo and the soak all call it.

1. Trial balance: per currency, posted debits equal credits across all accounts.
2. Every account's figures (posted, pending debits and credits) equal the sums of its lines, its
   entry count the number of its posted lines; an account with a limit records its lines in the
   order its balance moved (each request's after the one before), each line's recorded figures are
   the running sums, and its headroom is available plus its limit.
3. Every posted balance equals a recomputation from the accepted requests' posted legs alone, and
   every accepted request has exactly one line per posted leg.
4. Every account's pending debits and credits equal the sums over the holds still open.
5. Every checkpoint equals the sums of its lane's lines up to its instant.
6. Every hold is in exactly one state, and a settled one names the one accepted request that
   settled it (a capture, void or expiry of that hold); no hold is settled twice.
7. Every original's reversed amounts equal the sums of its accepted reversals, within the original.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from posting.domain.books import Checkpoint, Figures, statement_order, with_figures
from posting.domain.model import AccountState, Side, signed_amount
from posting.domain.outcomes import Decision, Status
from posting.domain.plan import Entry, HoldState, reversal_key

SETTLED_BY = {HoldState.CAPTURED: "capture", HoldState.VOIDED: "void", HoldState.EXPIRED: "expiry"}


@dataclass
class Reconciliation:
    accounts: int = 0
    entries: int = 0
    checkpoints: int = 0
    postings_posted: int = 0
    postings_rejected: int = 0
    trial_balance: dict[str, int] = field(default_factory=dict)  # currency -> debits - credits
    holds: dict[str, int] = field(default_factory=dict)  # hold state -> count
    reversals: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def posted_legs(decision: Decision) -> list[dict[str, Any]]:
    """The legs an accepted request posted: a posting's own, a capture's or a reversal's; a hold,
    void or expiry posts nothing, and a chain nothing of its own (its members post)."""
    if decision.status != Status.POSTED or decision.kind in ("hold", "void", "expiry", "chain"):
        return []
    if decision.posted_legs is not None:
        return decision.posted_legs
    return list((decision.request or {}).get("legs", []))


def reconcile_records(
    records: Iterable[AccountState | Entry | Checkpoint | Decision], max_problems: int = 50
) -> Reconciliation:
    """`reconcile` over one stream of everything the ledger holds (a scan of its table)."""
    accounts: list[AccountState] = []
    lines: list[Entry] = []
    checkpoints: list[Checkpoint] = []
    decisions: list[Decision] = []
    for record in records:
        if isinstance(record, AccountState):
            accounts.append(record)
        elif isinstance(record, Entry):
            lines.append(record)
        elif isinstance(record, Checkpoint):
            checkpoints.append(record)
        else:
            decisions.append(record)
    return reconcile(accounts, lines, checkpoints, decisions, max_problems)


def reconcile(
    stored: Iterable[AccountState],
    lines: Iterable[Entry],
    checkpoints: Iterable[Checkpoint],
    decisions: Iterable[Decision],
    max_problems: int = 50,
) -> Reconciliation:
    report = Reconciliation()
    by_account: dict[str, list[Entry]] = defaultdict(list)
    for line in lines:
        by_account[line.account_id].append(line)
    stored_states = {state.account_id: state for state in stored}
    accounts = {
        account_id: with_figures(state, Figures.of(by_account.get(account_id, [])))
        if state.account.is_unlimited
        else state
        for account_id, state in stored_states.items()
    }
    decided = {decision.posting_id: decision for decision in decisions}
    checkpoint_list = list(checkpoints)
    posted = [d for d in decided.values() if d.status == Status.POSTED]
    report.accounts = len(accounts)
    report.entries = sum(1 for lines_of in by_account.values() for line in lines_of if not line.pending)
    report.checkpoints = len(checkpoint_list)
    report.postings_posted = len(posted)
    report.postings_rejected = len(decided) - len(posted)
    report.trial_balance = trial_balance(accounts.values())
    problems = [f"trial balance in {currency} is off by {net}" for currency, net in report.trial_balance.items() if net]
    problems += [f"lines of unknown account {a}" for a in sorted(set(by_account) - set(accounts))]
    recomputed, unknown = _recompute(posted, accounts)
    problems += unknown
    problems += _check_lines_per_leg(posted, by_account)
    for account_id, state in sorted(accounts.items()):
        problems += _check_account(state, by_account.get(account_id, []), recomputed.get(account_id, 0))
    problems += _check_checkpoints(checkpoint_list, by_account)
    problems += _check_holds(decided, accounts, report)
    problems += _check_reversals(decided, report)
    report.problems = problems[:max_problems]
    return report


def trial_balance(accounts: Iterable[AccountState]) -> dict[str, int]:
    """Per currency, debits minus credits over every account: zero when the books balance."""
    trial: dict[str, int] = defaultdict(int)
    for state in accounts:
        trial[state.account.currency] += state.balance if state.account.normal_balance == Side.DEBIT else -state.balance
    return dict(sorted(trial.items()))


def _recompute(posted: list[Decision], accounts: Mapping[str, AccountState]) -> tuple[dict[str, int], list[str]]:
    """Every balance again, from the posted legs of the accepted requests only."""
    recomputed: dict[str, int] = defaultdict(int)
    problems = []
    for decision in posted:
        for leg in posted_legs(decision):
            state = accounts.get(leg["account_id"])
            if state is None:
                problems.append(f"posting {decision.posting_id} moved money on unknown account {leg['account_id']}")
            else:
                recomputed[leg["account_id"]] += signed_amount(state.account.normal_balance, leg["side"], leg["amount"])
    return recomputed, problems


def _check_lines_per_leg(posted: list[Decision], by_account: Mapping[str, list[Entry]]) -> list[str]:
    lines_of: Counter[str] = Counter(
        line.posting_id for lines in by_account.values() for line in lines if not line.pending
    )
    problems = []
    for decision in posted:
        legs = len(posted_legs(decision))
        found = lines_of.get(decision.posting_id, 0)
        if found != legs:
            problems.append(f"posting {decision.posting_id} posted {legs} leg(s) but has {found} line(s)")
    accepted = {d.posting_id for d in posted}
    strays = sorted({posting_id for posting_id in lines_of if posting_id not in accepted})
    problems += [f"lines of posting {posting_id}, which was not accepted" for posting_id in strays]
    return problems


def _check_account(state: AccountState, lines: list[Entry], recomputed: int) -> list[str]:
    account = state.account
    account_id = state.account_id
    posted_lines = [line for line in statement_order(lines) if not line.pending]
    problems = _check_lanes(state, lines) if account.is_unlimited else _check_balance_item(state, lines, posted_lines)
    normal = account.normal_balance
    if any(line.signed_amount != signed_amount(normal, line.side, line.amount) for line in posted_lines):
        problems.append(f"{account_id}: a line has the wrong signed amount")
    total = sum(line.signed_amount for line in posted_lines)
    if total != state.balance:
        problems.append(f"{account_id}: balance {state.balance} but its entries sum to {total}")
    if len(posted_lines) != state.version:
        problems.append(f"{account_id}: {state.version} entries counted but {len(posted_lines)} lines")
    if recomputed != state.balance:
        problems.append(f"{account_id}: balance {state.balance} but accepted postings give {recomputed}")
    return problems


def _check_lanes(state: AccountState, lines: list[Entry]) -> list[str]:
    lanes = state.account.lanes
    if any(line.lane is None or not 0 <= line.lane < lanes for line in lines):
        return [f"{state.account_id}: lines outside its {lanes} lane(s)"]
    return []


def _check_balance_item(state: AccountState, lines: list[Entry], posted_lines: list[Entry]) -> list[str]:
    account_id = state.account_id
    problems = []
    if any(line.lane is not None for line in lines):
        problems.append(f"{account_id}: has a limit but lines in lanes")
    for before, line in itertools.pairwise(statement_order(lines)):
        if line.posting_id != before.posting_id and line.recorded_at <= before.recorded_at:
            problems.append(f"{account_id}: {before.posting_id} and {line.posting_id} recorded at one instant")
            break
    total = Figures.of(lines)
    if (total.pending_debits, total.pending_credits) != (state.pending_debits, state.pending_credits):
        problems.append(
            f"{account_id}: pending {state.pending_debits}/{state.pending_credits} (debits/credits) but its lines "
            f"sum to {total.pending_debits}/{total.pending_credits}"
        )
    running, count = Figures(), 0
    for line in statement_order(lines):
        running += Figures.of([line])
        count += 0 if line.pending else 1
        after = line.figures_after()
        if line.balance_after is not None and (line.balance_after != running.posted or line.sequence != count):
            problems.append(
                f"{account_id}: line {count} ({line.posting_id}) records {line.balance_after} after "
                f"{line.sequence} entries; the running sum is {running.posted} after {count}"
            )
            break
        if after is not None and after[1:] != (running.pending_debits, running.pending_credits):
            problems.append(
                f"{account_id}: line {line.posting_id}#{line.leg} records pending {after[1]}/{after[2]} after it; "
                f"its lines sum to {running.pending_debits}/{running.pending_credits} by then"
            )
            break
    if state.recorded_headroom is not None and state.recorded_headroom != state.headroom:
        problems.append(
            f"{account_id}: headroom {state.recorded_headroom}, but available {state.available} plus its "
            f"limit {state.account.overdraft_limit} is {state.headroom}"
        )
    return problems


def _check_checkpoints(checkpoints: list[Checkpoint], by_account: Mapping[str, list[Entry]]) -> list[str]:
    problems = []
    for checkpoint in sorted(checkpoints, key=lambda c: (c.account_id, c.lane, c.through)):
        lines = [
            line
            for line in by_account.get(checkpoint.account_id, [])
            if line.lane == checkpoint.lane and line.recorded_at <= checkpoint.through
        ]
        if Figures.of(lines) != checkpoint.figures:
            problems.append(
                f"{checkpoint.account_id}: lane {checkpoint.lane}'s checkpoint at {checkpoint.through} says "
                f"{checkpoint.figures}, its lines up to then sum to {Figures.of(lines)}"
            )
    return problems


def _check_holds(
    decisions: Mapping[str, Decision], accounts: Mapping[str, AccountState], report: Reconciliation
) -> list[str]:
    problems = []
    pending: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    states: Counter[str] = Counter()
    settlements: dict[str, list[str]] = defaultdict(list)
    for decision in decisions.values():
        if decision.status == Status.POSTED and decision.kind in SETTLED_BY.values():
            settlements[decision.hold_id or ""].append(decision.posting_id)
    for decision in decisions.values():
        if decision.kind != "hold" or decision.status != Status.POSTED:
            continue
        state = decision.hold_state
        states[str(state)] += 1
        hold_id = decision.posting_id
        settled = settlements.get(hold_id, [])
        if state not in HoldState.ALL:
            problems.append(f"hold {hold_id} is in no known state ({state})")
        elif state == HoldState.OPEN:
            if settled:
                problems.append(f"hold {hold_id} is open but was settled by {', '.join(settled)}")
            for leg in decision.pending_legs or []:
                pending[leg["account_id"]][0 if leg["side"] == Side.DEBIT else 1] += leg["amount"]
        else:
            by = decisions.get(decision.settled_by or "")
            if len(settled) != 1 or by is None or by.kind != SETTLED_BY[state] or settled != [by.posting_id]:
                problems.append(f"hold {hold_id} is {state} but its settlements are {settled or 'none'}")
    report.holds = dict(sorted(states.items()))
    for account_id, account in sorted(accounts.items()):
        debits, credits = pending.get(account_id, [0, 0])
        if (account.pending_debits, account.pending_credits) != (debits, credits):
            problems.append(
                f"{account_id}: pending {account.pending_debits}/{account.pending_credits} (debits/credits) but its "
                f"open holds sum to {debits}/{credits}"
            )
    return problems


def _check_reversals(decisions: Mapping[str, Decision], report: Reconciliation) -> list[str]:
    problems = []
    reversed_by: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for decision in decisions.values():
        if decision.status == Status.POSTED and decision.kind == "reversal" and decision.reverses:
            report.reversals += 1
            for leg in decision.posted_legs or []:
                side = Side.CREDIT if leg["side"] == Side.DEBIT else Side.DEBIT  # the original's side
                reversed_by[decision.reverses][reversal_key(leg["account_id"], side, leg["currency"])] += leg["amount"]
    for original_id, totals in sorted(reversed_by.items()):
        original = decisions.get(original_id)
        if original is None:
            problems.append(f"reversals of unknown posting {original_id}")
            continue
        if dict(original.reversed or {}) != dict(totals):
            problems.append(
                f"posting {original_id} records {original.reversed} reversed, its reversals sum to {dict(totals)}"
            )
        room: Counter[str] = Counter()
        for leg in posted_legs(original):
            room[reversal_key(leg["account_id"], leg["side"], leg["currency"])] += leg["amount"]
        if any(amount > room[key] for key, amount in totals.items()):
            problems.append(f"posting {original_id} is reversed beyond its amounts: {dict(totals)}")
    for decision in decisions.values():
        if decision.reversed and not reversed_by.get(decision.posting_id):
            problems.append(f"posting {decision.posting_id} records reversals that do not exist")
    return problems
