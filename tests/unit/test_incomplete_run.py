"""What `posting local run` says about lines that got no final outcome: where the stack has them."""

from __future__ import annotations

from posting.domain.outcomes import Decision, Status
from posting_cli.local.run import LineOutcome, explain_whereabouts


def pending(line: int, posting_id: str | None, message_id: str) -> LineOutcome:
    return LineOutcome(line, posting_id, "REJECTED", "INVALID_REQUEST", None, message_id)


def decision(posting_id: str, message_id: str) -> Decision:
    return Decision(
        posting_id=posting_id,
        status=Status.POSTED,
        request_hash="h",
        decided_at="2026-12-06T10:00:00Z",
        message_id=message_id,
    )


def counts(visible: int = 0, in_flight: int = 0, delayed: int = 0) -> dict[str, int]:
    return {"visible": visible, "in_flight": in_flight, "delayed": delayed}


def test_lines_in_no_queue_and_no_ledger_were_lost_by_the_queue() -> None:
    lines = [pending(5161, "pay-1", "m-1"), pending(5162, None, "m-2")]

    text = explain_whereabouts(lines, counts(), {5161: None})

    assert text.startswith("The posting queue holds 0 visible, 0 in-flight and 0 delayed message(s)")
    assert "2 line(s) with no decision in the ledger are nowhere" in text
    assert "(ids m-1, m-2)" in text
    assert text.endswith("The queue lost them.")


def test_a_decided_line_whose_event_never_came() -> None:
    text = explain_whereabouts([pending(3, "pay-3", "m-3")], counts(), {3: decision("pay-3", "m-3")})

    assert "The ledger decided line 3 (POSTED) from its own message, but its result event never reached" in text
    assert "lost" not in text and "no decision" not in text


def test_a_line_whose_posting_id_another_message_decided() -> None:
    text = explain_whereabouts([pending(4, "pay-1", "m-4")], counts(), {4: decision("pay-1", "m-1")})

    assert "The ledger decided posting pay-1 (line 4) from another message (m-1)" in text
    assert "no result event for line 4's own message arrived" in text


def test_messages_still_in_flight_are_named_as_such_not_as_lost() -> None:
    text = explain_whereabouts([pending(7, "pay-7", "m-7")], counts(in_flight=1), {7: None})

    assert "1 message(s) are in flight" in text
    assert "The 1 line(s) with no decision in the ledger may be among them." in text
    assert "lost" not in text and "nothing is receiving" not in text


def test_messages_nobody_receives() -> None:
    text = explain_whereabouts([pending(8, "pay-8", "m-8")], counts(visible=1, delayed=2), {8: None})

    assert "1 visible, 0 in-flight and 2 delayed" in text
    assert "1 message(s) are visible and waiting: nothing is receiving them." in text
    assert "lost" not in text and "in flight:" not in text
