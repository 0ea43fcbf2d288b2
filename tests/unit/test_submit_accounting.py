"""`submit` answers each body with its own message id, however the queue refuses part of a batch."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from posting_cli import operations
from posting_cli.target import REQUIRED_OUTPUTS, Target


class PickyQueue:
    """SendMessageBatch as SQS answers it: refused entries under Failed, the others under Successful,
    in no promised order (here: reversed)."""

    def __init__(self) -> None:
        self.messages: dict[str, str] = {}  # message id -> body

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        assert 1 <= len(Entries) <= 10
        successful, failed = [], []
        for entry in reversed(Entries):
            if entry["MessageBody"].startswith("refused"):
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidMessageContents"})
            else:
                message_id = f"message-{len(self.messages)}"
                self.messages[message_id] = entry["MessageBody"]
                successful.append({"Id": entry["Id"], "MessageId": message_id})
        return {"Successful": successful, "Failed": failed}


bodies = st.lists(st.sampled_from(["sent", "refused", ""]), min_size=1, max_size=35).map(
    lambda kinds: [f"{kind}-{index}" if kind else "" for index, kind in enumerate(kinds)]
)


@given(bodies)
def test_every_body_gets_its_own_answer(bodies: list[str]) -> None:
    queue = PickyQueue()
    target = Target(outputs=dict.fromkeys(REQUIRED_OUTPUTS, "x"), region="us-east-1", _clients={"sqs": queue})

    answers = operations.submit(target, bodies)

    assert len(answers) == len(bodies)
    for body, answer in zip(bodies, answers, strict=True):
        if body.startswith("sent"):
            assert answer.error is None and answer.message_id is not None
            assert queue.messages[answer.message_id] == body
        else:
            assert answer.message_id is None
            assert answer.error is not None
            assert ("InvalidMessageContents" in answer.error) == body.startswith("refused")
    assert len(queue.messages) == sum(body.startswith("sent") for body in bodies)  # each sent once
