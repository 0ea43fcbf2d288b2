"""The post step on a FIFO queue's batches, on the in-memory fake ledger: the records of one message
group are decided one after another in the order they came, the first that is not decided holds back
the rest of its group (never decided out of order), and other groups go on."""

from __future__ import annotations

import threading
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from posting.domain.outcomes import TransientPostingError
from posting.steps.items import BatchItem, Failure
from posting.steps.post import post_batch
from posting.steps.sequencing import HELD_BACK, decide_in_order, lanes
from posting.steps.validate import validate_batch, validate_record
from tests.builders import account, leg, request, sqs_record
from tests.fake_ledger import FakeLedger
from tests.post_helpers import FUNDING, assert_books_balance, balances, fund, no_sleep, open_accounts, transfer

BANK = "bank"


class RecordingLedger(FakeLedger):
    """The fake ledger, recording the posting_id of every write it is asked for and of every write it
    commits, in order; `slow` ids take a while to commit, `failing` ids always fail as a throttled
    transaction would."""

    def __init__(self, slow: frozenset[str] = frozenset(), failing: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.asked: list[str] = []
        self.committed: list[str] = []
        self.slow, self.failing = slow, failing
        self._asked_guard = threading.Lock()

    def record_posting(self, plan: Any, request_hash: str, message_id: str) -> Any:
        posting_id = plan.request.posting_id
        with self._asked_guard:
            self.asked.append(posting_id)
        if posting_id in self.failing:
            raise TransientPostingError("DynamoDB: ThrottlingException (injected)")
        if posting_id in self.slow:
            time.sleep(0.05)
        decision = super().record_posting(plan, request_hash, message_id)
        with self._asked_guard:
            self.committed.append(posting_id)
        return decision


def a_ledger(**kwargs: Any) -> RecordingLedger:
    """Alice holds 5000 EUR; the merchant nothing; neither may overdraw. The bank has no limit."""
    ledger = RecordingLedger(**kwargs)
    open_accounts(
        ledger,
        account(FUNDING, overdraft_limit=None),
        account(BANK, overdraft_limit=None),
        account("acc-alice"),
        account("acc-merchant"),
        account("acc-bob"),
        account("acc-carol"),
    )
    fund(ledger, "acc-alice", 5000)
    ledger.asked.clear()
    ledger.committed.clear()
    return ledger


def hold_capture_payout(prefix: str) -> list[dict[str, Any]]:
    """A card payment held, then captured, then paid out to the merchant's bank: each needs the one before."""
    return [
        request(f"{prefix}-hold", leg("acc-alice", "debit", 1000), leg("acc-merchant", "credit", 1000), kind="hold"),
        {"kind": "capture", "posting_id": f"{prefix}-capture", "hold_id": f"{prefix}-hold"},
        transfer(f"{prefix}-payout", "acc-merchant", BANK, 1000),
    ]


def decide(ledger: FakeLedger, records: list[dict[str, Any]], **kwargs: Any) -> list[BatchItem]:
    return post_batch(validate_batch(records), ledger, sleep=no_sleep, **kwargs).items


def statuses(items: list[BatchItem]) -> list[tuple[str, str | None]]:
    return [
        (str(item.outcome.status), item.outcome.reason and str(item.outcome.reason))
        if item.outcome
        else ("UNDECIDED", item.failure.error if item.failure else None)
        for item in items
    ]


def test_a_hold_its_capture_and_a_payout_funded_by_it_in_one_group_are_decided_in_order():
    ledger = a_ledger()

    items = decide(ledger, [sqs_record(body, group_id="acc-alice") for body in hold_capture_payout("p1")])

    assert statuses(items) == [("POSTED", None)] * 3
    assert ledger.committed == ["p1-hold", "p1-capture", "p1-payout"]
    assert balances(ledger, "acc-alice", "acc-merchant") == {"acc-alice": 4000, "acc-merchant": 0}
    assert_books_balance(ledger)


def test_a_later_record_sees_what_every_earlier_one_wrote_not_the_batchs_first_read():
    # The batch reads alice and the merchant before deciding anything. The top-up consumes that read
    # of alice; the hold then reads both again and the capture (whose accounts only its hold names)
    # writes the merchant: the payout must see the merchant as the capture left it.
    ledger = a_ledger()
    top_up = transfer("top-up", FUNDING, "acc-alice", 500)

    items = decide(ledger, [sqs_record(body, group_id="g") for body in [top_up, *hold_capture_payout("p2")]])

    assert statuses(items) == [("POSTED", None)] * 4
    assert balances(ledger, "acc-alice", "acc-merchant") == {"acc-alice": 4500, "acc-merchant": 0}
    assert_books_balance(ledger)


def test_a_group_is_decided_in_its_order_even_when_its_first_record_is_the_slow_one():
    # Two transfers on accounts they do not share: on a standard queue the fast one commits first.
    first, second = transfer("t-1", "acc-alice", "acc-bob", 10), transfer("t-2", FUNDING, "acc-carol", 10)

    unordered = a_ledger(slow=frozenset({"t-1"}))
    decide(unordered, [sqs_record(first), sqs_record(second)])
    ordered = a_ledger(slow=frozenset({"t-1"}))
    decide(ordered, [sqs_record(first, group_id="g"), sqs_record(second, group_id="g")])

    assert unordered.committed == ["t-2", "t-1"]
    assert ordered.committed == ["t-1", "t-2"]


def test_an_undecided_record_holds_back_the_rest_of_its_group_while_another_group_goes_on():
    ledger = a_ledger(failing=frozenset({"a-1"}))
    records = [
        sqs_record(transfer("a-1", "acc-alice", "acc-bob", 10), group_id="A"),
        sqs_record(transfer("b-1", FUNDING, "acc-carol", 10), group_id="B"),
        sqs_record(transfer("a-2", "acc-alice", "acc-bob", 20), group_id="A"),
        sqs_record(transfer("b-2", "acc-carol", "acc-bob", 5), group_id="B"),
        sqs_record(transfer("a-3", FUNDING, "acc-alice", 30), group_id="A"),
    ]

    items = decide(ledger, records)

    assert statuses(items) == [
        ("UNDECIDED", "TransientPostingError"),
        ("POSTED", None),
        ("UNDECIDED", HELD_BACK),
        ("POSTED", None),
        ("UNDECIDED", HELD_BACK),
    ]
    assert {"a-2", "a-3"}.isdisjoint(ledger.asked)  # never attempted, so never decided out of order
    assert ledger.get_decision("a-2") is None and ledger.get_decision("a-3") is None
    assert items[2].failure.message == (
        f"not attempted: message {records[0]['messageId']}, before it in its message group, was not decided "
        "(TransientPostingError)"
    )
    assert balances(ledger, "acc-bob", "acc-carol") == {"acc-bob": 5, "acc-carol": 5}


def test_a_rejection_is_a_decision_and_holds_nothing_back():
    ledger = a_ledger()
    records = [
        sqs_record(transfer("r-1", "acc-bob", "acc-carol", 10), group_id="G"),  # bob has nothing
        sqs_record('{"posting_id": "r-2", "legs": [', group_id="G"),  # refused by the validate step
        sqs_record(transfer("r-3", "acc-alice", "acc-bob", 10), group_id="G"),
        sqs_record(transfer("r-4", "acc-bob", "acc-carol", 10), group_id="G"),  # funded by r-3
    ]

    items = decide(ledger, records)

    assert statuses(items) == [
        ("REJECTED", "INSUFFICIENT_FUNDS"),
        ("REJECTED", "INVALID_REQUEST"),
        ("POSTED", None),
        ("POSTED", None),
    ]


def test_a_record_past_the_deadline_is_not_attempted_and_holds_back_the_rest_of_its_group():
    ledger = a_ledger()
    records = [sqs_record(transfer(f"d-{n}", "acc-alice", "acc-bob", 1), group_id="G") for n in range(3)]

    items = decide(ledger, records, deadline=time.monotonic() - 1)

    assert [item.failure.error for item in items] == ["TransientPostingError", HELD_BACK, HELD_BACK]
    assert ledger.asked == []


def test_records_of_a_standard_queue_carry_no_group_even_when_the_producer_named_one():
    # A standard queue's fair-queue group ids promise no order: only a FIFO source's records are sequenced.
    record = sqs_record(transfer("s-1", "acc-alice", "acc-bob", 1), group_id="G")
    record["eventSourceARN"] = record["eventSourceARN"].removesuffix(".fifo")

    assert validate_record(record).group_id is None
    assert validate_record(sqs_record(transfer("s-2", "acc-alice", "acc-bob", 1), group_id="G")).group_id == "G"


# -- the rule, over many batches -------------------------------------------------------------------

# A batch: each record's group (None: a standard queue's record) and whether deciding it fails.
batches = st.lists(st.tuples(st.sampled_from([None, "A", "B", "C"]), st.booleans()), max_size=10)


def items_of(batch: list[tuple[str | None, bool]]) -> list[BatchItem]:
    return [BatchItem(message_id=f"m{n}", body="{}", group_id=group) for n, (group, _) in enumerate(batch)]


@given(batches)
def test_lanes_partition_the_batch_by_group_in_delivery_order(batch):
    found = lanes(items_of(batch))

    assert sorted(position for lane in found for position in lane) == list(range(len(batch)))
    for lane in found:
        assert lane == sorted(lane)
        groups = {batch[position][0] for position in lane}
        assert len(groups) == 1
        assert None not in groups or len(lane) == 1
    assert [lane[0] for lane in found] == sorted(lane[0] for lane in found)


@given(batches, st.integers(min_value=1, max_value=8))
def test_within_a_group_nothing_is_decided_after_an_undecided_record_and_the_rest_in_order(batch, workers):
    items = items_of(batch)
    attempted: list[int] = []
    guard = threading.Lock()

    def attempt(position: int) -> BatchItem:
        with guard:
            attempted.append(position)
        if batch[position][1]:
            return items[position].model_copy(update={"failure": Failure(error="TransientPostingError", message="x")})
        return items[position].model_copy(update={"failure": None})

    decided = decide_in_order(items, attempt, workers)

    assert [item.message_id for item in decided] == [item.message_id for item in items]
    assert sorted(attempted) == sorted(set(attempted))  # each record attempted at most once
    for lane in lanes(items):
        tried = [position for position in attempted if position in lane]
        first_failure = next((position for position in lane if batch[position][1]), None)
        expected = lane if first_failure is None else lane[: lane.index(first_failure) + 1]
        assert tried == expected  # in the group's order, and nothing after its first failure
        for position in lane[len(expected) :]:
            assert decided[position].failure.error == HELD_BACK
