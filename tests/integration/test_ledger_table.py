"""The DynamoDB adapter itself, on DynamoDB Local: what only the real engine can show. Its errors
become domain errors, paged and throttled reads are finished, and items have the layout and size
the cost depends on. (What every ledger must do runs on both ledgers in tests/contract.)"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from posting.adapters import ledger_keys as keys
from posting.adapters.ledger_table import LedgerTable
from posting.domain.books import Checkpoint
from posting.domain.ledger import accounts_touched, plan_request
from posting.domain.model import Account, AccountState
from posting.domain.outcomes import (
    Decision,
    PostingAlreadyDecided,
    Reason,
    Status,
    TransientPostingError,
)
from posting.domain.plan import Entry, PostingPlan
from posting.domain.requests import parse_request
from tests.builders import account, leg, request

OPENED_AT = "2026-11-27T09:00:00.000Z"
DECIDED_AT = datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)


def open_accounts(ledger: LedgerTable, *terms: dict[str, Any]) -> None:
    for each in terms:
        ledger.open_account(Account.model_validate(each, strict=False), OPENED_AT)


def plan(ledger: LedgerTable, body: dict[str, Any], moment: datetime = DECIDED_AT) -> PostingPlan:
    """Plan a request against the accounts as they are stored right now."""
    parsed = parse_request(json.dumps(body))
    return plan_request(parsed, ledger.read_accounts(accounts_touched(parsed)), None, moment)


def record(ledger: LedgerTable, posting_plan: PostingPlan, message_id: str = "msg-1") -> Decision:
    return ledger.record_posting(posting_plan, posting_plan.request.content_hash(), message_id)


def rejection(posting_id: str, message_id: str = "msg-r", reason: Reason = Reason.INSUFFICIENT_FUNDS) -> Decision:
    return Decision(
        posting_id=posting_id,
        status=Status.REJECTED,
        reason=reason,
        detail="not enough money",
        request_hash="h" * 64,
        decided_at="2026-11-27T10:00:00.123Z",
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
    fund = request("fund-alice", leg("funding", "debit", 5000), leg("acc-alice", "credit", 5000))
    record(ledger_table, plan(ledger_table, fund, datetime(2026, 11, 27, 9, 30, tzinfo=UTC)))
    return ledger_table


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
    ledger = LedgerTable(
        FailingClient(alice_and_bob.table.client, "transact_write_items", error), alice_and_bob.table_name
    )

    with pytest.raises(TransientPostingError):
        record(ledger, planned)


def test_throttled_reads_are_transient_errors(alice_and_bob):
    throttled = client_error("BatchGetItem", "ThrottlingException")
    ledger = LedgerTable(
        FailingClient(alice_and_bob.table.client, "batch_get_item", throttled), alice_and_bob.table_name
    )

    with pytest.raises(TransientPostingError):
        ledger.read_accounts(["acc-alice"])


def test_a_throttled_rejection_is_a_transient_error(ledger_table):
    throttled = client_error("PutItem", "ThrottlingException")
    ledger = LedgerTable(FailingClient(ledger_table.table.client, "put_item", throttled), ledger_table.table_name)

    with pytest.raises(TransientPostingError):
        ledger.record_rejection(rejection("pay-1"))
    assert ledger_table.get_decision("pay-1") is None


def test_unprocessed_keys_are_asked_for_again_until_read(alice_and_bob):
    client = UnprocessedReads(alice_and_bob.table.client, times=2)

    found = LedgerTable(client, alice_and_bob.table_name, sleep=lambda _: None).read_accounts(["acc-alice", "acc-bob"])

    assert {a: s.balance for a, s in found.items()} == {"acc-alice": 5000, "acc-bob": 0}
    assert client.calls == 3


def test_keys_that_stay_unprocessed_become_a_transient_error_not_an_endless_loop(alice_and_bob):
    waits: list[float] = []
    ledger = LedgerTable(
        UnprocessedReads(alice_and_bob.table.client, times=10**9), alice_and_bob.table_name, sleep=waits.append
    )

    with pytest.raises(TransientPostingError):
        ledger.read_accounts(["acc-alice"])
    assert len(waits) == 4  # backed off between the 5 attempts


# -- reading the whole table --------------------------------------------------------------------


def test_scan_returns_every_account_line_checkpoint_and_decision(alice_and_bob):
    posted = record(alice_and_bob, plan(alice_and_bob, request("pay-1")))
    rejected = alice_and_bob.record_rejection(rejection("pay-2"))
    funding_lane = next(line.lane for line in alice_and_bob.books.statement("funding")[1])
    _, since, _ = alice_and_bob.lane_since_checkpoint("funding", funding_lane, "2026-11-27T09:59:00.000Z")
    alice_and_bob.write_checkpoint(Checkpoint("funding", funding_lane, "2026-11-27T09:59:00.000Z", since))

    records = list(alice_and_bob.books.scan())

    accounts = {r.account_id: r.balance for r in records if isinstance(r, AccountState)}
    lines = {(r.account_id, r.sequence, r.posting_id) for r in records if isinstance(r, Entry)}
    decisions = {r.posting_id: r for r in records if isinstance(r, Decision)}
    # Stored: the funding account has no balance item, only lines (and here one checkpoint).
    assert accounts == {"funding": 0, "acc-alice": 3750, "acc-bob": 1250}
    assert lines == {
        ("funding", 0, "fund-alice"),
        ("acc-alice", 1, "fund-alice"),
        ("acc-alice", 2, "pay-1"),
        ("acc-bob", 1, "pay-1"),
    }
    assert next(r for r in records if isinstance(r, Checkpoint)).figures.posted == -5000
    assert decisions["pay-1"] == posted
    assert decisions["pay-2"] == rejected
    assert len(records) == 3 + 4 + 1 + 3


def test_an_unlimited_accounts_lines_spread_over_its_lanes_in_partitions_of_their_own(ledger_table):
    open_accounts(ledger_table, account("funding", overdraft_limit=None), account("acc-alice"))
    for n in range(40):
        body = request(f"fund-{n}", leg("funding", "debit", 10), leg("acc-alice", "credit", 10))
        record(ledger_table, plan(ledger_table, body, datetime(2026, 11, 27, 9, 0, n, tzinfo=UTC)))
    lanes = {line.lane for line in ledger_table.books.statement("funding")[1]}
    assert lanes == set(range(8))
    for lane in lanes:
        items = ledger_table.table.client.query(
            TableName=ledger_table.table_name,
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.lane_partition("funding", lane)}},
        )["Items"]
        assert items and all(item["entity"] == {"S": "entry"} for item in items)
    assert ledger_table.books.get_account("funding").balance == -400
    assert ledger_table.unlimited_accounts() == [("funding", 8)]


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
    from posting_cli.bench.item_sizes import item_size

    accounts = [f"acc-{uuid.uuid4()}" for _ in range(4)]
    open_accounts(ledger_table, *(account(a, overdraft_limit=None) for a in accounts))
    posting_id = f"pay-{uuid.uuid4()}"
    decision = record(ledger_table, plan(ledger_table, _card_settlement(posting_id, accounts)))

    item = ledger_table.table.client.get_item(TableName=ledger_table.table_name, Key=keys.posting_key(posting_id))[
        "Item"
    ]
    assert item_size(item) <= 1024  # one write unit (two in the transaction), not two (four)
    assert item["request_hash"] == {"B": bytes.fromhex(decision.request_hash)}
    assert ledger_table.get_decision(posting_id) == decision
    assert decision.request is not None and decision.request["metadata"]["merchant_id"] == "MID-0004567812"


def test_decisions_stored_in_the_layout_before_read_the_same_and_still_catch_duplicates(alice_and_bob):
    first = plan(alice_and_bob, request("pay-old"))
    decision = record(alice_and_bob, first)
    # Rewrite it as the layout before wrote it: every field its own attribute, the hash as hex text.
    old = keys.posting_key("pay-old") | keys.to_attributes(
        {"entity": "posting", **decision.model_dump(mode="json", exclude_none=True)}
    )
    alice_and_bob.table.client.put_item(TableName=alice_and_bob.table_name, Item=old)
    assert alice_and_bob.get_decision("pay-old") == decision

    with pytest.raises(PostingAlreadyDecided) as already:
        record(alice_and_bob, plan(alice_and_bob, request("pay-old")), message_id="msg-retry")
    assert already.value.decision == decision
    assert already.value.decision.request_hash == first.request.content_hash()  # a DUPLICATE, not a conflict


def test_the_clock_watch_measures_dynamodb_locals_answers(dynamodb_client):
    # DynamoDB Local runs on this host: its Date headers and this clock agree, so the offset's
    # bounds hold zero and the ledger goes on writing.
    from posting.adapters.clock import ClockWatch

    watch = ClockWatch().attach(dynamodb_client)
    for _ in range(3):
        dynamodb_client.list_tables()
    low, high = watch.bounds()
    assert low <= 0 <= high and high - low <= 1.5
    watch.check()
