"""Every kind of request the queue carries: one contract, discriminated by an optional `kind`.

Absent `kind` means `posting`, exactly the request that existed before kinds did (and its content
hash is unchanged). Every kind has its own client `posting_id` and is idempotent like a posting.

  posting   move posted money (model.PostingRequest)
  hold      put money on hold: each leg's amount becomes pending on its account
  capture   post a hold, whole or less (`legs`); what it leaves is released
  void      release a whole hold
  expiry    release a hold whose `expires_at` has passed (sent by the expiry sweeper)
  reversal  post the mirror of a posted posting or capture, whole or in part (`legs`)
  chain     up to 10 requests of the kinds above (not expiry), applied in order, all or nothing
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Discriminator, Field, StringConstraints, Tag, TypeAdapter

from posting.domain.model import (
    MAX_LEGS,
    Expectations,
    ExternalRef,
    Instant,
    Leg,
    MetadataKey,
    MetadataValue,
    PostingId,
    PostingRequest,
    _bounded_metadata,
    _Contract,
    _refuse_duplicate_keys,
    canonical_hash,
)

Description = Annotated[str, StringConstraints(max_length=256)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], AfterValidator(_bounded_metadata)]
Legs = Annotated[list[Leg], Field(min_length=2, max_length=MAX_LEGS)]


class _KindRequest(_Contract):
    posting_id: PostingId
    effective_at: Instant | None = None  # absent: when it is decided
    expect: Expectations | None = None  # what must hold of accounts it changes
    external_ref: ExternalRef | None = None  # a reference from outside the ledger: `posting find --ref`
    description: Description = ""
    metadata: Metadata = Field(default_factory=dict)

    def content_hash(self) -> str:
        return canonical_hash(self)


class HoldRequest(_KindRequest):
    """Money on hold: each leg's amount is pending on its account until captured, voided or expired."""

    kind: Literal["hold"]
    legs: Legs
    expires_at: Instant | None = Field(default=None, description="absent: the hold never expires.")


class CaptureRequest(_KindRequest):
    """Post a hold: all of it without `legs`, less with `legs` (balanced, each within the hold's)."""

    kind: Literal["capture"]
    hold_id: PostingId
    legs: Legs | None = None


class VoidRequest(_KindRequest):
    """Release a whole hold."""

    kind: Literal["void"]
    hold_id: PostingId


class ExpiryRequest(_KindRequest):
    """Release a hold whose `expires_at` has passed; the expiry sweeper sends these."""

    kind: Literal["expiry"]
    hold_id: PostingId


class ReversalRequest(_KindRequest):
    """The mirror of a posted posting or capture: all of it without `legs`, part of it with them."""

    kind: Literal["reversal"]
    reverses: PostingId
    legs: Legs | None = None


def _kind_of(value: Any) -> str:
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else "posting" if kind is None else "invalid"


Member = PostingRequest | HoldRequest | CaptureRequest | VoidRequest | ReversalRequest
AnyMember = Annotated[
    Annotated[PostingRequest, Tag("posting")]
    | Annotated[HoldRequest, Tag("hold")]
    | Annotated[CaptureRequest, Tag("capture")]
    | Annotated[VoidRequest, Tag("void")]
    | Annotated[ReversalRequest, Tag("reversal")],
    Discriminator(_kind_of),
]
# A chain's transaction holds at most 100 items (DynamoDB's limit): its decision and each member's,
# one item per account with a limit, one per line, and one per hold or original settled outside it.
# Ten members of a 2-leg card payment each need at most 1 + 10 + 10 x (1 + 2 + 2) = 61 items.
MAX_CHAIN_MEMBERS = 10
MAX_TRANSACTION_ITEMS = 100


class ChainRequest(_KindRequest):
    """Several requests applied in order in one transaction: all of them, or none.

    Each member keeps its own posting_id and is decided as if it came alone right after the members
    before it (a capture may settle a hold placed earlier in the chain). If one member is refused,
    the chain is refused, naming the member and its reason, and no member's posting_id is used.
    """

    kind: Literal["chain"]
    requests: list[AnyMember] = Field(min_length=1, max_length=MAX_CHAIN_MEMBERS)


Request = PostingRequest | HoldRequest | CaptureRequest | VoidRequest | ExpiryRequest | ReversalRequest | ChainRequest
KINDS = ("posting", "hold", "capture", "void", "expiry", "reversal", "chain")


AnyRequest = Annotated[
    Annotated[PostingRequest, Tag("posting")]
    | Annotated[HoldRequest, Tag("hold")]
    | Annotated[CaptureRequest, Tag("capture")]
    | Annotated[VoidRequest, Tag("void")]
    | Annotated[ExpiryRequest, Tag("expiry")]
    | Annotated[ReversalRequest, Tag("reversal")]
    | Annotated[ChainRequest, Tag("chain")],
    Discriminator(_kind_of),
]
_REQUEST = TypeAdapter(AnyRequest)


def parse_request(body: str | bytes) -> Request:
    """Parse an SQS message body into a request of its kind; raises pydantic.ValidationError if it is none.

    As for a posting, a JSON object that names a key twice is refused.
    """
    _refuse_duplicate_keys(body)
    return _REQUEST.validate_json(body)


def request_from_record(record: dict[str, Any]) -> Request:
    """A request of any kind from its stored JSON form (a decision's `request`)."""
    return _REQUEST.validate_python(record, strict=False)


def kind_of(request: Request) -> str:
    return request.kind or "posting"


def request_json_schema() -> dict[str, Any]:
    return _REQUEST.json_schema(mode="validation")


EXPIRY_PREFIX = "expire:"  # the sweeper's namespace of posting_ids: no other request may use it


def expiry_posting_id(hold_id: str) -> str:
    """The posting_id the sweeper uses to expire a hold: derived, so resending it is a DUPLICATE."""
    candidate = f"{EXPIRY_PREFIX}{hold_id}"
    if len(candidate) <= 128:
        return candidate
    return EXPIRY_PREFIX + hashlib.sha256(hold_id.encode()).hexdigest()
