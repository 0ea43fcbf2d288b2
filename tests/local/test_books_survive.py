"""Books survive: attaching to an existing DynamoDB Local reuses the ledger table, as AWS retains it."""

from __future__ import annotations

import contextlib
import json
import uuid

import pytest

from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import Account
from posting_cli import operations
from posting_cli.local.tables import ExistingTableMismatch, ensure_table
from posting_cli.target import Target

pytestmark = pytest.mark.local_stack


@pytest.fixture
def table_name(dynamodb_client):
    name = f"books-{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(dynamodb_client.exceptions.ResourceNotFoundException):
        dynamodb_client.delete_table(TableName=name)


def _item_count(client, name: str) -> int:
    return int(client.scan(TableName=name, Select="COUNT", ConsistentRead=True)["Count"])


def test_an_existing_table_is_reused_with_its_items(dynamodb_client, template, table_name):
    props = template.table_definition("LedgerTable")
    created = ensure_table(dynamodb_client, table_name, props)
    dynamodb_client.put_item(TableName=table_name, Item={"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "ACCOUNT"}})
    again = ensure_table(dynamodb_client, table_name, props)
    assert again["TableArn"] == created["TableArn"]
    assert _item_count(dynamodb_client, table_name) == 1


def test_fresh_books_empty_the_table(dynamodb_client, template, table_name):
    props = template.table_definition("LedgerTable")
    ensure_table(dynamodb_client, table_name, props)
    dynamodb_client.put_item(TableName=table_name, Item={"PK": {"S": "ACCOUNT#a"}, "SK": {"S": "ACCOUNT"}})
    ensure_table(dynamodb_client, table_name, props, fresh=True)
    assert _item_count(dynamodb_client, table_name) == 0


def test_a_table_with_other_keys_is_left_alone_with_a_clear_error(dynamodb_client, template, table_name):
    dynamodb_client.create_table(
        TableName=table_name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ExistingTableMismatch, match="--fresh-books"):
        ensure_table(dynamodb_client, table_name, template.table_definition("LedgerTable"))
    assert dynamodb_client.describe_table(TableName=table_name)["Table"]["KeySchema"][0]["AttributeName"] == "id"


def _target(ledger_table: LedgerTable, endpoint_url: str) -> Target:
    outputs = {
        "PostingQueueUrl": "-",
        "DeadLetterQueueUrl": "-",
        "LedgerTableName": ledger_table.table_name,
        "EventBusName": "-",
        "ResultsLogGroupName": "-",
        "StateMachineArn": "-",
    }
    return Target(outputs=outputs, region="us-east-1", endpoints={"default": endpoint_url, "dynamodb": endpoint_url})


def _accounts(*terms: dict) -> list[Account]:
    return operations.parse_accounts(json.dumps(list(terms)))


def test_reopening_with_the_same_terms_is_a_no_op(ledger_table, dynamodb_local):
    target = _target(ledger_table, dynamodb_local.endpoint_url)
    bob = {"account_id": "bob", "currency": "EUR", "normal_balance": "credit", "overdraft_limit": 0}
    assert operations.open_accounts(target, _accounts(bob)) == (1, [])
    assert operations.open_accounts(target, _accounts(bob)) == (0, ["bob"])


def test_reopening_with_other_terms_is_refused_before_anything_opens(ledger_table, dynamodb_local):
    target = _target(ledger_table, dynamodb_local.endpoint_url)
    bob = {"account_id": "bob", "currency": "EUR", "normal_balance": "credit", "overdraft_limit": 0}
    operations.open_accounts(target, _accounts(bob))
    carol = {"account_id": "carol", "currency": "EUR", "normal_balance": "credit", "overdraft_limit": 0}
    with pytest.raises(operations.AccountTermsDiffer, match=r"bob \(overdraft_limit: 0 in the ledger, 500 asked\)"):
        operations.open_accounts(target, _accounts(carol, {**bob, "overdraft_limit": 500}))
    assert ledger_table.books.get_account("carol") is None
    assert ledger_table.books.get_account("bob").account.overdraft_limit == 0
