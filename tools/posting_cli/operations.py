"""Operator actions on a pipeline (local or deployed): open accounts, submit, read, reconcile, DLQ.

They go through the same adapters the Lambda functions use, so what they read is what was written.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from posting.adapters.dead_letters import FAILURE_ERROR, FAILURE_MESSAGE, SOURCE_MESSAGE_ID
from posting.adapters.ledger_table import LedgerTable, Shard
from posting.domain.ledger import Entry, HoldState, reversal_key
from posting.domain.model import Account, AccountState, Side, utc_timestamp
from posting.domain.outcomes import AccountAlreadyExists, Decision, Status
from posting_cli.target import Target

SQS_BATCH = 10  # an SQS limit per SendMessageBatch / DeleteMessageBatch


def ledger(target: Target) -> LedgerTable:
    return LedgerTable(target.client("dynamodb"), target.ledger_table_name)


class AccountTermsDiffer(Exception):
    """Accounts asked to be opened already exist with other terms; the message names each difference."""


def open_accounts(target: Target, accounts: Iterable[Account]) -> tuple[int, list[str]]:
    """Open each account; returns how many were opened and the ids that were already open as asked.

    Reopening an account with the terms it already has is a no-op, so a request file can be run
    again on surviving books. One that exists with other terms (currency, normal balance, overdraft
    limit, status...) raises AccountTermsDiffer before anything is opened: the books are never
    silently different from what the caller described.
    """
    from datetime import UTC, datetime

    table = ledger(target)
    wanted = list(accounts)
    existing_states = table.get_accounts(account.account_id for account in wanted)
    differences = [
        _terms_difference(account, existing_states[account.account_id].account)
        for account in wanted
        if account.account_id in existing_states and existing_states[account.account_id].account != account
    ]
    if differences:
        raise AccountTermsDiffer("already open with other terms: " + "; ".join(differences))
    opened, existing = 0, []
    for account in wanted:
        if account.account_id in existing_states:
            existing.append(account.account_id)
            continue
        try:
            table.open_account(account, utc_timestamp(datetime.now(UTC)))
            opened += 1
        except AccountAlreadyExists:  # opened meanwhile by someone else: fine if on the same terms
            state = table.get_account(account.account_id)
            if state is not None and state.account != account:
                raise AccountTermsDiffer(
                    "already open with other terms: " + _terms_difference(account, state.account)
                ) from None
            existing.append(account.account_id)
    return opened, existing


def _terms_difference(asked: Account, found: Account) -> str:
    asked_terms, found_terms = asked.model_dump(mode="json"), found.model_dump(mode="json")
    fields = [name for name in asked_terms if asked_terms[name] != found_terms.get(name)]
    return (
        f"{asked.account_id} ("
        + ", ".join(f"{name}: {found_terms.get(name)!r} in the ledger, {asked_terms[name]!r} asked" for name in fields)
        + ")"
    )


@dataclass(frozen=True)
class Submitted:
    """One body handed to the queue: its message id, or why the queue refused it."""

    message_id: str | None
    error: str | None
    sent_ms: int


def submit(target: Target, bodies: Iterable[str]) -> list[Submitted]:
    """Send each body as one message, exactly as given, 10 per call; one answer per body, in order.

    The queue refuses some bodies outright (empty, larger than its MaximumMessageSize, characters
    SQS does not carry): those come back with the queue's error instead of a message id.
    """
    sqs = target.client("sqs")
    answers: list[Submitted] = []
    batch: list[str] = []

    def send_one(body: str) -> Submitted:
        now = _now_ms()
        if not body:
            return Submitted(None, "empty message: SQS cannot carry an empty body", now)
        try:
            return Submitted(sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)["MessageId"], None, now)
        except ClientError as error:
            refusal = error.response.get("Error", {})
            return Submitted(None, _refused(refusal.get("Code"), refusal.get("Message")), now)

    def flush() -> None:
        now = _now_ms()
        sendable = [index for index, body in enumerate(batch) if body]
        answer: dict[int, Submitted] = {}
        try:
            response = (
                sqs.send_message_batch(
                    QueueUrl=target.queue_url,
                    Entries=[{"Id": str(index), "MessageBody": batch[index]} for index in sendable],
                )
                if sendable
                else {"Successful": [], "Failed": []}
            )
        except ClientError:
            # One oversized body can sink the whole batch request: send them one by one instead.
            answers.extend(send_one(body) for body in batch)
            batch.clear()
            return
        for entry in response.get("Successful", []):
            answer[int(entry["Id"])] = Submitted(entry["MessageId"], None, now)
        for entry in response.get("Failed", []):
            answer[int(entry["Id"])] = Submitted(None, _refused(entry.get("Code"), entry.get("Message")), now)
        answers.extend(answer.get(index) or send_one(body) for index, body in enumerate(batch))
        batch.clear()

    for body in bodies:
        batch.append(body)
        if len(batch) == SQS_BATCH:
            flush()
    if batch:
        flush()
    return answers


def _refused(code: str | None, message: str | None) -> str:
    """The queue's own reason: its error code, then its message (SQS's messages name no body content)."""
    return f"the queue refused it: {code}" + (f": {message}" if message else "")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- reading the books ------------------------------------------------------------------------------


def balance(target: Target, account_id: str) -> AccountState | None:
    return ledger(target).get_account(account_id)


def statement(target: Target, account_id: str) -> tuple[AccountState | None, list[Entry]]:
    return ledger(target).statement(account_id)


def balance_as_of(target: Target, account_id: str, moment: str) -> int:
    return ledger(target).balance_as_of(account_id, moment)


def statement_page(
    target: Target,
    account_id: str,
    *,
    since: str | None,
    until: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Entry], str | None]:
    return ledger(target).statement_page(account_id, since=since, until=until, limit=limit, cursor=cursor)


@dataclass
class Reconciliation:
    accounts: int = 0
    entries: int = 0
    postings_posted: int = 0
    postings_rejected: int = 0
    trial_balance: dict[str, int] = field(default_factory=dict)  # currency -> debits - credits
    shards: int = 0
    holds: dict[str, int] = field(default_factory=dict)  # hold state -> count
    reversals: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


SETTLED_BY = {HoldState.CAPTURED: "capture", HoldState.VOIDED: "void", HoldState.EXPIRED: "expiry"}


def reconcile(target: Target, max_problems: int = 50) -> Reconciliation:
    """Check the books of a pipeline's ledger (see reconcile_table)."""
    return reconcile_table(ledger(target), max_problems)


def reconcile_table(table: LedgerTable, max_problems: int = 50) -> Reconciliation:
    """Check the books independent ways, from one scan of the table.

    1. Trial balance: per currency, posted debits equal credits across all accounts.
    2. Every account's posted balance equals the sum of its entries (a hot account's: the sum of its
       shards), its version their count, and each entry's balance_after the running sum.
    3. Every posted balance equals a recomputation from the accepted requests' posted legs alone.
    4. Every account's pending debits and credits equal the sums over the holds still open.
    5. Every hold is in exactly one state, and a settled one names the one accepted request that
       settled it (a capture, void or expiry of that hold); no hold is settled twice.
    6. Every original's reversed amounts equal the sums of its accepted reversals, within the original.
    """
    report = Reconciliation()
    stored: dict[str, AccountState] = {}
    shards: dict[str, list[Shard]] = defaultdict(list)
    entries: dict[str, list[Entry]] = defaultdict(list)
    decisions: dict[str, Decision] = {}
    for record in table.scan():
        if isinstance(record, AccountState):
            stored[record.account_id] = record
        elif isinstance(record, Shard):
            shards[record.account_id].append(record)
        elif isinstance(record, Entry):
            entries[record.account_id].append(record)
        else:
            decisions[record.posting_id] = record
    accounts = {a: _with_shards(state, shards.get(a, [])) for a, state in stored.items()}
    posted = [d for d in decisions.values() if d.status == Status.POSTED]
    report.accounts = len(accounts)
    report.shards = sum(len(s) for s in shards.values())
    report.entries = sum(len(lines) for lines in entries.values())
    report.postings_posted = len(posted)
    report.postings_rejected = len(decisions) - len(posted)
    report.trial_balance = _trial_balance(accounts.values())
    problems = [f"trial balance in {currency} is off by {net}" for currency, net in report.trial_balance.items() if net]
    recomputed, unknown = _recompute(posted, accounts)
    problems += unknown
    for account_id, state in sorted(accounts.items()):
        problems += _check_account(state, entries.get(account_id, []), recomputed.get(account_id, 0))
        problems += _check_shards(state, shards.get(account_id, []))
    problems += _check_holds(decisions, accounts, report)
    problems += _check_reversals(decisions, report)
    report.problems = problems[:max_problems]
    return report


def _with_shards(state: AccountState, shards: list[Shard]) -> AccountState:
    if not state.account.is_hot:
        return state
    return state.model_copy(
        update={
            "balance": state.balance + sum(s.balance for s in shards),
            "pending_debits": state.pending_debits + sum(s.pending_debits for s in shards),
            "pending_credits": state.pending_credits + sum(s.pending_credits for s in shards),
            "version": state.version + sum(s.entries for s in shards),
        }
    )


def _signed(amount: int, side: str, state: AccountState) -> int:
    return amount if side == state.account.normal_balance else -amount


def _trial_balance(accounts: Iterable[AccountState]) -> dict[str, int]:
    """Per currency, debits minus credits over every account: zero when the books balance."""
    trial: dict[str, int] = defaultdict(int)
    for state in accounts:
        trial[state.account.currency] += state.balance if state.account.normal_balance == Side.DEBIT else -state.balance
    return dict(sorted(trial.items()))


def posted_legs(decision: Decision) -> list[dict[str, Any]]:
    """The legs an accepted request posted: a posting's own, a capture's or a reversal's; a hold,
    void or expiry posts nothing."""
    if decision.status != Status.POSTED or decision.kind in ("hold", "void", "expiry"):
        return []
    if decision.posted_legs is not None:
        return decision.posted_legs
    return list((decision.request or {}).get("legs", []))


def _recompute(posted: list[Decision], accounts: dict[str, AccountState]) -> tuple[dict[str, int], list[str]]:
    """Every balance again, from the posted legs of the accepted requests only."""
    recomputed: dict[str, int] = defaultdict(int)
    problems = []
    for decision in posted:
        for leg in posted_legs(decision):
            state = accounts.get(leg["account_id"])
            if state is None:
                problems.append(f"posting {decision.posting_id} moved money on unknown account {leg['account_id']}")
            else:
                recomputed[leg["account_id"]] += _signed(leg["amount"], leg["side"], state)
    return recomputed, problems


def _check_account(state: AccountState, entries: list[Entry], recomputed: int) -> list[str]:
    account_id = state.account_id
    problems = []
    running = 0
    ordered = sorted(entries, key=lambda e: (e.recorded_at, e.sequence, e.posting_id, e.leg))
    for expected_sequence, entry in enumerate(ordered, start=1):
        running += _signed(entry.amount, entry.side, state)
        if state.account.is_hot:
            if entry.signed_amount != _signed(entry.amount, entry.side, state):
                problems.append(f"{account_id}: entry of {entry.posting_id} has the wrong signed amount")
                break
        elif entry.sequence != expected_sequence or entry.balance_after != running:
            problems.append(
                f"{account_id}: entry {entry.sequence} says {entry.balance_after}, running sum is {running}"
            )
            break
    else:
        if running != state.balance:
            problems.append(f"{account_id}: balance {state.balance} but its entries sum to {running}")
    if len(entries) != state.version:
        problems.append(f"{account_id}: version {state.version} but {len(entries)} entries")
    if recomputed != state.balance:
        problems.append(f"{account_id}: balance {state.balance} but accepted postings give {recomputed}")
    return problems


def _check_shards(state: AccountState, shards: list[Shard]) -> list[str]:
    account = state.account
    if not account.is_hot:
        return [f"{account.account_id}: unsharded but has {len(shards)} shard(s)"] if shards else []
    problems = []
    if sorted(s.shard for s in shards) != list(range(account.balance_shards)):
        problems.append(
            f"{account.account_id}: shards {sorted(s.shard for s in shards)}, not 0..{account.balance_shards - 1}"
        )
    for shard in shards:
        if shard.status != account.status:
            problems.append(
                f"{account.account_id}: shard {shard.shard} is {shard.status}, the account {account.status}"
            )
    return problems


def _check_holds(
    decisions: dict[str, Decision], accounts: dict[str, AccountState], report: Reconciliation
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


def _check_reversals(decisions: dict[str, Decision], report: Reconciliation) -> list[str]:
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


# -- dead letters -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    source_message_id: str
    body: str
    error: str
    message: str
    receipt_handle: str


def dead_letters(target: Target, visibility_seconds: int = 30) -> list[DeadLetter]:
    """Every message in the DLQ, with its failure reason; they are left in the DLQ, visible again."""
    sqs = target.client("sqs")
    seen: dict[str, DeadLetter] = {}
    for message in _drain(sqs, target.dead_letter_queue_url, visibility_seconds):
        attributes = message.get("MessageAttributes", {})

        def attribute(name: str, default: str, attributes: dict[str, Any] = attributes) -> str:
            return str(attributes.get(name, {}).get("StringValue", default))

        seen[message["MessageId"]] = DeadLetter(
            message_id=message["MessageId"],
            source_message_id=attribute(SOURCE_MESSAGE_ID, message["MessageId"]),
            body=message["Body"],
            error=attribute(FAILURE_ERROR, "MaxReceiveCountExceeded"),
            message=attribute(FAILURE_MESSAGE, "moved by the queue's redrive policy; no reason was recorded"),
            receipt_handle=message["ReceiptHandle"],
        )
    letters = list(seen.values())
    for start in range(0, len(letters), SQS_BATCH):
        chunk = letters[start : start + SQS_BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=target.dead_letter_queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(chunk)
            ],
        )
    return letters


def redrive(target: Target) -> int:
    """Move every DLQ message back to the posting queue (body unchanged); returns how many moved.

    Safe to repeat: posting is idempotent by posting_id, so a request that was in fact decided is
    answered as a duplicate.
    """
    sqs = target.client("sqs")
    moved = 0
    for message in _drain(sqs, target.dead_letter_queue_url, visibility_seconds=60):
        sqs.send_message(QueueUrl=target.queue_url, MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=target.dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
        moved += 1
    return moved


def _drain(sqs: Any, queue_url: str, visibility_seconds: int) -> Iterator[dict[str, Any]]:
    """Receive until the queue has nothing visible left (messages stay in flight meanwhile)."""
    while True:
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=SQS_BATCH,
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility_seconds,
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        yield from messages


def parse_accounts(text: str) -> list[Account]:
    """A JSON array of account objects, as in the contract."""
    return TypeAdapter(list[Account]).validate_json(text)
