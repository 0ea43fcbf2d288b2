"""CapacityMode=PROVISIONED runs locally too: DynamoDB Local takes the table and its indexes with the
template's minimum units, and the auto scaling, which has nothing to scale here, is skipped."""

from __future__ import annotations

import uuid

import pytest

from posting_cli.local.tables import create_table
from posting_cli.local.template import Template

pytestmark = pytest.mark.local_stack


def test_a_provisioned_ledger_table_is_created_with_the_templates_minimums(dynamodb_client) -> None:
    template = Template.load(overrides={"CapacityMode": "PROVISIONED", "ProvisionedWriteCapacityMin": 40})
    name = f"provisioned-{uuid.uuid4().hex[:10]}"
    try:
        table = create_table(dynamodb_client, name, template.table_definition("LedgerTable"))
        assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 40
        assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == int(
            template.parameters["ProvisionedReadCapacityMin"]
        )
        assert {
            index["IndexName"]: index["ProvisionedThroughput"]["WriteCapacityUnits"]
            for index in table["GlobalSecondaryIndexes"]
        } == {
            "OpenHoldsByExpiry": 5,
            "UnlimitedAccounts": 5,
            "ValueDatedLines": 5,
            "ByExternalRef": 5,
        }
    finally:
        dynamodb_client.delete_table(TableName=name)
