"""moto's FIFO queues, as the local stack serves them: what they keep of SQS's FIFO rules already, and
the deduplication window the local stack adds (posting_cli/local/moto_fifo.py). Against an
in-process moto server on 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from posting_cli.local import moto_patches
from posting_cli.local.moto_server import MotoServer

pytestmark = pytest.mark.local_stack


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture(scope="module")
def sqs(moto: MotoServer) -> Any:
    return boto3.client("sqs", **moto.client_kwargs("us-east-1"))


@pytest.fixture
def queue(sqs: Any, request: pytest.FixtureRequest) -> str:
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    url: str = sqs.create_queue(
        QueueName=f"{name}.fifo",
        Attributes={
            "FifoQueue": "true",
            "DeduplicationScope": "messageGroup",
            "FifoThroughputLimit": "perMessageGroupId",
        },
    )["QueueUrl"]
    return url


def send(sqs: Any, queue: str, body: str, group: str, dedup: str | None = None) -> str:
    message_id: str = sqs.send_message(
        QueueUrl=queue, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup or body
    )["MessageId"]
    return message_id


def receive(sqs: Any, queue: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    return messages


def bodies(messages: list[dict[str, Any]]) -> list[str]:
    return [message["Body"] for message in messages]


def test_a_group_is_locked_while_any_of_its_messages_is_in_flight(sqs, queue):
    for body, group in [("a1", "A"), ("a2", "A"), ("b1", "B"), ("a3", "A")]:
        send(sqs, queue, body, group)

    first = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=2)["Messages"]
    assert bodies(first) == ["a1", "a2"]  # one receive takes several of a group, in order
    assert bodies(receive(sqs, queue)) == ["b1"]  # A stays locked behind a1 and a2

    # a2 visible again, a1 still in flight: A is still locked.
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=first[1]["ReceiptHandle"], VisibilityTimeout=0)
    assert receive(sqs, queue) == []
    # a1 visible again too: the group comes back whole, in its order.
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=first[0]["ReceiptHandle"], VisibilityTimeout=0)
    again = receive(sqs, queue)
    assert bodies(again) == ["a1", "a2", "a3"]
    assert {message["Attributes"]["MessageGroupId"] for message in again} == {"A"}


def test_a_group_whose_messages_all_time_out_comes_back_in_its_order(sqs, queue):
    for body in ("a1", "a2", "a3"):
        send(sqs, queue, body, "A")
    assert bodies(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]) == [
        "a1",
        "a2",
        "a3",
    ]
    time.sleep(1.2)  # none deleted: the whole group comes back after its visibility timeout

    assert bodies(receive(sqs, queue)) == ["a1", "a2", "a3"]


def test_a_send_without_a_group_or_a_deduplication_id_is_refused(sqs, queue):
    with pytest.raises(sqs.exceptions.ClientError, match="MessageGroupId"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageDeduplicationId="x")
    with pytest.raises(sqs.exceptions.ClientError, match="MessageDeduplicationId"):
        sqs.send_message(QueueUrl=queue, MessageBody="x", MessageGroupId="A")


def test_a_deduplication_id_is_remembered_after_its_message_is_deleted(sqs, queue):
    first = send(sqs, queue, "pay-1", "A", dedup="d-1")
    for message in receive(sqs, queue):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])

    again = send(sqs, queue, "pay-1 sent again", "A", dedup="d-1")

    assert again == first  # accepted, answered with the original's id, not delivered
    assert receive(sqs, queue) == []


def test_with_a_group_scope_one_deduplication_id_may_be_sent_once_per_group(sqs, queue):
    send(sqs, queue, "x", "A", dedup="same")
    send(sqs, queue, "y", "B", dedup="same")
    send(sqs, queue, "z", "A", dedup="same")

    assert sorted(bodies(receive(sqs, queue))) == ["x", "y"]


def test_without_the_patches_moto_hands_out_the_last_of_a_timed_out_group_first(moto, sqs, queue):
    moto_patches.uninstall()
    try:
        for body in ("a1", "a2", "a3"):
            send(sqs, queue, body, "A")
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=1)
        time.sleep(1.2)
        assert bodies(receive(sqs, queue)) == ["a3"]
    finally:
        moto_patches.install_all(moto.endpoint_url)


def test_without_the_patches_a_waiting_receive_hands_out_a_group_another_consumer_took(moto, sqs, queue):
    moto_patches.uninstall()
    try:
        # moto decides which groups are locked once, when the receive starts waiting.
        assert a_receive_waits_while_another_consumer_takes_a1(sqs, queue) == ["a2"]
    finally:
        moto_patches.install_all(moto.endpoint_url)


def test_without_the_patch_moto_forgets_a_deleted_messages_deduplication_id(moto, sqs, queue):
    moto_patches.uninstall()
    try:
        send(sqs, queue, "pay-1", "A", dedup="d-1")
        for message in receive(sqs, queue):
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        send(sqs, queue, "pay-1", "A", dedup="d-1")
        assert bodies(receive(sqs, queue)) == ["pay-1"]  # delivered twice
    finally:
        moto_patches.install_all(moto.endpoint_url)


def a_receive_waits_while_another_consumer_takes_a1(sqs: Any, queue: str) -> list[str]:
    """A receive waits (up to 2 s) on an empty queue. Meanwhile a1 is sent and another consumer takes
    it before the waiting receive looks (done in the server's process, holding the queue's lock, so
    the order is certain), and a2 of the same group is sent. What the waiting receive got."""
    import threading

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    name = queue.rsplit("/", 1)[1]
    waited: list[str] = []
    waiting = threading.Thread(
        target=lambda: waited.extend(
            bodies(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", []))
        )
    )
    waiting.start()
    time.sleep(0.3)  # the receive is waiting on an empty queue
    with backend.get_queue(name)._messages_lock:
        backend.send_message(name, "a1", group_id="A", deduplication_id="a1")
        assert [m.body for m in backend.receive_message(name, 1, 0, 30)] == ["a1"]  # in flight elsewhere
    send(sqs, queue, "a2", "A")
    waiting.join()
    return waited


def test_a_waiting_receive_does_not_hand_out_a_group_another_consumer_took_meanwhile(sqs, queue):
    # a1 is in flight with the other consumer: a2 waits behind it.
    assert a_receive_waits_while_another_consumer_takes_a1(sqs, queue) == []
