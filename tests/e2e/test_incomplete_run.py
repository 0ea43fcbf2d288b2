"""A run that cannot finish says where its missing lines are, from the stack's own queue and ledger."""

from __future__ import annotations

import json
import math
import time
import uuid

import pytest

from posting_cli import operations
from posting_cli.local import run
from posting_cli.local.run import Line, Pace, RunIncomplete, drain
from posting_cli.results import ResultCollector
from tests.builders import account, leg, request

pytestmark = pytest.mark.local_stack


def test_lines_whose_messages_the_queue_no_longer_holds_are_named(local_stack, monkeypatch):
    target = local_stack.target
    ids = uuid.uuid4().hex[:8]
    funding, alice = f"funding-{ids}", f"alice-{ids}"
    operations.open_accounts(
        target,
        operations.parse_accounts(
            json.dumps([account(funding, normal_balance="debit", overdraft_limit=None), account(alice)])
        ),
    )
    decided = json.dumps(request(f"fund-{ids}", leg(funding, "debit", 500), leg(alice, "credit", 500)))
    undecided = json.dumps(request(f"never-{ids}", leg(funding, "debit", 700), leg(alice, "credit", 700)))
    with ResultCollector(target) as collector:
        patient = Pace(stall_seconds=60, deadline=time.monotonic() + 120)
        [first] = drain(target, collector, [Line(1, decided)], patient)
        assert first.status == "POSTED"

        # The queue hands out message ids for two more lines and then holds neither message.
        def accepted_then_lost(_target, bodies):
            return [operations.Submitted(f"lost-{ids}-{i}", None, 0) for i, _ in enumerate(bodies)]

        monkeypatch.setattr(run.operations, "submit", accepted_then_lost)
        with pytest.raises(RunIncomplete) as failure:
            drain(target, collector, [Line(2, decided), Line(3, undecided)], Pace(stall_seconds=2, deadline=math.inf))

    text = str(failure.value)
    assert text.startswith(
        f"2 line(s) got no final outcome (no progress for 2 s): line 2 (fund-{ids}), line 3 (never-{ids}). "
        "The posting queue holds "
    )
    assert f"The ledger decided posting fund-{ids} (line 2) from another message ({first.message_id})" in text
    assert "1 line(s) with no decision in the ledger" in text
