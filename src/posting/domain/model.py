"""The posting contract and the account model, as pydantic models.

These models are the published contract: `schema/posting-request.schema.json` and
`schema/account.schema.json` are generated from them (`make schema`) and checked in tests.
Money is always an `int` in the currency's minor units; parsing is strict, so `12.5`, `"1250"`
and `true` are rejected rather than coerced.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from posting.domain.currencies import ISO_4217_CODES

# A posting with N legs writes 1 posting record + at most N balance items + N entries in one
# TransactWriteItems, which holds at most 100 items: 2 * 49 + 1 = 99.
MAX_LEGS = 49
# Comfortably inside int64 and DynamoDB's 38-digit numbers, so no consumer ever overflows a sum.
MAX_AMOUNT = 10**15
MAX_METADATA_BYTES = 2048
MAX_METADATA_KEYS = 16

POSTING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
PostingId = Annotated[str, StringConstraints(pattern=POSTING_ID_PATTERN)]
AccountId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")]


def _known_currency(code: str) -> str:
    if code not in ISO_4217_CODES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_known_currency),
    Field(json_schema_extra={"enum": sorted(ISO_4217_CODES)}, description="ISO 4217 alphabetic code."),
]


class Side(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountStatus(StrEnum):
    OPEN = "open"
    FROZEN = "frozen"
    CLOSED = "closed"


class _Contract(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Leg(_Contract):
    """One side of a movement on one account."""

    account_id: AccountId
    side: Side
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="Positive integer in minor units (cents).")
    currency: Currency


MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=256)]


def _bounded_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed")
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed")
    return metadata


class PostingRequest(_Contract):
    """A balanced double-entry movement, identified by the client's idempotency key `posting_id`."""

    posting_id: PostingId
    legs: list[Leg] = Field(min_length=2, max_length=MAX_LEGS)
    effective_at: AwareDatetime
    description: Annotated[str, StringConstraints(max_length=256)] = ""
    metadata: Annotated[dict[MetadataKey, MetadataValue], AfterValidator(_bounded_metadata)] = Field(
        default_factory=dict
    )

    def content_hash(self) -> str:
        """SHA-256 of the request's canonical form: equal for equal content, whatever the key order,
        the spacing or the time zone `effective_at` was written in.

        The form is versioned and spelled out here (not left to a serializer's defaults), because
        stored hashes must keep matching across library upgrades: a retry after a deploy must still
        be a DUPLICATE, not an IDEMPOTENCY_CONFLICT.
        """
        content = self.model_dump(mode="json")
        content["effective_at"] = self.effective_at.astimezone(UTC).isoformat(timespec="microseconds")
        canonical = json.dumps({"canonical_form": 1, **content}, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Account(_Contract):
    """An account as it is opened. Balances start at zero; money enters only through postings."""

    account_id: AccountId
    currency: Currency
    normal_balance: Side = Field(
        description="credit for customer liabilities (balance = credits - debits), debit for assets (the reverse)."
    )
    overdraft_limit: int | None = Field(
        ge=0,
        le=MAX_AMOUNT,
        description="0: never below zero; N: may go down to -N; null: unlimited (funding, settlement).",
    )
    status: AccountStatus = AccountStatus.OPEN


class AccountState(BaseModel):
    """An account as stored: the opening terms plus the running balance and its version.

    `version` counts the entries ever posted to the account; it is the optimistic lock that every
    posting checks, so a balance is only ever replaced by one computed from the balance it read.
    """

    model_config = ConfigDict(frozen=True)

    account: Account
    balance: int = 0
    version: int = 0

    @property
    def account_id(self) -> str:
        return self.account.account_id

    def signed_amount(self, leg: Leg) -> int:
        """How a leg moves this account's balance: up on its normal side, down on the other."""
        return leg.amount if leg.side == self.account.normal_balance else -leg.amount


def parse_posting_request(body: str | bytes) -> PostingRequest:
    """Parse an SQS message body into a request; raises pydantic.ValidationError when it is not one."""
    return PostingRequest.model_validate_json(body)


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, millisecond precision: sortable as text."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
