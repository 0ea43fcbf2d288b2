"""The ledger table adapter against DynamoDB Local: one transaction per posting, errors mapped by code."""

from __future__ import annotations

import json
import uuid
from dataclasses import astuple
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posting.adapters.ledger_table import LedgerTable
from posting.domain.ledger import Entry, PostingPlan, plan_posting
from posting.domain.model import Account, AccountState, AccountStatus, Side, parse_posting_request
from posting.domain.outcomes import (
    AccountAlreadyExists,
    ConcurrentUpdate,
    Decision,
    PostingAlreadyDecided,
    Reason,
    Status,
    TransientPostingError,
)
from tests.builders import account, leg, request

OPENED_AT = "2026-11-27T09:00:00.000Z"
DECIDED_AT = "2026-11-27T10:00:00.123Z"


def open_accounts(ledger: LedgerTable, *terms: dict[str, Any]) -> None:
    for each in terms:
        ledger.open_account(Account.model_validate(each, strict=False), OPENED_AT)


def plan(ledger: LedgerTable, body: dict[str, Any]) -> PostingPlan:
    """Plan a request against the accounts as they are stored right now."""
    posting_request = parse_posting_request(json.dumps(body))
    return plan_posting(posting_request, ledger.get_accounts(leg.account_id for leg in posting_request.legs))


def record(ledger: LedgerTable, posting_plan: PostingPlan, message_id: str = "msg-1") -> Decision:
    return ledger.record_posting(posting_plan, posting_plan.request.content_hash(), message_id, DECIDED_AT)


def books(ledger: LedgerTable) -> list[str]:
    """Everything in the table as comparable text: equal books mean nothing was written."""
    return sorted(repr(record) for record in ledger.scan())


def rejection(posting_id: str, message_id: str = "msg-r", reason: Reason = Reason.INSUFFICIENT_FUNDS) -> Decision:
    return Decision(
        posting_id=posting_id,
        status=Status.REJECTED,
        reason=reason,
        detail="not enough money",
        request_hash="h" * 64,
        decided_at=DECIDED_AT,
        message_id=message_id,
    )


def client_error(operation: str, code: str, **extra: Any) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (injected)"}, **extra}, operation)


class FailingClient:
    """The real DynamoDB client, except that `operation` raises `error` on every call."""

    def __init__(self, client: Any, operation: str, error: Exception) -> None:
        self._client = client
        self._operation = operation
        self._error = error

    def __getattr__(self, name: str) -> Any:
        if name != self._operation:
            return getattr(self._client, name)

        def fail(**_kwargs: Any) -> Any:
            raise self._error

        return fail


class RecordingClient:
    """The real DynamoDB client, remembering the name of every operation called through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        operation = getattr(self._client, name)

        def recorded(**kwargs: Any) -> Any:
            self.calls.append(name)
            return operation(**kwargs)

        return recorded


class UnprocessedReads:
    """The real DynamoDB client, except that batch_get_item leaves every key unprocessed for its first
    `times` calls, as DynamoDB does when a partition is throttled."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self._times = times
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        if name != "batch_get_item":
            return getattr(self._client, name)

        def unprocessed(RequestItems: dict[str, Any], **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls > self._times:
                return self._client.batch_get_item(RequestItems=RequestItems, **kwargs)
            if self.calls > 50:
                raise AssertionError(f"still asking for the same keys after {self.calls - 1} calls")
            return {"Responses": {table: [] for table in RequestItems}, "UnprocessedKeys": RequestItems}

        return unprocessed


@pytest.fixture
def alice_and_bob(ledger_table: LedgerTable) -> LedgerTable:
    """alice holds 5000 EUR (funded from an unlimited funding account); bob holds nothing."""
    open_accounts(ledger_table, account("funding", overdraft_limit=None), account("acc-alice"), account("acc-bob"))
    record(
        ledger_table,
        plan(ledger_table, request("fund-alice", leg("funding", "debit", 5000), leg("acc-alice", "credit", 5000))),
    )
    return ledger_table


# -- accounts -----------------------------------------------------------------------------------


def test_an_account_opens_with_a_zero_balance_and_its_terms(ledger_table):
    open_accounts(ledger_table, account("acc-usd", currency="USD", normal_balance="debit", overdraft_limit=None))

    state = ledger_table.get_account("acc-usd")
    assert state == AccountState(
        account=Account(
            account_id="acc-usd",
            currency="USD",
            normal_balance=Side.DEBIT,
            overdraft_limit=None,
            status=AccountStatus.OPEN,
        ),
        balance=0,
        version=0,
    )


def test_an_account_id_can_only_be_opened_once(ledger_table):
    open_accounts(ledger_table, account("acc-alice"))
    with pytest.raises(AccountAlreadyExists):
        open_accounts(ledger_table, account("acc-alice", currency="USD"))
    assert ledger_table.get_account("acc-alice").account.currency == "EUR"


def test_get_accounts_returns_only_the_accounts_that_exist_even_beyond_one_batch_of_100(ledger_table):
    ids = [f"acc-{n:03d}" for n in range(105)]
    open_accounts(ledger_table, *(account(account_id) for account_id in ids))

    found = ledger_table.get_accounts([*ids, "acc-ghost", ids[0]])

    assert sorted(found) == ids
    assert ledger_table.get_account("acc-ghost") is None


def test_freezing_an_account_changes_its_status_and_nothing_else(alice_and_bob):
    alice_and_bob.set_account_status("acc-alice", AccountStatus.FROZEN)

    state = alice_and_bob.get_account("acc-alice")
    assert state.account.status == AccountStatus.FROZEN
    assert (state.balance, state.version) == (5000, 1)


# -- recording a posting ------------------------------------------------------------------------


def test_a_posting_writes_balances_entries_and_its_decision_in_one_transaction(alice_and_bob):
    recording = RecordingClient(alice_and_bob._client)
    ledger = LedgerTable(recording, alice_and_bob.table_name)

    decision = record(ledger, plan(ledger, request("pay-1")), message_id="msg-pay-1")

    assert recording.calls == ["batch_get_item", "transact_write_items"]
    assert decision.status == Status.POSTED
    assert [(b.account_id, b.balance, b.version) for b in decision.balances] == [
        ("acc-alice", 3750, 2),
        ("acc-bob", 1250, 1),
    ]
    assert ledger.get_decision("pay-1") == decision
    assert decision.request["legs"] == request("pay-1")["legs"]
    assert decision.message_id == "msg-pay-1"
    assert {a: s.balance for a, s in ledger.get_accounts(["acc-alice", "acc-bob"]).items()} == {
        "acc-alice": 3750,
        "acc-bob": 1250,
    }


def test_a_statement_is_one_query_returning_the_account_then_its_entries_in_order(alice_and_bob):
    for n in range(3):
        record(
            alice_and_bob,
            plan(
                alice_and_bob,
                request(f"pay-{n}", leg("acc-alice", "debit", 100 + n), leg("acc-bob", "credit", 100 + n)),
            ),
        )
    recording = RecordingClient(alice_and_bob._client)

    state, entries = LedgerTable(recording, alice_and_bob.table_name).statement("acc-alice")

    assert recording.calls == ["query"]
    assert (state.balance, state.version) == (5000 - 100 - 101 - 102, 4)
    assert [Entry(*astuple(entry)[:7]) for entry in entries] == [
        Entry("acc-alice", 1, "fund-alice", Side.CREDIT, 5000, "EUR", 5000),
        Entry("acc-alice", 2, "pay-0", Side.DEBIT, 100, "EUR", 4900),
        Entry("acc-alice", 3, "pay-1", Side.DEBIT, 101, "EUR", 4799),
        Entry("acc-alice", 4, "pay-2", Side.DEBIT, 102, "EUR", 4697),
    ]


def test_a_statement_after_a_sequence_returns_only_the_later_entries(alice_and_bob):
    record(alice_and_bob, plan(alice_and_bob, request("pay-1")))

    _, entries = alice_and_bob.statement("acc-alice", after_sequence=1)

    assert [(e.sequence, e.posting_id) for e in entries] == [(2, "pay-1")]


def test_a_statement_of_an_unknown_account_is_empty(ledger_table):
    assert ledger_table.statement("acc-ghost") == (None, [])


def test_recording_the_same_posting_twice_returns_the_existing_decision_and_writes_nothing(alice_and_bob):
    first_plan = plan(alice_and_bob, request("pay-1"))
    second_plan = plan(alice_and_bob, request("pay-1"))  # built on the same fresh state
    first = record(alice_and_bob, first_plan, message_id="msg-first")
    before = books(alice_and_bob)

    with pytest.raises(PostingAlreadyDecided) as already:
        record(alice_and_bob, second_plan, message_id="msg-second")

    assert already.value.decision == first
    assert books(alice_and_bob) == before


def test_recording_over_a_standing_rejection_returns_the_rejection_and_writes_nothing(alice_and_bob):
    alice_and_bob.record_rejection(rejection("pay-1"))
    before = books(alice_and_bob)

    with pytest.raises(PostingAlreadyDecided) as already:
        record(alice_and_bob, plan(alice_and_bob, request("pay-1")))

    assert already.value.decision.status == Status.REJECTED
    assert already.value.decision.reason == Reason.INSUFFICIENT_FUNDS
    assert books(alice_and_bob) == before


def test_a_plan_built_on_a_stale_balance_is_a_concurrent_update_and_writes_nothing(alice_and_bob):
    stale = plan(alice_and_bob, request("pay-2", leg("acc-alice", "debit", 5000), leg("acc-bob", "credit", 5000)))
    record(alice_and_bob, plan(alice_and_bob, request("pay-1")))
    before = books(alice_and_bob)

    with pytest.raises(ConcurrentUpdate):
        record(alice_and_bob, stale)

    assert books(alice_and_bob) == before
    assert alice_and_bob.get_decision("pay-2") is None
    assert alice_and_bob.get_account("acc-alice").balance == 3750


def test_a_plan_on_an_account_frozen_since_it_was_read_is_a_concurrent_update(alice_and_bob):
    planned = plan(alice_and_bob, request("pay-1"))
    alice_and_bob.set_account_status("acc-bob", AccountStatus.FROZEN)
    before = books(alice_and_bob)

    with pytest.raises(ConcurrentUpdate):
        record(alice_and_bob, planned)

    assert books(alice_and_bob) == before


def test_a_rejection_is_recorded_once_and_a_second_one_returns_the_first(ledger_table):
    first = ledger_table.record_rejection(rejection("pay-1", message_id="msg-1"))

    with pytest.raises(PostingAlreadyDecided) as already:
        ledger_table.record_rejection(rejection("pay-1", message_id="msg-2", reason=Reason.ACCOUNT_NOT_FOUND))

    assert already.value.decision == first
    assert ledger_table.get_decision("pay-1") == first


def test_an_unknown_posting_has_no_decision(ledger_table):
    assert ledger_table.get_decision("pay-never") is None


# -- transient errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        client_error("TransactWriteItems", "ThrottlingException"),
        client_error("TransactWriteItems", "ProvisionedThroughputExceededException"),
        client_error(
            "TransactWriteItems",
            "TransactionCanceledException",
            CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
        ),
    ],
    ids=["throttled", "throughput-exceeded", "transaction-conflict"],
)
def test_throttling_and_conflicts_are_transient_errors_not_rejections(alice_and_bob, error):
    planned = plan(alice_and_bob, request("pay-1"))
    ledger = LedgerTable(FailingClient(alice_and_bob._client, "transact_write_items", error), alice_and_bob.table_name)

    with pytest.raises(TransientPostingError):
        record(ledger, planned)


def test_throttled_reads_are_transient_errors(alice_and_bob):
    throttled = client_error("BatchGetItem", "ThrottlingException")
    ledger = LedgerTable(FailingClient(alice_and_bob._client, "batch_get_item", throttled), alice_and_bob.table_name)

    with pytest.raises(TransientPostingError):
        ledger.get_accounts(["acc-alice"])


def test_a_throttled_rejection_is_a_transient_error(ledger_table):
    throttled = client_error("PutItem", "ThrottlingException")
    ledger = LedgerTable(FailingClient(ledger_table._client, "put_item", throttled), ledger_table.table_name)

    with pytest.raises(TransientPostingError):
        ledger.record_rejection(rejection("pay-1"))
    assert ledger_table.get_decision("pay-1") is None


def test_unprocessed_keys_are_asked_for_again_until_read(alice_and_bob):
    client = UnprocessedReads(alice_and_bob._client, times=2)

    found = LedgerTable(client, alice_and_bob.table_name, sleep=lambda _: None).get_accounts(["acc-alice", "acc-bob"])

    assert {a: s.balance for a, s in found.items()} == {"acc-alice": 5000, "acc-bob": 0}
    assert client.calls == 3


def test_keys_that_stay_unprocessed_become_a_transient_error_not_an_endless_loop(alice_and_bob):
    waits: list[float] = []
    ledger = LedgerTable(
        UnprocessedReads(alice_and_bob._client, times=10**9), alice_and_bob.table_name, sleep=waits.append
    )

    with pytest.raises(TransientPostingError):
        ledger.get_accounts(["acc-alice"])
    assert len(waits) == 4  # backed off between the 5 attempts


# -- reading the whole table --------------------------------------------------------------------


def test_scan_returns_every_account_entry_and_decision(alice_and_bob):
    posted = record(alice_and_bob, plan(alice_and_bob, request("pay-1")))
    rejected = alice_and_bob.record_rejection(rejection("pay-2"))

    records = list(alice_and_bob.scan())

    accounts = {r.account_id: r.balance for r in records if isinstance(r, AccountState)}
    entries = {(r.account_id, r.sequence, r.posting_id) for r in records if isinstance(r, Entry)}
    decisions = {r.posting_id: r for r in records if isinstance(r, Decision)}
    assert accounts == {"funding": -5000, "acc-alice": 3750, "acc-bob": 1250}
    assert entries == {
        ("funding", 1, "fund-alice"),
        ("acc-alice", 1, "fund-alice"),
        ("acc-alice", 2, "pay-1"),
        ("acc-bob", 1, "pay-1"),
    }
    assert decisions["pay-1"] == posted
    assert decisions["pay-2"] == rejected
    assert set(decisions) == {"fund-alice", "pay-1", "pay-2"}
    assert len(records) == 3 + 4 + 3


# -- the decision item's layout ---------------------------------------------------------------


def _card_settlement(posting_id: str, accounts: list[str]) -> dict[str, Any]:
    """A 4-leg card settlement as a bank sends it: uuid ids, a full description, five metadata keys."""
    return request(
        posting_id,
        leg(accounts[0], "debit", 10_000),
        leg(accounts[1], "credit", 9_800),
        leg(accounts[2], "credit", 150),
        leg(accounts[3], "credit", 50),
        description="Card payment 4929 **** **** 1234 at ACME GROCERIES LTD, LONDON GB, terminal 88123401",
        metadata={
            "channel": "card",
            "merchant_id": "MID-0004567812",
            "terminal_id": "T-88123401",
            "authorization_code": "A1B2C3",
            "acquirer_reference": "74000012345678901234567",
        },
    )


def test_a_typical_four_leg_decision_item_fits_in_one_kilobyte(ledger_table):
    from posting.adapters.ledger_table import posting_key
    from posting_cli.bench.item_sizes import item_size

    accounts = [f"acc-{uuid.uuid4()}" for _ in range(4)]
    open_accounts(ledger_table, *(account(a, overdraft_limit=None) for a in accounts))
    posting_id = f"pay-{uuid.uuid4()}"
    decision = record(ledger_table, plan(ledger_table, _card_settlement(posting_id, accounts)))

    item = ledger_table._client.get_item(TableName=ledger_table.table_name, Key=posting_key(posting_id))["Item"]
    assert item_size(item) <= 1024  # one write unit (two in the transaction), not two (four)
    assert item["request_hash"] == {"B": bytes.fromhex(decision.request_hash)}
    assert ledger_table.get_decision(posting_id) == decision
    assert decision.request is not None and decision.request["metadata"]["merchant_id"] == "MID-0004567812"


def test_decisions_stored_in_the_layout_before_read_the_same_and_still_catch_duplicates(alice_and_bob):
    from posting.adapters.ledger_table import _to_attributes, posting_key

    first = plan(alice_and_bob, request("pay-old"))
    decision = record(alice_and_bob, first)
    # Rewrite it as the layout before wrote it: every field its own attribute, the hash as hex text.
    old = posting_key("pay-old") | _to_attributes(
        {"entity": "posting", **decision.model_dump(mode="json", exclude_none=True)}
    )
    alice_and_bob._client.put_item(TableName=alice_and_bob.table_name, Item=old)
    assert alice_and_bob.get_decision("pay-old") == decision

    with pytest.raises(PostingAlreadyDecided) as already:
        record(alice_and_bob, plan(alice_and_bob, request("pay-old")), message_id="msg-retry")
    assert already.value.decision == decision
    assert already.value.decision.request_hash == first.request.content_hash()  # a DUPLICATE, not a conflict
