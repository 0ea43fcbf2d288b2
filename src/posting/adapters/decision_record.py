"""How a decision is laid out in its DynamoDB item: small enough that a typical posting's fits in 1 KB.

A write unit covers 1 KB of item, and in a transaction each unit is paid twice, so a decision item
of 1,025 bytes costs as much as one of 2,048. With realistic ids, a description and a few metadata
keys, a 4-leg card settlement stored naively takes 1,555 bytes, most of it twice over: the request
as a DynamoDB map (every key of every leg counted as an attribute name), the balances after it
(account ids again, eight named figures each) and the request hash as 64 hex characters.

The item keeps two kinds of attributes:

- **fields that are read by key, conditioned on or updated in place**, one attribute each, as
  before: `posting_id`, `status`, `reason`, `decided_at`, `message_id`, `kind`, `hold_id`,
  `reverses`, `expires_at`, `hold_state`, `settled_by`, `reversed`, `reversed_by`, `version`;
- **what never changes after the decision is written and is only read whole** (`request`,
  `balances`, `posted_legs`, `pending_legs`, `detail`) in one binary attribute, `content`: their
  JSON, zlib-compressed. The account ids that the legs and the balances share, and the repeated
  key names, compress away. `request_hash` is stored as its 32 raw bytes.

Items in the plain layout (the request as a map, the hash as hex text) are read too, as the same
`Decision`: a table holding both needs no migration, and a retry of such a request is a DUPLICATE.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from posting.domain.outcomes import Decision, Reason

CONTENT = "content"
CONTENT_FIELDS = ("request", "balances", "posted_legs", "pending_legs", "detail", "members")
_COMPRESSION_LEVEL = 9  # a decision is written once; the item is under 2 KB, so this costs microseconds


def decision_fields(decision: Decision) -> dict[str, Any]:
    """The item attributes (plain Python values, bytes for binaries) that store `decision`."""
    record = decision.model_dump(mode="json", exclude_none=True)
    content = {field: record.pop(field) for field in CONTENT_FIELDS if field in record}
    if not content.get("balances"):
        content.pop("balances", None)
    record["request_hash"] = _hash_bytes(decision.request_hash)
    if content:
        text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
        record[CONTENT] = zlib.compress(text.encode(), _COMPRESSION_LEVEL)
    return record


def decision_of(record: dict[str, Any]) -> Decision:
    """The decision stored in an item's attributes, in this layout or the one before it."""
    fields = {field: record[field] for field in Decision.model_fields if field in record}
    if CONTENT in record:
        fields |= json.loads(zlib.decompress(bytes(record[CONTENT])))
    fields["request_hash"] = _hash_text(fields["request_hash"])
    if "reason" in fields:
        fields["reason"] = Reason(fields["reason"])
    return Decision.model_validate(fields)


def _hash_bytes(request_hash: str) -> bytes | str:
    """A SHA-256 hex digest as its 32 bytes; anything else (never written by the pipeline) as text."""
    try:
        raw = bytes.fromhex(request_hash)
    except ValueError:
        return request_hash
    return raw if len(raw) == 32 and raw.hex() == request_hash else request_hash


def _hash_text(stored: Any) -> str:
    if isinstance(stored, str):
        return stored
    return bytes(stored).hex()
