"""A FIFO posting queue and its DLQ, as the steps and adapters use them: every send names its message
group and a deduplication id, and records of a group return to the queue together.

The adapters run against moto's SQS in this process (no network)."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from posting.adapters.dead_letters import DeadLetterQueue
from posting.adapters.fifo import content_deduplication_id
from posting.adapters.posting_queue import PostingQueue
from posting.domain.outcomes import Outcome, Status
from posting.steps.emit import emit_batch
from posting.steps.expiry import sweep_expired_holds
from posting.steps.items import Batch, BatchItem, Failure
from posting.steps.sequencing import HELD_BACK
from tests.unit.fakes import FakeDeadLetterQueue, FakeEventBus
from tests.unit.test_emit_step import FakeReturns

posted = Outcome(status=Status.POSTED, posting_status=Status.POSTED, decided_at="t")
timeout = Failure(error="TransientPostingError", message="DynamoDB: ThrottlingException")
held = Failure(error=HELD_BACK, message="not attempted")


def item(message_id: str, group: str | None, *, receive_count: int = 1, **fields) -> BatchItem:
    return BatchItem(
        message_id=message_id,
        receipt_handle=f"r-{message_id}",
        receive_count=receive_count,
        body=json.dumps({"posting_id": f"p-{message_id}"}),
        posting_id=f"p-{message_id}",
        request_hash="h",
        group_id=group,
        **fields,
    )


@pytest.fixture
def sqs():
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def fifo_queue(sqs, name: str) -> str:
    return sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]


def received(sqs, url: str) -> list[dict]:
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", [])
    return messages


# -- emit -----------------------------------------------------------------------------------------


def test_the_records_of_one_group_come_back_together_after_one_delay():
    returns = FakeReturns()
    batch = Batch(
        items=[
            item("a1", "A", outcome=posted),
            item("a2", "A", failure=timeout, receive_count=1),
            item("b1", "B", failure=timeout, receive_count=1),
            item("a3", "A", failure=held, receive_count=3),
            item("a4", "A", failure=held, receive_count=2),
        ]
    )

    report = emit_batch(batch, FakeEventBus(), FakeDeadLetterQueue(), 5, returns)

    assert report.batch_item_failures == ["a2", "b1", "a3", "a4"]
    delays = dict(returns.returned)
    assert delays["r-a2"] == delays["r-a3"] == delays["r-a4"]  # the group unlocks once, all of it
    assert 4 <= delays["r-a2"] <= 8  # the delay of its most delivered record (its third delivery)
    assert 1 <= delays["r-b1"] <= 2


def test_a_group_on_its_last_delivery_is_dead_lettered_in_its_order_and_in_its_group():
    dlq = FakeDeadLetterQueue()
    batch = Batch(
        items=[
            item("a1", "A", failure=timeout, receive_count=5),
            item("a2", "A", failure=held, receive_count=5),
            item("b1", "B", outcome=posted, receive_count=5),
        ]
    )

    report = emit_batch(batch, FakeEventBus(), dlq, 5)

    assert report.batch_item_failures == []
    assert [(m["message_id"], m["group_id"], m["error"]) for m in dlq.messages] == [
        ("a1", "A", "TransientPostingError"),
        ("a2", "A", HELD_BACK),
    ]


# -- the adapters on FIFO queues -------------------------------------------------------------------


def test_a_dead_letter_keeps_its_group_and_is_deduplicated_by_the_failed_messages_id(sqs):
    dlq = DeadLetterQueue(sqs, fifo_queue(sqs, "postings-dlq"))
    for _ in range(2):  # the same delivery dead-lettered twice (a retried emit step)
        dlq.send("{}", "m-1", 5, "TransientPostingError", "x", producer_id="AIDA1", group_id="acc-alice")
    dlq.send("{}", "m-2", 5, "TransientPostingError", "x", producer_id="AIDA1")  # no group: its own

    messages = received(sqs, dlq.queue_url)

    assert [(m["Attributes"]["MessageGroupId"], m["Attributes"]["MessageDeduplicationId"]) for m in messages] == [
        ("acc-alice", "m-1"),
        ("m-2", "m-2"),
    ]
    assert messages[0]["MessageAttributes"]["source_message_id"]["StringValue"] == "m-1"


class ExpiringLedger:
    def expired_holds(self, now: str, limit: int = 1000) -> list[tuple[str, str]]:
        return [("hold-1", "2026-11-27T10:00:00.000Z"), ("hold-2", "2026-11-27T10:00:01.000Z")]


def test_the_sweepers_expiries_each_go_in_a_group_of_their_own_once_within_the_window(sqs):
    queue = PostingQueue(sqs, fifo_queue(sqs, "postings"))

    for _ in range(2):  # two sweeps before the first one's requests are decided
        assert sweep_expired_holds(ExpiringLedger(), queue, "2026-11-27T10:01:00.000Z").found == 2

    messages = received(sqs, queue.queue_url)
    assert [m["Attributes"]["MessageGroupId"] for m in messages] == ["expire:hold-1", "expire:hold-2"]
    assert [m["Attributes"]["MessageDeduplicationId"] for m in messages] == [
        content_deduplication_id(m["Body"]) for m in messages
    ]
    assert [json.loads(m["Body"])["posting_id"] for m in messages] == ["expire:hold-1", "expire:hold-2"]


def test_a_standard_queue_gets_neither_a_group_nor_a_deduplication_id(sqs):
    url = sqs.create_queue(QueueName="postings")["QueueUrl"]

    PostingQueue(sqs, url).send(["{}"], group_ids=["g"])
    DeadLetterQueue(sqs, url).send("{}", "m-1", 5, "E", "x", group_id="g")

    assert all("MessageGroupId" not in m["Attributes"] for m in received(sqs, url))


def test_a_fifo_queue_refuses_bodies_without_groups():
    with pytest.raises(ValueError, match="one message group id per body"):
        PostingQueue(client=None, queue_url="https://sqs/q.fifo").send(["{}"])


# -- posting dlq redrive from a FIFO DLQ -----------------------------------------------------------


def test_a_redrive_re_sends_a_group_in_order_and_stops_at_the_first_letter_that_stays(sqs):
    from posting_cli.dead_letters import redrive
    from posting_cli.producers import Producers
    from posting_cli.target import REQUIRED_OUTPUTS, Target

    queue, dlq_url = fifo_queue(sqs, "stack-postings"), fifo_queue(sqs, "stack-dlq")
    target = Target(
        outputs={key: "-" for key in REQUIRED_OUTPUTS} | {"PostingQueueUrl": queue, "DeadLetterQueueUrl": dlq_url},
        region="us-east-1",
    )
    target._clients["sqs"] = sqs
    dlq = DeadLetterQueue(sqs, dlq_url)
    senders = {"a1": "AIDAGOOD", "a2": "AIDASTRANGER", "a3": "AIDAGOOD", "b1": "AIDAGOOD"}
    for name, sender in senders.items():
        dlq.send(json.dumps({"posting_id": name}), f"m-{name}", 5, "E", "x", producer_id=sender, group_id=name[0])

    # The DLQ's letters are the emit step's (moto records one sender for every message).
    looked = received(sqs, dlq_url)
    emit_step = looked[0]["Attributes"]["SenderId"]
    for letter in looked:  # back at once: the look must not leave them in flight
        sqs.change_message_visibility(QueueUrl=dlq_url, ReceiptHandle=letter["ReceiptHandle"], VisibilityTimeout=0)
    producers = Producers(allowed=frozenset({"AIDAGOOD"}), pipeline=frozenset({emit_step}), redrivers=frozenset())

    report = redrive(target, producers=producers)

    assert [letter.source_message_id for letter, _ in report.plan.moves] == ["m-a1", "m-b1"]
    assert [(letter.source_message_id, why) for letter, why in report.plan.refusals] == [
        ("m-a2", "AIDASTRANGER is not an allowed producer"),
        ("m-a3", "behind m-a2, which stays, in its message group"),
    ]
    moved = received(sqs, queue)
    assert [(m["Body"], m["Attributes"]["MessageGroupId"]) for m in moved] == [
        ('{"posting_id": "a1"}', "a"),
        ('{"posting_id": "b1"}', "b"),
    ]
    assert sorted(json.loads(m["Body"])["posting_id"] for m in received(sqs, dlq_url)) == ["a2", "a3"]
