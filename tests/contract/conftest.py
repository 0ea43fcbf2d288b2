"""The ledger contract runs on both ledgers: the in-memory fake and the adapter on DynamoDB Local."""

from __future__ import annotations

import pytest

from tests.fake_ledger import FakeLedger


@pytest.fixture(params=["fake", "dynamodb"])
def ledger(request: pytest.FixtureRequest):
    if request.param == "fake":
        return FakeLedger()
    return request.getfixturevalue("ledger_table")
