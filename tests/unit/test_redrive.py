"""`posting dlq redrive`: which dead letters it takes, and which of those it can vouch for.

A redrive re-sends a request as the operator running it, so it re-sends only requests whose producer
it can vouch for: an allowed producer, or the stack's own sweeper. What it cannot vouch for stays in
the DLQ, reported. (tests/e2e/test_redrive.py runs the same through the local stack.)
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from posting_cli.operations import DeadLetter, Selection, plan_redrive, vouch
from posting_cli.producers import NotResolved, Producers, allowed_producers, principal_id, same_principal
from posting_cli.target import REQUIRED_OUTPUTS, Target

ACCOUNT = "123456789012"
PRODUCER_ROLE = "AROAPRODUCER00000001"
PRODUCER = f"{PRODUCER_ROLE}:payments-gateway"
SWEEPER_ROLE = "AROASWEEPER000000001"
SWEEPER = f"{SWEEPER_ROLE}:posting-pipeline-dev-sweep"
EMIT_ROLE = "AROAEMIT000000000001"
EMIT = f"{EMIT_ROLE}:posting-pipeline-dev-emit"
WORKFLOW = "AROAWORKFLOW00000001:states-session"
OPERATOR_ROLE = "AROAOPERATOR00000001"
OPERATOR = f"{OPERATOR_ROLE}:alice@example.com"
COLLEAGUE = f"{OPERATOR_ROLE}:bob@example.com"
STRANGER = "AROASTRANGER00000001:mallory"

PRODUCERS = Producers(
    allowed=frozenset({PRODUCER_ROLE, SWEEPER_ROLE}),
    pipeline=frozenset({EMIT_ROLE, WORKFLOW.partition(":")[0]}),
    redrivers=frozenset({OPERATOR_ROLE}),
)


def letter(
    message_id: str = "dlq-1",
    *,
    sent_by: str | None = EMIT,
    producer_id: str | None = PRODUCER,
    original_producer_id: str | None = None,
    error: str = "TransientPostingError",
    source_message_id: str | None = None,
) -> DeadLetter:
    return DeadLetter(
        message_id=message_id,
        source_message_id=source_message_id or f"src-{message_id}",
        body='{"posting_id": "p"}',
        error=error,
        message="DynamoDB: ThrottlingException",
        receipt_handle=f"rh-{message_id}",
        sent_by=sent_by,
        producer_id=producer_id,
        original_producer_id=original_producer_id or producer_id,
    )


# -- whom it vouches for --------------------------------------------------------------------------------


def test_a_dead_letter_from_an_allowed_producer_is_re_sent_for_that_producer():
    assert vouch(letter(), PRODUCERS) == (PRODUCER, None)


def test_the_sweepers_expiries_are_re_sent_for_the_sweeper():
    assert vouch(letter(producer_id=SWEEPER), PRODUCERS) == (SWEEPER, None)


def test_the_workflows_own_dead_letters_are_believed_like_emits():
    assert vouch(letter(sent_by=WORKFLOW), PRODUCERS) == (PRODUCER, None)


def test_a_dead_letter_that_names_no_producer_stays():
    assert vouch(letter(producer_id=None), PRODUCERS) == (None, "no producer recorded")


def test_a_producer_that_is_not_allowed_stays():
    assert vouch(letter(producer_id=STRANGER), PRODUCERS) == (None, f"{STRANGER} is not an allowed producer")


def test_a_request_an_operator_redrove_keeps_its_producer_across_sessions_of_the_operators_role():
    redriven = letter(producer_id=COLLEAGUE, original_producer_id=PRODUCER)
    assert vouch(redriven, PRODUCERS) == (PRODUCER, None)


def test_a_redrive_for_a_producer_that_is_no_longer_allowed_stays():
    redriven = letter(producer_id=OPERATOR, original_producer_id=STRANGER)
    assert vouch(redriven, PRODUCERS) == (
        None,
        f"re-sent by {OPERATOR} for {STRANGER}, which is not an allowed producer",
    )


def test_an_attribution_by_anyone_but_a_redriver_is_ignored():
    # A producer may put original_producer_id on its own requests: it stays its own sender.
    assert vouch(letter(producer_id=PRODUCER, original_producer_id=SWEEPER), PRODUCERS) == (PRODUCER, None)
    claimed = letter(producer_id=STRANGER, original_producer_id=PRODUCER)
    assert vouch(claimed, PRODUCERS) == (None, f"{STRANGER} is not an allowed producer")


def test_an_operators_own_request_is_not_a_producers():
    assert vouch(letter(producer_id=OPERATOR), PRODUCERS) == (None, f"{OPERATOR} is not an allowed producer")


def test_a_message_the_queue_moved_is_believed_about_its_own_sender_only():
    # No pipeline role sent it: its attributes are whatever its sender put on it.
    moved = letter(sent_by=STRANGER, producer_id=PRODUCER, error="MaxReceiveCountExceeded")
    assert vouch(moved, PRODUCERS) == (None, f"{STRANGER} is not an allowed producer")
    assert vouch(letter(sent_by=PRODUCER, producer_id=None), PRODUCERS) == (PRODUCER, None)


def test_a_request_a_redriver_re_sent_that_the_queue_moved_keeps_its_producer():
    moved = letter(sent_by=OPERATOR, producer_id=None, original_producer_id=PRODUCER)
    assert vouch(moved, PRODUCERS) == (PRODUCER, None)


def test_a_message_with_no_sender_at_all_stays():
    assert vouch(letter(sent_by=None, producer_id=PRODUCER), PRODUCERS) == (None, "no producer recorded")


def test_a_role_named_without_a_session_matches_every_session_and_with_one_only_that_one():
    assert same_principal(PRODUCER, PRODUCER_ROLE)
    assert same_principal(PRODUCER, PRODUCER)
    assert not same_principal(f"{PRODUCER_ROLE}:other", PRODUCER)
    assert not same_principal(f"{PRODUCER_ROLE}X:session", PRODUCER_ROLE)
    assert not same_principal(PRODUCER_ROLE, PRODUCER)


@given(sender=st.from_regex(r"[A-Z0-9]{21}(:[a-z@.]{1,20})?", fullmatch=True))
def test_nothing_is_vouched_for_when_no_producer_is_allowed(sender):
    nobody = Producers(allowed=frozenset(), pipeline=frozenset({EMIT_ROLE}), redrivers=frozenset({OPERATOR_ROLE}))
    for candidate in (letter(producer_id=sender), letter(sent_by=sender, producer_id=None)):
        assert vouch(candidate, nobody)[0] is None


# -- which it takes -------------------------------------------------------------------------------------


LETTERS = [
    letter("dlq-1"),
    letter("dlq-2", error="RuntimeError"),
    letter("dlq-3", producer_id=STRANGER),
    letter("dlq-4", sent_by=PRODUCER, producer_id=None, error="MaxReceiveCountExceeded"),
]


def ids(pairs: list[Any]) -> list[str]:
    return [(pair[0] if isinstance(pair, tuple) else pair).message_id for pair in pairs]


def test_with_no_selector_every_dead_letter_is_taken_and_checked():
    plan = plan_redrive(LETTERS, Selection(), PRODUCERS)
    assert ids(plan.moves) == ["dlq-1", "dlq-2", "dlq-4"]
    assert ids(plan.refusals) == ["dlq-3"] and plan.unselected == []


def test_message_ids_select_by_the_dlqs_id_or_the_posting_queues():
    plan = plan_redrive(LETTERS, Selection(message_ids=frozenset({"dlq-2", "src-dlq-3"})), PRODUCERS)
    assert ids(plan.moves) == ["dlq-2"]
    assert ids(plan.refusals) == ["dlq-3"]
    assert ids(plan.unselected) == ["dlq-1", "dlq-4"]


def test_reasons_select_by_failure_error():
    plan = plan_redrive(LETTERS, Selection(reasons=frozenset({"RuntimeError", "MaxReceiveCountExceeded"})), PRODUCERS)
    assert ids(plan.moves) == ["dlq-2", "dlq-4"]
    assert ids(plan.unselected) == ["dlq-1", "dlq-3"]


def test_ids_and_reasons_together_select_what_matches_both():
    selection = Selection(message_ids=frozenset({"dlq-1", "dlq-2"}), reasons=frozenset({"RuntimeError"}))
    assert ids(plan_redrive(LETTERS, selection, PRODUCERS).moves) == ["dlq-2"]


@given(
    chosen=st.sets(st.sampled_from(["dlq-1", "dlq-2", "dlq-3", "dlq-4", "nope"])),
    reasons=st.sets(st.sampled_from(["TransientPostingError", "RuntimeError", "MaxReceiveCountExceeded", "X"])),
)
def test_every_letter_is_moved_refused_or_left_exactly_once(chosen, reasons):
    plan = plan_redrive(LETTERS, Selection(frozenset(chosen), frozenset(reasons)), PRODUCERS)
    taken = ids(plan.moves) + ids(plan.refusals)
    assert sorted(taken + ids(plan.unselected)) == ids(LETTERS)
    for each in LETTERS:
        selected = (not chosen or each.message_id in chosen) and (not reasons or each.error in reasons)
        assert (each.message_id in taken) == selected


# -- who is allowed: principal ids from the stack ------------------------------------------------------


class FakeIam:
    def __init__(self, roles: dict[str, tuple[str, str]], users: dict[str, tuple[str, str]] | None = None) -> None:
        self.roles, self.users = roles, users or {}

    def get_role(self, RoleName: str) -> dict:
        if RoleName == "locked":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetRole")
        if RoleName not in self.roles:
            raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "no"}}, "GetRole")
        arn, role_id = self.roles[RoleName]
        return {"Role": {"Arn": arn, "RoleId": role_id}}

    def get_user(self, UserName: str) -> dict:
        arn, user_id = self.users[UserName]
        return {"User": {"Arn": arn, "UserId": user_id}}


class FakeCloudFormation:
    def __init__(self, physical: dict[str, str]) -> None:
        self.physical = physical

    def describe_stack_resource(self, StackName: str, LogicalResourceId: str) -> dict:
        return {"StackResourceDetail": {"PhysicalResourceId": self.physical[LogicalResourceId]}}


class FakeSts:
    def get_caller_identity(self) -> dict:
        return {"Account": ACCOUNT, "UserId": OPERATOR, "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/ops/alice"}


def role_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{ACCOUNT}:role{path}{name}"


IAM = FakeIam(
    roles={
        "producer": (role_arn("producer"), PRODUCER_ROLE),
        "smoke": (role_arn("smoke", "/posting-deploy/"), "AROASMOKE00000000001"),
        "posting-pipeline-dev-us-east-1-sweep": (role_arn("posting-pipeline-dev-us-east-1-sweep"), SWEEPER_ROLE),
        "posting-pipeline-dev-us-east-1-emit": (role_arn("posting-pipeline-dev-us-east-1-emit"), EMIT_ROLE),
        "posting-pipeline-dev-us-east-1-workflow": (role_arn("posting-pipeline-dev-us-east-1-workflow"), "AROAWF"),
    },
    users={"batch": (f"arn:aws:iam::{ACCOUNT}:user/batch", "AIDABATCH0000000001")},
)
STACK_ROLES = {
    "SweepRole": "posting-pipeline-dev-us-east-1-sweep",
    "EmitRole": "posting-pipeline-dev-us-east-1-emit",
    "StateMachineRole": "posting-pipeline-dev-us-east-1-workflow",
}


def deployed(producer_arns: str, roles: dict[str, str] = STACK_ROLES) -> Target:
    return Target(
        outputs=dict.fromkeys(REQUIRED_OUTPUTS, "x"),
        region="us-east-1",
        stack_name="posting-pipeline-dev",
        parameters={"ProducerPrincipalArns": producer_arns},
        _clients={"iam": IAM, "sts": FakeSts(), "cloudformation": FakeCloudFormation(roles)},
    )


def test_a_deployed_stack_allows_its_producers_and_its_sweeper_by_principal_id():
    target = deployed(f"{role_arn('producer')},{role_arn('smoke', '/posting-deploy/')}")
    producers = allowed_producers(target)
    assert producers.allowed == {PRODUCER_ROLE, "AROASMOKE00000000001", SWEEPER_ROLE}
    assert producers.pipeline == {EMIT_ROLE, "AROAWF"}
    assert producers.redrivers == {OPERATOR_ROLE}  # the caller's role: any of its sessions
    assert producers.unresolved == ()


def test_allow_producer_adds_an_arn_or_a_principal_id():
    producers = allowed_producers(deployed(""), ["AROAOTHERACCOUNT0001:gateway", f"arn:aws:iam::{ACCOUNT}:user/batch"])
    assert producers.allowed == {"AROAOTHERACCOUNT0001:gateway", "AIDABATCH0000000001", SWEEPER_ROLE}


def test_what_cannot_be_resolved_is_reported_and_allows_nothing():
    target = deployed(
        ",".join(
            [
                "arn:aws:iam::210987654321:role/producer",  # another account: GetRole would find ours
                role_arn("producer-*"),  # a pattern
                role_arn("gone"),
                role_arn("locked"),
                role_arn("producer", "/other-path/"),  # same name, another role
            ]
        ),
        roles={"SweepRole": "posting-pipeline-dev-us-east-1-sweep", "EmitRole": "locked", "StateMachineRole": "gone"},
    )
    producers = allowed_producers(target)
    assert producers.allowed == {SWEEPER_ROLE}
    assert producers.pipeline == frozenset()
    assert [reason.rsplit(": ", 1)[-1] for reason in producers.unresolved] == [
        "name its principal id instead",  # in another account
        "not the ARN of one IAM principal (patterns name no single principal)",
        "NoSuchEntity",
        "AccessDenied",
        f"the principal of that name is {role_arn('producer')}",
        "AccessDenied",  # the stack's EmitRole
        "NoSuchEntity",  # the stack's StateMachineRole
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AROAPRODUCER00000001", PRODUCER_ROLE),
        (f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/producer/gateway-1", f"{PRODUCER_ROLE}:gateway-1"),
    ],
)
def test_principal_ids_from_names(name, expected):
    assert principal_id(name, IAM, ACCOUNT) == expected


@pytest.mark.parametrize("name", ["not an id", "", f"arn:aws:s3:::{ACCOUNT}", f"arn:aws:iam::{ACCOUNT}:group/ops"])
def test_names_that_are_no_principal(name):
    with pytest.raises(NotResolved):
        principal_id(name, IAM, ACCOUNT)


def test_the_local_stack_has_one_principal():
    from moto.sqs.models import DEFAULT_SENDER_ID

    local = Target(outputs=dict.fromkeys(REQUIRED_OUTPUTS, "x"), region="us-east-1", endpoints={"default": "x"})
    producers = allowed_producers(local, ["AROAELSEWHERE0000001", f"arn:aws:iam::{ACCOUNT}:role/producer"])
    assert producers.allowed == {DEFAULT_SENDER_ID, "AROAELSEWHERE0000001"}
    assert producers.pipeline == producers.redrivers == {DEFAULT_SENDER_ID}
    assert [entry.split(":")[0] for entry in producers.unresolved] == ["arn"]
