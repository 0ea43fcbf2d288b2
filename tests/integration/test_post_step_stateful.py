"""The post step against an in-memory model, on DynamoDB Local (hypothesis RuleBasedStateMachine).

Clients send requests, retry them, reuse ids with other content, and send unbalanced ones; the
runtime redelivers messages and crashes between commit and return (the step's answer is dropped
and the same message comes again with receive_count + 1). After every step the ledger's balances
and decisions must be exactly the model's: nothing applied twice, nothing lost, a failed id stays
failed, a refusal by content alone consumes nothing, and a redelivered message gets the answer its
first delivery got.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import Account
from posting.domain.outcomes import Reason, Status
from posting.steps.items import BatchItem
from posting.steps.post import post_item
from posting.steps.validate import validate_record
from tests.builders import account, leg, request, sqs_record

pytestmark = pytest.mark.local_stack

CUSTOMERS = ("a", "b", "c")


def no_sleep(_seconds: float) -> None:
    pass


@dataclass(frozen=True)
class Sent:
    message_id: str
    body: str
    receive_count: int
    status: Status  # what its first delivery was answered
    reason: Reason | None


class PostStepModel(RuleBasedStateMachine):
    """The model: balances per account, and the content and decision recorded per posting_id."""

    ledger: LedgerTable  # set by the test: one table, a fresh prefix per example

    sent = Bundle("sent")

    def __init__(self) -> None:
        super().__init__()
        self.prefix = uuid.uuid4().hex[:8]
        self.balances = dict.fromkeys(CUSTOMERS, 0)
        self.decisions: dict[str, tuple[str, Status, Reason | None]] = {}  # posting_id -> content, status, reason
        for terms in (
            account(self._id("funding"), overdraft_limit=None, normal_balance="debit"),
            *(account(self._id(c)) for c in CUSTOMERS),
        ):
            self.ledger.open_account(Account.model_validate(terms, strict=False), "2026-11-27T09:00:00.000Z")

    def _id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _deliver(self, body: str, message_id: str, receive_count: int) -> BatchItem:
        item = post_item(validate_record(sqs_record(body, message_id, receive_count)), self.ledger, sleep=no_sleep)
        assert item.failure is None, item.failure
        assert item.outcome is not None
        return item

    def _expect(self, posting_id: str, content: str, source: str, amount: int) -> tuple[Status, Reason | None]:
        """What the model decides for a new message, updating the model if it is a new decision."""
        key = self._id(posting_id)
        if key in self.decisions:
            recorded, _status, reason = self.decisions[key]
            if recorded != content:
                return Status.REJECTED, Reason.IDEMPOTENCY_CONFLICT
            return Status.DUPLICATE, reason
        if source != "funding" and self.balances[source] < amount:
            self.decisions[key] = (content, Status.REJECTED, Reason.INSUFFICIENT_FUNDS)
            return Status.REJECTED, Reason.INSUFFICIENT_FUNDS
        self.decisions[key] = (content, Status.POSTED, None)
        return Status.POSTED, None

    @rule(
        target=sent,
        posting_id=st.sampled_from([f"p{n}" for n in range(6)]),
        source=st.sampled_from(("funding", *CUSTOMERS)),
        target_account=st.sampled_from(CUSTOMERS),
        amount=st.sampled_from([1, 50, 100, 250]),
        crash_after_commit=st.booleans(),
    )
    def send(self, posting_id, source, target_account, amount, crash_after_commit):
        if source == target_account:
            target_account = next(c for c in CUSTOMERS if c != source)
        body = json.dumps(
            request(
                self._id(posting_id),
                leg(self._id(source), "debit", amount),
                leg(self._id(target_account), "credit", amount),
            )
        )
        content = f"{source}>{target_account}:{amount}"
        status, reason = self._expect(posting_id, content, source, amount)
        if status == Status.POSTED:
            if source != "funding":
                self.balances[source] -= amount
            self.balances[target_account] += amount
        message_id = str(uuid.uuid4())
        receive_count = 1
        if crash_after_commit:
            self._deliver(body, message_id, receive_count)  # committed; the answer is lost in the crash
            receive_count += 1
        item = self._deliver(body, message_id, receive_count)
        assert (item.outcome.status, item.outcome.reason) == (status, reason), (posting_id, content)
        return Sent(message_id, body, receive_count, status, reason)

    @rule(sent=sent)
    def redeliver(self, sent):
        """The queue hands the same message over again: the same answer, and nothing moves."""
        item = self._deliver(sent.body, sent.message_id, sent.receive_count + 1)
        assert (item.outcome.status, item.outcome.reason) == (sent.status, sent.reason)

    @rule(posting_id=st.sampled_from([f"p{n}" for n in range(6)]))
    def send_unbalanced(self, posting_id):
        """Refused for its content alone: no id is consumed (the model does not change)."""
        body = json.dumps(
            request(self._id(posting_id), leg(self._id("a"), "debit", 100), leg(self._id("b"), "credit", 99))
        )
        item = validate_record(sqs_record(body, str(uuid.uuid4())))
        item = post_item(item, self.ledger, sleep=no_sleep)
        assert (item.outcome.status, item.outcome.reason) == (Status.REJECTED, Reason.UNBALANCED)

    @invariant()
    def ledger_equals_model(self):
        states = self.ledger.books.get_accounts(self._id(c) for c in CUSTOMERS)
        assert {c: states[self._id(c)].balance for c in CUSTOMERS} == self.balances
        for key, (_content, status, reason) in self.decisions.items():
            decision = self.ledger.get_decision(key)
            assert decision is not None and (decision.status, decision.reason) == (status, reason), key


def test_the_post_step_matches_its_model_under_redeliveries_and_crashes(ledger_table):
    PostStepModel.ledger = ledger_table
    PostStepModel.TestCase.settings = settings(
        max_examples=20,
        stateful_step_count=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    PostStepModel.TestCase().runTest()
