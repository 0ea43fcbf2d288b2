"""Message groups: the order a FIFO queue promises, kept through one batch.

An SQS FIFO queue hands over the records of one message group in the order they were sent, and hands
over no later record of a group while an earlier one is in flight. The workflow keeps that promise
inside a batch: the records of one group are decided one after another, in the order they came, so
each sees what the one before it committed (a hold, then its capture, then a payout the capture
funded). The first record of a group that is not decided (a transient error, contention that did not
clear, the invocation running out of time) holds back every later record of its group: they go back
to the queue undecided with it and come again after it, never decided before it. A rejection is a
decision: it holds nothing back. This is what Lambda asks of a function on a FIFO queue ("stop
processing messages after the first failure and return all failed and unprocessed messages"),
applied per group, as Powertools' SqsFifoPartialProcessor does with skip_group_on_error.

Records of different groups are independent and run side by side, and so does every record without
a group (a standard queue promises no order: each of its records is a group of its own).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from posting.steps.items import BatchItem, Failure

# The failure of a record that was not attempted because an earlier record of its group was not
# decided. On its last delivery it is dead-lettered under this reason, behind the record that held
# it back, so a redrive can send both again in their order.
HELD_BACK = "HeldBackInGroup"


def lanes(items: Sequence[BatchItem]) -> list[list[int]]:
    """The positions of the items, one lane per message group in the order the queue delivered them;
    an item without a group is a lane of its own. Lanes come in the order of their first item."""
    by_group: dict[str, list[int]] = {}
    ordered: list[list[int]] = []
    for position, item in enumerate(items):
        if item.group_id is None:
            ordered.append([position])
            continue
        if item.group_id not in by_group:
            by_group[item.group_id] = []
            ordered.append(by_group[item.group_id])
        by_group[item.group_id].append(position)
    return ordered


def held_back(item: BatchItem, blocker: BatchItem) -> BatchItem:
    """The item, undecided because `blocker` (earlier in its group) was not decided. Its failure names
    the blocker's message and error, never the request or the group (a producer's own key)."""
    assert blocker.failure is not None
    failure = Failure(
        error=HELD_BACK,
        message=(
            f"not attempted: message {blocker.message_id}, before it in its message group, was not decided "
            f"({blocker.failure.error})"
        )[:1000],
    )
    return item.model_copy(update={"outcome": None, "failure": failure})


def decide_in_order(items: Sequence[BatchItem], decide: Callable[[int], BatchItem], workers: int) -> list[BatchItem]:
    """Decide every item through `decide(position)`, which never raises: lanes side by side on up to
    `workers` threads, each lane's items one after another, and every item after the first undecided
    one of its lane held back without being attempted. Items come back in their order."""
    decided: dict[int, BatchItem] = {}

    def run(lane: list[int]) -> None:
        blocker: BatchItem | None = None
        for position in lane:
            item = held_back(items[position], blocker) if blocker is not None else decide(position)
            if item.failure is not None and blocker is None:
                blocker = item
            decided[position] = item

    every_lane = lanes(items)
    if len(every_lane) <= 1 or workers <= 1:
        for lane in every_lane:
            run(lane)
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(every_lane))) as pool:
            list(pool.map(run, every_lane))
    return [decided[position] for position in range(len(items))]
