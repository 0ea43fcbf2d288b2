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
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from posting.domain.currencies import ISO_4217_CODES

# A posting with N legs writes 1 posting record + at most N balance items + N entries in one
# TransactWriteItems, which holds at most 100 items: 2 * 49 + 1 = 99.
MAX_LEGS = 49
# Comfortably inside int64 and DynamoDB's 38-digit numbers, so no consumer ever overflows a sum.
MAX_AMOUNT = 10**15
# No balance or pending figure the ledger reports goes beyond the integers a JSON reader (a double)
# holds exactly: +/-(2^53 - 1).
MAX_FIGURE = 2**53 - 1
MAX_METADATA_BYTES = 2048
MAX_METADATA_KEYS = 16

POSTING_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$"
# A reference from outside the ledger (a card network's, a bank's, an invoice's): printable ASCII
# without spaces at either end, up to 128 characters.
EXTERNAL_REF_PATTERN = r"^[!-~]([ -~]{0,126}[!-~])?$"
ExternalRef = Annotated[
    str,
    StringConstraints(pattern=EXTERNAL_REF_PATTERN),
    Field(
        description="A reference from outside the ledger (a card network's, a bank's); `posting find --ref` finds it."
    ),
]
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


# Every instant the contract takes must survive any time-zone conversion and any arithmetic the ledger
# does on it (datetime's own range is years 1 to 9999, and converting 0001-01-01T00:00+01:00 to UTC
# overflows). Wide enough for backdated and future-dated postings decades away.
EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9000, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _representable(moment: datetime) -> datetime:
    try:
        in_utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        in_utc = None
    if in_utc is None or not EARLIEST_INSTANT <= in_utc <= LATEST_INSTANT:
        raise ValueError("must be between 1900-01-01T00:00:00Z and 9000-12-31T23:59:59.999999Z once converted to UTC")
    return moment


Instant = Annotated[
    AwareDatetime,
    AfterValidator(_representable),
    Field(description="ISO 8601 with a time zone; between years 1900 and 9000 in UTC."),
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
    balancing: Literal[True] | None = Field(
        default=None,
        description="true: move what the account can give, up to `amount` (one leg of a 2-leg posting; the "
        "other leg moves the same). The result event's `moved` says how much when it is less.",
    )


class Expectation(_Contract):
    """What a request expects of an account it changes, checked when it is decided."""

    account_id: AccountId
    version: int | None = Field(default=None, ge=0, description="The account's entry count, as last read.")
    available_at_least: int | None = Field(
        default=None, ge=-MAX_FIGURE, le=MAX_FIGURE, description="At least this much available, in minor units."
    )

    @model_validator(mode="after")
    def _expects_something(self) -> Expectation:
        if self.version is None and self.available_at_least is None:
            raise ValueError("an expectation names a version, an available_at_least, or both")
        return self

    def describe(self) -> str:
        said = []
        if self.version is not None:
            said.append(f"version {self.version}")
        if self.available_at_least is not None:
            said.append(f"at least {self.available_at_least} available")
        return f"{self.account_id} at {' and '.join(said)}"


MAX_EXPECTATIONS = 10
Expectations = Annotated[list[Expectation], Field(min_length=1, max_length=MAX_EXPECTATIONS)]


MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=256)]


def _bounded_metadata(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise ValueError(f"metadata has {len(metadata)} keys; at most {MAX_METADATA_KEYS} are allowed")
    size = len(json.dumps(metadata, separators=(",", ":")).encode())
    if size > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are allowed")
    return metadata


MAX_BALANCE_SHARDS = 64
# An account without a limit takes every posting without a shared item: each leg is one entry in one
# of its lanes (a partition key each). A lane's partition takes about 500 transactional entries per
# second on AWS, so 8 lanes carry about 4,000 postings/s through one settlement account.
DEFAULT_LANES = 8


class PostingRequest(_Contract):
    """A balanced double-entry movement, identified by the client's idempotency key `posting_id`."""

    kind: Literal["posting"] | None = Field(default=None, description="absent or posting: a movement of posted money.")
    posting_id: PostingId
    legs: list[Leg] = Field(min_length=2, max_length=MAX_LEGS)
    # Absent: the time the ledger decides the posting. The hash covers the request as sent, so a
    # retry that omits it again is a DUPLICATE, never a conflict.
    effective_at: Instant | None = None
    expect: Expectations | None = Field(
        default=None, description="What must hold of accounts this request changes, or it is PRECONDITION_FAILED."
    )
    external_ref: ExternalRef | None = None
    description: Annotated[str, StringConstraints(max_length=256)] = ""
    metadata: Annotated[dict[MetadataKey, MetadataValue], AfterValidator(_bounded_metadata)] = Field(
        default_factory=dict
    )

    def canonical_content(self) -> dict[str, Any]:
        """The request's content in its canonical form: what the content hash covers.

        Fields left out of the request (None) are left out here too, so adding an optional field to
        the contract never changes the hash of a request that does not use it. Instants are in UTC.
        """
        return canonical_content(self)

    def content_hash(self) -> str:
        """SHA-256 of the request's canonical form: equal for equal content, whatever the key order,
        the spacing or the time zone `effective_at` was written in.

        The form is versioned and spelled out here (not left to a serializer's defaults), because
        stored hashes must keep matching across library upgrades: a retry after a deploy must still
        be a DUPLICATE, not an IDEMPOTENCY_CONFLICT.
        """
        return canonical_hash(self)


def canonical_content(request: BaseModel) -> dict[str, Any]:
    """The canonical content of a request of any kind (see PostingRequest.canonical_content)."""
    content = request.model_dump(mode="json", exclude_none=True)
    if content.get("kind") == "posting":
        del content["kind"]  # the default, said or not: the same request
    for name in ("effective_at", "expires_at"):
        moment = getattr(request, name, None)
        if isinstance(moment, datetime):
            content[name] = moment.astimezone(UTC).isoformat(timespec="microseconds")
    return content


def canonical_hash(request: BaseModel) -> str:
    """The content hash of a request of any kind (see PostingRequest.content_hash)."""
    canonical = json.dumps({"canonical_form": 1, **canonical_content(request)}, sort_keys=True, separators=(",", ":"))
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
    balance_shards: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BALANCE_SHARDS,
        description="Unlimited accounts only: the lanes their entries spread over (absent: "
        f"{DEFAULT_LANES}; each lane takes about 500 postings/s on AWS). An account with a limit keeps "
        "one balance item: absent or 1.",
    )

    @model_validator(mode="after")
    def _lanes_are_for_unlimited_accounts(self) -> Account:
        # A limit is checked by a condition on the account's one balance item.
        if (self.balance_shards or 1) > 1 and self.overdraft_limit is not None:
            raise ValueError(
                "an account with balance_shards > 1 must have overdraft_limit null: an account with a "
                "limit keeps one balance item, which DynamoDB checks against the limit at each posting"
            )
        return self

    @property
    def is_unlimited(self) -> bool:
        """No limit to check: it takes postings as entries only, with no shared item."""
        return self.overdraft_limit is None

    @property
    def lanes(self) -> int:
        """How many lanes its entries spread over (1 for an account with a limit: its own partition)."""
        if not self.is_unlimited:
            return 1
        return self.balance_shards or DEFAULT_LANES


class AccountState(BaseModel):
    """An account's terms and its figures: posted (`balance`), pending debits and credits.

    `version` counts the entries ever posted to the account. `known` is False when only the terms are
    known (what planning needs of an account whose figures it does not read).
    """

    model_config = ConfigDict(frozen=True)

    account: Account
    balance: int = 0  # posted
    version: int = 0
    pending_debits: int = 0
    pending_credits: int = 0
    # Of an account with a limit: when its last entry was recorded, so the next one sorts after it.
    last_recorded_at: str = ""
    known: bool = True
    # As the balance item of an account with a limit stores it (what DynamoDB checks a debit
    # against); reconciliation proves it equals `headroom`.
    recorded_headroom: int | None = None
    # The account's lifecycle: how many acts it has had (its opening is 1), and since when its status.
    revision: int = 1
    status_since: str | None = None

    @property
    def account_id(self) -> str:
        return self.account.account_id

    @property
    def posted(self) -> int:
        return self.balance

    @property
    def available(self) -> int:
        """Posted less what holds may still take out; pending incoming money is never spendable."""
        return available_balance(self.account.normal_balance, self.balance, self.pending_debits, self.pending_credits)

    @property
    def headroom(self) -> int | None:
        """How much more its available balance may still go down (None: unlimited)."""
        limit = self.account.overdraft_limit
        return None if limit is None else self.available + limit

    def signed_amount(self, leg: Leg) -> int:
        """How a leg moves this account's balance: up on its normal side, down on the other."""
        return signed_amount(self.account.normal_balance, leg.side, leg.amount)


def signed_amount(normal_balance: Side | str, side: Side | str, amount: int) -> int:
    """A leg's effect on a balance: up on the account's normal side, down on the other."""
    return amount if side == normal_balance else -amount


def available_balance(normal_balance: Side, posted: int, pending_debits: int, pending_credits: int) -> int:
    """Credit-normal: posted - pending debits; debit-normal: posted - pending credits."""
    return posted - (pending_debits if normal_balance == Side.CREDIT else pending_credits)


def parse_posting_request(body: str | bytes) -> PostingRequest:
    """Parse an SQS message body into a request; raises pydantic.ValidationError when it is not one.

    A JSON object that names a key twice is refused: parsers disagree on which value wins, so
    `"amount": -5, "amount": 5` must never post.
    """
    _refuse_duplicate_keys(body)
    return PostingRequest.model_validate_json(body)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _refuse_duplicate_keys(body: str | bytes) -> None:
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as duplicate:
        key = json.dumps(duplicate.key[:64])
        error = PydanticCustomError("duplicate_key", "a JSON object names the key {key} more than once", {"key": key})
        line: InitErrorDetails = {"type": error, "loc": ("body",), "input": None}
        raise ValidationError.from_exception_data(PostingRequest.__name__, [line]) from None
    except (ValueError, RecursionError):
        pass  # not JSON the standard library reads: the model's own parser says what is wrong


def differing_fields(recorded: Any, requested: Any, path: str = "") -> list[str]:
    """The paths (`legs[0].amount`, `effective_at`) where two canonical contents differ; no values."""
    if isinstance(recorded, dict) and isinstance(requested, dict):
        paths: list[str] = []
        for key in sorted(set(recorded) | set(requested)):
            where = f"{path}.{key}" if path else str(key)
            if key in recorded and key in requested:
                paths += differing_fields(recorded[key], requested[key], where)
            else:
                paths.append(where)
        return paths
    if isinstance(recorded, list) and isinstance(requested, list):
        paths = []
        for index in range(max(len(recorded), len(requested))):
            where = f"{path}[{index}]"
            if index < len(recorded) and index < len(requested):
                paths += differing_fields(recorded[index], requested[index], where)
            else:
                paths.append(where)
        return paths
    return [] if recorded == requested else [path or "body"]


def utc_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, millisecond precision: sortable as text."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
