"""An in-memory ledger for unit tests of the steps: the Ledger Protocol (posting.steps.ports) and the
operator reads (`books`), with the same conditions the DynamoDB adapter asks DynamoDB to check.

tests/contract/test_ledger_contract.py runs one suite against this fake and the real adapter on
DynamoDB Local, so the two cannot drift apart.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from posting.domain.accounts import AccountAct, AccountActRefused, opening
from posting.domain.books import (
    Checkpoint,
    Figures,
    figures_by_value_date,
    lane_figures,
    statement_order,
    with_figures,
    with_running_balance,
)
from posting.domain.model import Account, AccountState, AccountStatus
from posting.domain.outcomes import (
    AccountAlreadyExists,
    ConcurrentUpdate,
    Decision,
    PostingAlreadyDecided,
    TransientPostingError,
)
from posting.domain.periods import Period, PeriodCloseRefused
from posting.domain.plan import AccountChange, Entry, HoldState, PostingPlan, Records, records_of

LATEST = "~"


@dataclass
class _Store:
    accounts: dict[str, AccountState] = field(default_factory=dict)  # as stored (unlimited: terms only)
    headroom: dict[str, int] = field(default_factory=dict)
    lines: dict[tuple[str, int | None, str, str, int], Entry] = field(default_factory=dict)
    checkpoints: dict[tuple[str, int, str], Checkpoint] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    revisions: dict[str, list[AccountAct]] = field(default_factory=dict)
    periods: list[Period] = field(default_factory=list)
    outbox: dict[str, AccountAct | Period] = field(default_factory=dict)


class FakeLedger:
    """The ledger in memory, with what tests need to make it misbehave and to watch it:

    - `fail_transactions`, `fail_reads`, `fail_rejections`: that many of the next transactions, reads
      or recorded rejections raise TransientPostingError (throttling, a conflict) and write nothing;
    - `fail_after_commit`: that many of the next transactions commit, then raise (a lost answer);
    - `before_transaction`: run once, just before the next transaction (another writer in between);
    - `calls`: how many times each method was called.
    """

    def __init__(self) -> None:
        self._store = _Store()
        self._guard = threading.RLock()
        self.books = FakeBooks(self)
        self.calls: Counter[str] = Counter()
        self.fail_transactions = 0
        self.fail_after_commit = 0
        self.fail_reads = 0
        self.fail_rejections = 0
        self.before_transaction: Callable[[], object] | None = None

    # -- accounts -------------------------------------------------------------------------------

    def open_account(self, account: Account, opened_at: str, *, by: str = "") -> AccountState:
        with self._guard:
            if account.account_id in self._store.accounts:
                raise AccountAlreadyExists(account.account_id)
            state = AccountState(account=account, known=not account.is_unlimited, status_since=opened_at)
            self._store.accounts[account.account_id] = state
            if account.overdraft_limit is not None:
                self._store.headroom[account.account_id] = account.overdraft_limit
            act = opening(account, opened_at, by)
            self._store.revisions.setdefault(account.account_id, []).append(act)
            self._announce(opened_at, act)
            return AccountState(account=account, known=True, status_since=opened_at)

    # -- operators' acts (posting.steps.ports.LedgerRecords) --------------------------------------

    @property
    def acts(self) -> FakeLedger:
        """As the adapter's `acts`: the fake keeps operators' acts itself."""
        return self

    def account_figures(self, account_id: str) -> AccountState | None:
        return self.books.get_account(account_id)

    def record_account_act(self, act: AccountAct) -> None:
        with self._guard:
            if self.fail_transactions:
                self.fail_transactions -= 1
                raise TransientPostingError("transaction cancelled: TransactionConflict")
            state = self._store.accounts[act.account_id]
            headroom = self._store.headroom.get(act.account_id)
            held = (
                state.revision == act.revision - 1
                and state.account.status == act.expect_status
                and (act.headroom_delta >= 0 or (headroom or 0) >= -act.headroom_delta)
                and (not act.must_be_empty or (state.balance, state.pending_debits, state.pending_credits) == (0, 0, 0))
            )
            if not held:
                raise AccountActRefused(f"account {act.account_id} changed while the act was decided")
            account = state.account.model_copy(update={"status": act.status, "overdraft_limit": act.overdraft_limit})
            self._store.accounts[act.account_id] = state.model_copy(
                update={"account": account, "revision": act.revision, "status_since": act.recorded_at}
            )
            if headroom is not None:
                self._store.headroom[act.account_id] = headroom + act.headroom_delta
            self._store.revisions[act.account_id].append(act)
            self._announce(act.recorded_at, act)

    def read_period(self) -> Period:
        with self._guard:
            self.calls["read_period"] += 1
            return self._store.periods[-1] if self._store.periods else Period()

    def record_period_close(self, period: Period) -> None:
        with self._guard:
            if len(self._store.periods) != period.revision - 1:
                raise PeriodCloseRefused("another close was recorded meanwhile")
            self._store.periods.append(period)
            assert period.closed_at is not None
            self._announce(period.closed_at, period)

    def account_revisions(self, account_id: str) -> list[AccountAct]:
        with self._guard:
            return list(self._store.revisions.get(account_id, []))

    def announcements(self, limit: int) -> list[tuple[str, AccountAct | Period]]:
        with self._guard:
            return sorted(self._store.outbox.items())[:limit]

    def forget_announcements(self, keys: list[str]) -> None:
        with self._guard:
            for key in keys:
                self._store.outbox.pop(key, None)

    def _announce(self, recorded_at: str, record: AccountAct | Period) -> None:
        what = (
            f"{record.account_id}|{record.revision}" if isinstance(record, AccountAct) else f"period|{record.revision}"
        )
        self._store.outbox[f"{recorded_at}#{what}"] = record

    def set_account_status(self, account_id: str, status: AccountStatus) -> None:
        with self._guard:
            state = self._store.accounts[account_id]
            account = state.account.model_copy(update={"status": status})
            self._store.accounts[account_id] = state.model_copy(update={"account": account})

    def read_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        with self._guard:
            self.calls["read_accounts"] += 1
            if self.fail_reads:
                self.fail_reads -= 1
                raise TransientPostingError("DynamoDB: ThrottlingException")
            return self.accounts(account_ids)

    def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        """The stored accounts among `account_ids`, for the books (not counted, never failing)."""
        with self._guard:
            return {a: self._stored(a) for a in dict.fromkeys(account_ids) if a in self._store.accounts}

    def _stored(self, account_id: str) -> AccountState:
        state = self._store.accounts[account_id]
        return state.model_copy(update={"recorded_headroom": self._store.headroom.get(account_id)})

    def unlimited_accounts(self) -> list[tuple[str, int]]:
        with self._guard:
            return sorted((a, s.account.lanes) for a, s in self._store.accounts.items() if s.account.is_unlimited)

    # -- decisions ------------------------------------------------------------------------------

    def get_decision(self, posting_id: str) -> Decision | None:
        with self._guard:
            self.calls["get_decision"] += 1
            return self._store.decisions.get(posting_id)

    def get_decisions(self, posting_ids: Iterable[str]) -> dict[str, Decision]:
        with self._guard:
            self.calls["get_decisions"] += 1
            return {p: self._store.decisions[p] for p in dict.fromkeys(posting_ids) if p in self._store.decisions}

    def record_posting(self, plan: PostingPlan, request_hash: str, message_id: str) -> Decision:
        records = records_of(plan, request_hash, message_id)
        before, self.before_transaction = self.before_transaction, None
        if before is not None:
            before()
        with self._guard:
            self.calls["record_posting"] += 1
            if self.fail_transactions:
                self.fail_transactions -= 1
                raise TransientPostingError("transaction cancelled: TransactionConflict")
            store = self._store
            decision = records.decisions[0]
            if decision.posting_id in store.decisions:
                raise PostingAlreadyDecided(store.decisions[decision.posting_id])
            refused = self._refusals(plan, records)
            if refused is not None:
                raise ConcurrentUpdate(f"moved since it was read: {', '.join(sorted(refused)) or 'a hold'}", refused)
            self._apply(plan, records)
            if self.fail_after_commit:
                self.fail_after_commit -= 1
                raise TransientPostingError("DynamoDB unreachable: ReadTimeoutError")
            return decision

    def _refusals(self, plan: PostingPlan, records: Records) -> dict[str, AccountState] | None:
        """The conditions the adapter asks DynamoDB to check; None when all of them hold."""
        store = self._store
        failed = any(member.posting_id in store.decisions for member in records.decisions[1:])
        for settlement in records.settlements:
            hold = store.decisions.get(settlement.hold_id)
            failed |= hold is None or hold.hold_state != HoldState.OPEN
        for mark in records.reversals:
            original = store.decisions.get(mark.original_id)
            failed |= original is None or (original.version or 0) != mark.expected_version
        found: dict[str, AccountState] = {}
        for change in plan.changes:
            if not self._holds(change, plan.decided_at):
                found[change.account_id] = self._stored(change.account_id)
        for entry in plan.entries:
            failed |= _line_key(entry) in store.lines
        return found if failed or found else None

    def _holds(self, change: AccountChange, decided_at: str) -> bool:
        state = self._store.accounts.get(change.account_id)
        if state is None:
            return False
        if state.last_recorded_at and not state.last_recorded_at < decided_at:
            return False
        if change.require_open and state.account.status != AccountStatus.OPEN:
            return False
        if change.min_headroom is not None and self._store.headroom[change.account_id] < change.min_headroom:
            return False
        after = state.model_copy(
            update={
                "balance": state.balance + change.posted,
                "pending_debits": state.pending_debits + change.pending_debits,
                "pending_credits": state.pending_credits + change.pending_credits,
            }
        )
        if not change.within_range(after):
            return False
        return change.pinned is None or change.pinned.last_recorded_at == state.last_recorded_at

    def _apply(self, plan: PostingPlan, records: Records) -> None:
        store = self._store
        for decision in records.decisions:
            store.decisions[decision.posting_id] = decision
        for settlement in records.settlements:
            hold = store.decisions[settlement.hold_id]
            store.decisions[hold.posting_id] = hold.model_copy(
                update={"hold_state": settlement.state, "settled_by": settlement.by}
            )
        for mark in records.reversals:
            original = store.decisions[mark.original_id]
            store.decisions[original.posting_id] = original.model_copy(
                update={
                    "reversed": mark.reversed,
                    "version": mark.expected_version + 1,
                    "reversed_by": [*(original.reversed_by or []), *mark.by],
                }
            )
        for change in plan.changes:
            state = store.accounts[change.account_id]
            store.accounts[change.account_id] = state.model_copy(
                update={
                    "balance": state.balance + change.posted,
                    "pending_debits": state.pending_debits + change.pending_debits,
                    "pending_credits": state.pending_credits + change.pending_credits,
                    "version": state.version + change.entries,
                    "last_recorded_at": change.last_recorded_at or plan.decided_at,
                }
            )
            store.headroom[change.account_id] += change.available
        for entry in plan.entries:
            store.lines[_line_key(entry)] = entry

    def record_rejection(self, decision: Decision) -> Decision:
        with self._guard:
            self.calls["record_rejection"] += 1
            if self.fail_rejections:
                self.fail_rejections -= 1
                raise TransientPostingError("DynamoDB: ThrottlingException")
            if decision.posting_id in self._store.decisions:
                raise PostingAlreadyDecided(self._store.decisions[decision.posting_id])
            self._store.decisions[decision.posting_id] = decision
            return decision

    # -- holds and checkpoints ------------------------------------------------------------------

    def expired_holds(self, now: str, limit: int = 500) -> list[tuple[str, str]]:
        with self._guard:
            found = [
                (d.posting_id, d.expires_at)
                for d in self._store.decisions.values()
                if d.kind == "hold" and d.hold_state == HoldState.OPEN and d.expires_at and d.expires_at <= now
            ]
        return sorted(found, key=lambda pair: pair[1])[:limit]

    def lane_since_checkpoint(self, account_id: str, lane: int, through: str) -> tuple[Checkpoint | None, Figures, int]:
        with self._guard:
            checkpoints = [
                c
                for (a, k, at), c in self._store.checkpoints.items()
                if a == account_id and k == lane and at <= through
            ]
            latest = max(checkpoints, key=lambda c: c.through, default=None)
            lines = [
                line
                for line in self.lines_of(account_id)
                if line.lane == lane
                and line.recorded_at <= through
                and (latest is None or line.recorded_at > latest.through)
            ]
            return latest, Figures.of(lines), len(lines)

    def write_checkpoint(self, checkpoint: Checkpoint) -> bool:
        key = (checkpoint.account_id, checkpoint.lane, checkpoint.through)
        with self._guard:
            if key in self._store.checkpoints:
                return False
            self._store.checkpoints[key] = checkpoint
            return True

    # -- for the books --------------------------------------------------------------------------

    def lines_of(self, account_id: str) -> list[Entry]:
        with self._guard:
            return statement_order(line for line in self._store.lines.values() if line.account_id == account_id)

    def everything(self) -> Iterator[AccountState | Entry | Checkpoint | Decision]:
        with self._guard:
            records: list[AccountState | Entry | Checkpoint | Decision] = [
                self._stored(a) for a in self._store.accounts
            ]
            records += list(self._store.lines.values())
            records += list(self._store.checkpoints.values())
            records += list(self._store.decisions.values())
        return iter(records)


class FakeBooks:
    """The operator reads of posting.adapters.ledger_books.LedgerBooks, over a FakeLedger."""

    def __init__(self, ledger: FakeLedger) -> None:
        self._ledger = ledger

    def get_account(self, account_id: str) -> AccountState | None:
        return self.get_accounts([account_id]).get(account_id)

    def get_accounts(self, account_ids: Iterable[str]) -> dict[str, AccountState]:
        found = self._ledger.accounts(account_ids)
        return {
            a: with_figures(s, self._lanes_total(s, LATEST)) if s.account.is_unlimited else s for a, s in found.items()
        }

    def _lanes_total(self, state: AccountState, moment: str) -> Figures:
        total = Figures()
        for lane in range(state.account.lanes):
            checkpoint, after, _ = self._ledger.lane_since_checkpoint(state.account_id, lane, moment)
            total += lane_figures(checkpoint, []) + after
        return total

    def balance_as_of(self, account_id: str, moment: str) -> int:
        return self.figures_as_of(account_id, moment).posted

    def figures_as_of(self, account_id: str, moment: str) -> Figures:
        return Figures.of(line for line in self._ledger.lines_of(account_id) if line.recorded_at <= moment)

    def figures_by_value_date(self, account_id: str, moment: str) -> Figures:
        return figures_by_value_date(self._ledger.lines_of(account_id), moment)

    def statement(self, account_id: str) -> tuple[AccountState | None, list[Entry]]:
        state = self.get_account(account_id)
        if state is None:
            return None, []
        return state, with_running_balance(self._ledger.lines_of(account_id), 0)

    def find_by_ref(self, external_ref: str) -> list[Decision]:
        found = [r for r in self._ledger.everything() if isinstance(r, Decision) and r.external_ref == external_ref]
        return sorted(found, key=lambda decision: decision.decided_at)

    def scan(self) -> Iterator[AccountState | Entry | Checkpoint | Decision]:
        return self._ledger.everything()


def _line_key(entry: Entry) -> tuple[str, int | None, str, str, int]:
    return (entry.account_id, entry.lane, entry.recorded_at, entry.posting_id, entry.leg)
