"""`--group-by`: the message group of each line sent to a FIFO posting queue (posting_cli.groups)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posting_cli.groups import GroupingError, check_grouping, group_ids
from tests.builders import leg, request


def line(posting_id: str, *accounts: str, **fields) -> str:
    source, target = accounts
    return json.dumps(request(posting_id, leg(source, "debit", 10), leg(target, "credit", 10), **fields))


HOLD = json.dumps(request("hold-1", leg("alice", "debit", 10), leg("merchant", "credit", 10), kind="hold"))
CAPTURE = json.dumps({"kind": "capture", "posting_id": "capture-1", "hold_id": "hold-1"})
PAYOUT = line("payout-1", "merchant", "bank")
ELSEWHERE = line("pay-2", "carol", "dave")


def test_linked_puts_a_hold_its_capture_and_a_payout_from_the_merchant_in_one_group():
    groups = group_ids([HOLD, ELSEWHERE, CAPTURE, PAYOUT])

    assert groups == ["alice", "carol", "alice", "alice"]


def test_linked_joins_groups_that_a_later_line_connects():
    lines = [line("p1", "a", "b"), line("p2", "c", "d"), line("p3", "b", "c")]

    assert group_ids(lines) == ["a", "a", "a"]


def test_a_chain_links_its_members_ids_and_what_they_act_on():
    chain = json.dumps(
        {
            "kind": "chain",
            "posting_id": "chain-1",
            "requests": [{"kind": "void", "posting_id": "v-1", "hold_id": "h-9"}],
        }
    )
    void_again = json.dumps({"kind": "void", "posting_id": "v-2", "hold_id": "h-9"})

    assert group_ids([chain, void_again, ELSEWHERE]) == ["chain-1", "chain-1", "carol"]


def test_a_line_that_is_no_request_is_a_group_of_its_own():
    assert group_ids([HOLD, '{"posting_id": "broken", "legs": [', HOLD]) == ["alice", "line-2", "alice"]


def test_file_is_one_group():
    assert set(group_ids([HOLD, ELSEWHERE, "not json"], "file")) == {"file"}


def test_account_is_the_first_account_and_a_settlement_follows_what_it_names():
    reversal = json.dumps({"kind": "reversal", "posting_id": "rev-1", "reverses": "elsewhere-0"})

    assert group_ids([HOLD, CAPTURE, PAYOUT, reversal], "account") == ["alice", "alice", "merchant", "elsewhere-0"]


def test_field_takes_a_value_of_the_request_and_a_line_without_it_is_its_own_group():
    with_customer = line("p1", "a", "b", metadata={"customer": "c-42"})

    assert group_ids([with_customer, line("p2", "c", "d")], "field:metadata.customer") == ["c-42", "line-2"]


def test_a_group_id_sqs_would_refuse_becomes_a_digest():
    too_long = line("p1", "a", "b", metadata={"customer": "x" * 200})

    [group] = group_ids([too_long], "field:metadata.customer")

    assert re.fullmatch(r"g-[0-9a-f]{40}", group)


@pytest.mark.parametrize("grouping", ["", "accounts", "field:", "by-file"])
def test_an_unknown_grouping_is_refused_naming_the_known_ones(grouping):
    with pytest.raises(GroupingError, match="linked, file, account, field:PATH"):
        check_grouping(grouping)


accounts = st.sampled_from(["a", "b", "c", "d", "e", "f"])


@given(st.lists(st.tuples(accounts, accounts).filter(lambda pair: pair[0] != pair[1]), max_size=12))
def test_linked_lines_share_a_group_exactly_when_a_chain_of_shared_accounts_joins_them(pairs):
    lines = [line(f"p{n}", source, target) for n, (source, target) in enumerate(pairs)]
    groups = group_ids(lines)

    for i, (a, b) in enumerate(pairs):
        for j, (c, d) in enumerate(pairs):
            if {a, b} & {c, d}:
                assert groups[i] == groups[j]  # sharing an account: one group
    # Groups are exactly the connected components: each group's lines' accounts are disjoint from the others'.
    seen: dict[str, set[str]] = {}
    for group, pair in zip(groups, pairs, strict=True):
        seen.setdefault(group, set()).update(pair)
    names = list(seen)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            assert not seen[first] & seen[second]
