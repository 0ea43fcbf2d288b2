"""Post step: record every item's decision in the ledger, exactly once per posting_id.

Valid requests are planned and applied in one transaction; a rejection that depends on the ledger's
state (an unknown account, insufficient funds, ...) is recorded so the id stays failed. Requests the
validate step refused for their content alone pass through untouched: they consume no posting_id.

An item's first attempt is planned from a fresh read of its accounts and pins them: it commits only
if they have not moved since, so its decision knows every balance it leaves. If one has moved (a busy
account), the item is planned again at once from what DynamoDB returned, without a pin: the write
adds to the account and DynamoDB itself checks the limit, so a busy account is never serialised by a
read-to-commit window. Transaction conflicts and throttling are retried here with jittered backoff;
what still cannot be decided becomes the item's `failure` and goes back to the queue, never a
business rejection.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from posting.domain import planning
from posting.domain.model import AccountState, utc_timestamp
from posting.domain.outcomes import (
    ConcurrentUpdate,
    Decision,
    Outcome,
    PostingAlreadyDecided,
    PostingRejected,
    Reason,
    Status,
    TransientPostingError,
)
from posting.domain.periods import Period
from posting.domain.planning import accounts_of, member_ids, must_read, names_value_date, references_of
from posting.domain.requests import Request, parse_request
from posting.steps.items import Batch, BatchItem, Failure
from posting.steps.ports import Ledger
from posting.steps.sequencing import decide_in_order

# Contention on a busy account is normal (several batches post to it at once): retry with full
# jitter, up to about 3 s in all, well inside the function's timeout. Past that the record goes back
# to the queue, which returns it in seconds (the emit step shortens its visibility timeout).
MAX_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 0.01
BACKOFF_CAP_SECONDS = 0.5
# Re-plans within one attempt on what a refused write returned (each one learns the account's state).
MAX_REPLANS = 4
# How far ahead of this host's clock an account's last line may be recorded before a decision on it
# waits instead of moving its own time forward (a host with a fast clock must not drag every later
# decision on the account with it).
CLOCK_AHEAD_LIMIT = timedelta(seconds=2)
# An account's status as read for a batch serves its items for at most this long (an account without
# a limit has no item in the transaction: its status is checked on this read alone).
READ_MAX_AGE_SECONDS = 1.0


def now() -> str:
    return utc_timestamp(datetime.now(UTC))


def decision_time(accounts: Mapping[str, AccountState], clock: datetime | None = None) -> datetime:
    """Now, to the millisecond, but after the last line recorded on every account with a limit it
    touches, so that an account's lines sort in the order its balance moved (the write also checks
    it). Raises TransientPostingError if that is further ahead of this host's clock than
    CLOCK_AHEAD_LIMIT."""
    moment = clock or datetime.now(UTC)
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    latest = moment
    for state in accounts.values():
        if state.last_recorded_at and not state.account.is_unlimited:
            last = datetime.fromisoformat(state.last_recorded_at.replace("Z", "+00:00"))
            latest = max(latest, last + timedelta(milliseconds=1))
    if latest - moment > CLOCK_AHEAD_LIMIT:
        raise TransientPostingError(
            f"an account's last line is recorded {(latest - moment).total_seconds():.3f} s ahead of this host's clock"
        )
    return latest


def post_batch(
    batch: Batch,
    ledger: Ledger,
    workers: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    deadline: float | None = None,
) -> Batch:
    """Decide every item of the batch; items come back in order, each with an outcome or a failure.

    Items of one message group (a FIFO queue's) are decided one after another in the order they came,
    and the first that is not decided holds back the rest of its group (posting.steps.sequencing).
    Other items run concurrently, but two items that share an account with a limit, a posting_id or the
    hold or original they act on never run at the same time inside this invocation: they would only
    make each other retry. Accounts without a limit take no lock: no two requests share an item on
    them. `deadline` (a time.monotonic() value) is when the invocation must stop starting work: items
    it leaves undecided go back to the queue instead of the whole batch timing out.
    """
    locks = _KeyLocks()
    requests = [_request_of(item) for item in batch.items]
    prefetched = _BatchRead.of(
        ledger, [r for r, item in zip(requests, batch.items, strict=True) if _reads_first(item, r)]
    )
    # The period close, once for the batch, if a request names a value date of its own.
    period = ledger.read_period() if any(r is not None and names_value_date(r) for r in requests) else None

    def decide(pair: tuple[BatchItem, Request | None]) -> BatchItem:
        item, request = pair
        try:
            accounts = set(accounts_of(request)) if request else set()
            keys = {f"posting:{item.posting_id}"} | {f"account:{a}" for a in accounts if not prefetched.unlimited(a)}
            if request:
                keys |= {f"posting:{posting_id}" for posting_id in references_of(request) + member_ids(request)}
            with locks.holding(keys):
                if deadline is not None and time.monotonic() > deadline:
                    return _failed(item, TransientPostingError("not attempted: the invocation ran out of time"))
                read = prefetched.take(accounts) if request and _reads_first(item, request) else None
                try:
                    return post_item(item, ledger, sleep, request, deadline, accounts=read, period=period)
                finally:
                    # Whatever it wrote, the batch's read of it is stale now; a capture's, void's or
                    # reversal's accounts are its hold's or original's, which the batch cannot know.
                    if request is not None and item.outcome is None:
                        prefetched.spend(accounts, every=bool(references_of(request)))
        except Exception as error:  # noqa: BLE001 - one item's failure is that item's, never the batch's
            return _failed(item, error)

    pairs = list(zip(batch.items, requests, strict=True))
    return Batch(items=decide_in_order(batch.items, lambda position: decide(pairs[position]), workers))


def _reads_first(item: BatchItem, request: Request | None) -> bool:
    """Whether the item's first attempt can plan on the batch's read: an undecided first delivery of
    a request whose accounts are its own legs (a capture, void or reversal reads its hold or original
    first, and a redelivery its decision)."""
    return request is not None and item.outcome is None and item.receive_count <= 1 and not references_of(request)


class _BatchRead:
    """The accounts of a whole batch, read in one BatchGetItem before any item is decided.

    An account with a limit serves the first item that takes it, and only its first attempt: once
    that item has written, the read is stale, so later items (which the batch's key locks run one
    after another) read it again. An item that wrote an account without taking its read (it read
    for itself) spends that read all the same. An account without a limit serves every item: planning takes its
    terms and status only, which a posting never changes. Either way the read serves for at most
    READ_MAX_AGE_SECONDS.
    """

    def __init__(self, states: Mapping[str, AccountState], read_at: float) -> None:
        self._states = dict(states)
        self._read_at = read_at
        self._unlimited = {a for a, state in states.items() if state.account.is_unlimited}
        self._guard = threading.Lock()

    @classmethod
    def of(cls, ledger: Ledger, requests: list[Request | None]) -> _BatchRead:
        ids = list(dict.fromkeys(a for request in requests if request for a in accounts_of(request)))
        if len(requests) < 2 or not ids:
            return cls({}, 0.0)  # one item reads its own accounts: same calls, no staleness
        try:
            return cls(ledger.read_accounts(ids), time.monotonic())
        except Exception:  # noqa: BLE001 - an optimisation only: each item then reads its own accounts
            return cls({}, 0.0)

    def spend(self, account_ids: set[str], *, every: bool = False) -> None:
        """Drop the read of these accounts with a limit (with `every`, of all of them): an item that
        did not take it may have written them since."""
        with self._guard:
            for account_id in list(self._states) if every else account_ids:
                state = self._states.get(account_id)
                if state is not None and not state.account.is_unlimited:
                    del self._states[account_id]

    def unlimited(self, account_id: str) -> bool:
        return account_id in self._unlimited

    def take(self, account_ids: set[str]) -> dict[str, AccountState] | None:
        """The batch's read of these accounts, if it holds all of them, fresh and not taken before."""
        with self._guard:
            if time.monotonic() - self._read_at > READ_MAX_AGE_SECONDS:
                return None
            taken = {a: self._states[a] for a in account_ids if a in self._states}
            if not taken or len(taken) != len(account_ids):
                return None
            for account_id, state in taken.items():
                if not state.account.is_unlimited:
                    del self._states[account_id]
        return taken


def post_item(
    item: BatchItem,
    ledger: Ledger,
    sleep: Callable[[float], None] = time.sleep,
    request: Request | None = None,
    deadline: float | None = None,
    *,
    accounts: Mapping[str, AccountState] | None = None,
    period: Period | None = None,
) -> BatchItem:
    """Record one item's decision. Never raises for a single item: failures travel with the item.

    `request` is the item's body already parsed, when the caller has it; `accounts` the states of its
    accounts read by the caller, for the first attempt only (later attempts read them again);
    `period` the period close read by the caller (else read here, when the request needs it).
    Contention and transient errors are retried until MAX_ATTEMPTS or `deadline`; before giving up,
    the recorded decision is read, since another delivery of the same request may have decided it.
    """
    if item.outcome is not None:
        return item  # refused by validation for its content alone: nothing to record, no id consumed
    try:
        if request is None:
            request = parse_request(item.body)
        if item.receive_count > 1 and (recorded := _recorded_answer(item, ledger, request)):
            # A redelivery is often already decided (a timeout or crash after the commit).
            return item.model_copy(update={"outcome": recorded})
        last_error: Exception | None = None
        for attempt in range(MAX_ATTEMPTS):
            try:
                read = accounts if attempt == 0 else None
                outcome = _decide(item, request, ledger, read, pin=attempt == 0 or must_read(request), period=period)
                return item.model_copy(update={"outcome": outcome})
            except (ConcurrentUpdate, TransientPostingError) as error:
                last_error = error
            pause = random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt))
            if deadline is not None and time.monotonic() + pause > deadline:
                break
            sleep(pause)
        if recorded := _recorded_answer(item, ledger, request):
            return item.model_copy(update={"outcome": recorded})
        raise TransientPostingError(
            f"posting {item.posting_id} not decided after {attempt + 1} attempt(s): "
            f"{type(last_error).__name__}: {last_error}"
        )
    except Exception as error:  # noqa: BLE001 - one bad item must not sink the batch; it retries via the queue
        return _failed(item, error)


def _failed(item: BatchItem, error: Exception) -> BatchItem:
    """Undecided: no outcome (not even a validation rejection that could not be recorded), a failure."""
    return item.model_copy(update={"outcome": None, "failure": Failure.of(error)})


def _recorded_answer(item: BatchItem, ledger: Ledger, request: Request) -> Outcome | None:
    decision = ledger.get_decision(item.posting_id) if item.posting_id else None
    return _answer(decision, item, request) if decision else None


def _decide(
    item: BatchItem,
    request: Request,
    ledger: Ledger,
    read: Mapping[str, AccountState] | None = None,
    *,
    pin: bool = True,
    period: Period | None = None,
) -> Outcome:
    """One attempt: plan, write, and on a refused condition plan again from what DynamoDB found.

    With `pin`, accounts with a limit are planned from their figures as read; without, from their
    terms only (DynamoDB checks the rest). After a refusal the accounts that moved are judged on
    what DynamoDB returned: if the request must be refused on that, it is; otherwise it goes again
    at once, without a pin.
    """
    assert item.posting_id is not None and item.request_hash is not None
    wanted = references_of(request) + member_ids(request)
    decided = ledger.get_decisions(wanted) if wanted else {}
    if taken := [member for member in member_ids(request) if member in decided]:
        detail = f"member posting_id {taken[0]} already has a decision of its own"
        return _record_rejection(item, ledger, Reason.CHAIN_MEMBER_DECIDED, detail, request)
    references = {reference: decided.get(reference) for reference in references_of(request)}
    states = dict(read) if read is not None else ledger.read_accounts(accounts_of(request, references))
    # Only a request that names its own value date can fall in a closed period.
    if period is None and names_value_date(request):
        period = ledger.read_period()
    if not pin:
        states = _blind(states, states)
    for _ in range(MAX_REPLANS):
        try:
            plan = planning.plan(request, states, references, decision_time(states), period)
        except PostingRejected as rejection:
            return _record_rejection(item, ledger, rejection.reason, rejection.detail, request)
        try:
            decision = ledger.record_posting(plan, item.request_hash, item.message_id)
        except PostingAlreadyDecided as already:
            return _answer(already.decision, item, request)
        except ConcurrentUpdate as moved:
            if not moved.accounts:
                raise  # a hold, an original or a member's id moved: read them again
            # Judged on what DynamoDB found alone: the other accounts' figures are not looked at.
            found = _blind(states, states) | moved.accounts
            try:
                planning.plan(request, found, references, decision_time(found), period)
            except PostingRejected as rejection:
                return _record_rejection(item, ledger, rejection.reason, rejection.detail, request)
            if must_read(request):
                raise  # decided on figures read for it alone: read them all again
            states = _blind(found, moved.accounts)
            continue
        return _answer(decision, item, request)
    raise ConcurrentUpdate(f"posting {item.posting_id}: its accounts kept moving")


def _blind(states: Mapping[str, AccountState], accounts: Mapping[str, AccountState]) -> dict[str, AccountState]:
    """The states, with `accounts` (those with a limit) known by their terms only: no pin, no check
    of their figures in planning; DynamoDB checks them when it commits."""
    return {
        account_id: state.model_copy(update={"known": False})
        if account_id in accounts and not state.account.is_unlimited
        else state
        for account_id, state in states.items()
    }


def _record_rejection(
    item: BatchItem, ledger: Ledger, reason: Reason | None, detail: str | None, request: Request
) -> Outcome:
    assert item.posting_id is not None and item.request_hash is not None
    decision = Decision(
        posting_id=item.posting_id,
        status=Status.REJECTED,
        reason=reason,
        detail=detail,
        request_hash=item.request_hash,
        decided_at=now(),
        message_id=item.message_id,
        request=request.model_dump(mode="json", exclude_none=True),
        external_ref=request.external_ref,
    )
    try:
        return _answer(ledger.record_rejection(decision), item, request)
    except PostingAlreadyDecided as already:
        return _answer(already.decision, item, request)


def _answer(decision: Decision, item: BatchItem, request: Request) -> Outcome:
    # The message that made the decision gets the decision itself, even when it is redelivered
    # (say, after a crash before the pipe deleted it); any other message is a DUPLICATE.
    assert item.request_hash is not None
    created = decision.message_id == item.message_id
    return Outcome.answering(decision, item.request_hash, created=created, request=request)


def _request_of(item: BatchItem) -> Request | None:
    """The request an undecided item carries (validated upstream); None for an item already rejected."""
    if item.outcome is not None:
        return None
    try:
        return parse_request(item.body)
    except (ValidationError, ValueError, TypeError):
        return None  # cannot happen after the validate step; post_item reports it as the item's failure


class _KeyLocks:
    """Per-key locks, always taken in sorted order so two items can never deadlock."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def holding(self, keys: set[str]) -> Iterator[None]:
        with self._guard:
            locks = [self._locks.setdefault(key, threading.Lock()) for key in sorted(keys)]
        with ExitStack() as stack:
            for lock in locks:
                stack.enter_context(lock)
            yield
