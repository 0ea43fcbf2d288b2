"""The ledger table's layout: every key, and how each record maps to and from its item.

Single table, keys `PK` and `SK` (both strings):

  PK                        SK                                    item
  ACCOUNT#<id>              ACCOUNT                               terms; with a limit: the balance item
                                                                  (`balance` = posted, `pending_debits`,
                                                                  `pending_credits`, `headroom`, `version`,
                                                                  `last_recorded_at`)
  ACCOUNT#<id>              ENTRY#<recorded_at>#<posting_id>#<nn> a line of an account with a limit
  ACCOUNT#<id>#LANE#<k>     ENTRY#<recorded_at>#<posting_id>#<nn> a line of an account without a limit
  ACCOUNT#<id>#LANE#<k>     ENTRY#<through>#~                     a checkpoint: the lane's sums so far
  POSTING#<id>              POSTING                               the decision for a posting_id
                                                                  (decision_record.py)
  ACCOUNT#<id>              REVISION#<nnnnnnnnnn>                 each act on the account (open, freeze, ...)
  LEDGER                    PERIOD                                the period close in force
  LEDGER                    CLOSE#<through>                       each period close, as recorded
  OUTBOX                    <recorded_at>#<PK>|<SK>               a record owed its event (the sweeper
                                                                  publishes it, then deletes this)

Lines sort by the time they were recorded; `nn` is the leg (lines of pending money alone, a hold's
or a release's, are numbered from 49 up). A checkpoint's key sorts right after every line recorded at or before its
instant (`~` follows every character a posting_id may hold), so walking a lane backwards from any
instant meets the lines after the last checkpoint, then the checkpoint.

Sparse indexes: `OpenHoldsByExpiry` (only open holds with an expiry carry its keys: the
sweeper's Query for expired holds), `UnlimitedAccounts` (only accounts without a limit: the
sweeper's Query for the lanes to checkpoint) and `ValueDatedLines` (only lines whose value date is
not the instant they were recorded, in their own partition: `BACK#<recorded_at>#...` when dated
before, `FWD#<effective_at>#...` when dated after; a balance as of a value date is the balance as
recorded then, corrected by these). A fourth, `ByExternalRef`, holds the decisions of requests
that carried an `external_ref`, by that reference and the decision time.

Nothing outside this module spells a key.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from posting.adapters.attribute_values import from_attribute_value, to_attribute_value
from posting.adapters.decision_record import decision_fields, decision_of
from posting.domain.accounts import AccountAct
from posting.domain.books import Checkpoint, Figures
from posting.domain.model import Account, AccountState, AccountStatus, Side
from posting.domain.outcomes import Decision
from posting.domain.periods import Period
from posting.domain.plan import Entry, lane_of

KEY_NAMES = ("PK", "SK")  # the table's partition and sort key attributes
OPEN_HOLDS_INDEX = "OpenHoldsByExpiry"
OPEN_HOLD_BUCKETS = 16  # spreads the sparse index's writes; the sweeper queries each bucket
UNLIMITED_INDEX = "UnlimitedAccounts"
UNLIMITED_KEY = "unlimited"  # the index's partition key attribute; one value for every such account
UNLIMITED_VALUE = "ACCOUNT"
DECISION_PREFIX = "POSTING#"
ENTRY_PREFIX = "ENTRY#"
ENTRIES_END = "ENTRY#~"  # sorts after every line and checkpoint
CHECKPOINT_MARK = "~"
VALUE_INDEX = "ValueDatedLines"
VALUE_KEYS = ("value_partition", "value_key")  # the index's keys; only lines with a value date of their own
BACK_PREFIX = "BACK#"  # a line dated before it was recorded, by the instant it was recorded
FORWARD_PREFIX = "FWD#"  # a line dated after it was recorded, by its value date
PERIOD_PARTITION = "LEDGER"
EXTERNAL_REF_INDEX = "ByExternalRef"
EXTERNAL_REF_KEYS = ("external_ref", "decided_at")  # only decisions of requests that carried one


def account_partition(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def account_id_of(partition: str) -> str:
    """The account of an account item's partition key."""
    return partition.removeprefix("ACCOUNT#")


def lane_partition(account_id: str, lane: int) -> str:
    """Each lane of an account without a limit is its own partition key: N lanes spread its lines
    over N partitions, so the account is not capped by one partition's write units."""
    return f"ACCOUNT#{account_id}#LANE#{lane:02d}"


def account_key(account_id: str) -> dict[str, Any]:
    return {"PK": {"S": account_partition(account_id)}, "SK": {"S": "ACCOUNT"}}


def posting_key(posting_id: str) -> dict[str, Any]:
    return {"PK": {"S": f"{DECISION_PREFIX}{posting_id}"}, "SK": {"S": "POSTING"}}


def posting_id_of(partition: str) -> str:
    """The posting_id of a decision item's partition key."""
    return partition.removeprefix(DECISION_PREFIX)


def is_line(sort_key: str) -> bool:
    """Whether a sort key is a line's (or a checkpoint's): the ENTRY# range of a partition."""
    return sort_key.startswith(ENTRY_PREFIX)


def entry_partition(entry: Entry) -> str:
    return account_partition(entry.account_id) if entry.lane is None else lane_partition(entry.account_id, entry.lane)


def entry_sort_key(recorded_at: str, posting_id: str, leg: int) -> str:
    return f"{ENTRY_PREFIX}{recorded_at}#{posting_id}#{leg:02d}"


def entry_key(entry: Entry) -> dict[str, Any]:
    return {
        "PK": {"S": entry_partition(entry)},
        "SK": {"S": entry_sort_key(entry.recorded_at, entry.posting_id, entry.leg)},
    }


def at_or_before(moment: str) -> str:
    """The highest sort key of a line or checkpoint recorded at or before `moment`."""
    return f"{ENTRY_PREFIX}{moment}#{CHECKPOINT_MARK}"


def checkpoint_key(checkpoint: Checkpoint) -> dict[str, Any]:
    return {
        "PK": {"S": lane_partition(checkpoint.account_id, checkpoint.lane)},
        "SK": {"S": at_or_before(checkpoint.through)},
    }


def back_dated_range(after: str, through: str | None) -> tuple[str, str]:
    """The index's keys of lines dated before they were recorded, recorded after `after` and at or
    before `through` (None: up to now)."""
    upper = f"{BACK_PREFIX}{through}#{CHECKPOINT_MARK}" if through else f"{BACK_PREFIX}{CHECKPOINT_MARK}"
    return f"{BACK_PREFIX}{after}#{CHECKPOINT_MARK}", upper


def forward_dated_range(after: str, through: str | None) -> tuple[str, str]:
    """The index's keys of lines dated after they were recorded, dated after `after` and at or before
    `through` (None: any later date)."""
    upper = f"{FORWARD_PREFIX}{through}#{CHECKPOINT_MARK}" if through else f"{FORWARD_PREFIX}{CHECKPOINT_MARK}"
    return f"{FORWARD_PREFIX}{after}#{CHECKPOINT_MARK}", upper


def _value_keys(entry: Entry) -> dict[str, str]:
    """A line whose value date is not the instant it was recorded is also in the ValueDatedLines
    index: by when it was recorded if dated before, by its value date if dated after."""
    if not entry.effective_at or entry.effective_at == entry.recorded_at:
        return {}
    if entry.effective_at < entry.recorded_at:
        position = f"{BACK_PREFIX}{entry.recorded_at}"
    else:
        position = f"{FORWARD_PREFIX}{entry.effective_at}"
    return {
        VALUE_KEYS[0]: entry_partition(entry),
        VALUE_KEYS[1]: f"{position}#{entry.posting_id}#{entry.leg:02d}",
    }


def period_key() -> dict[str, Any]:
    return {"PK": {"S": PERIOD_PARTITION}, "SK": {"S": "PERIOD"}}


CLOSE_PREFIX = "CLOSE#"


def close_key(through: str) -> dict[str, Any]:
    return {"PK": {"S": PERIOD_PARTITION}, "SK": {"S": f"{CLOSE_PREFIX}{through}"}}


def revision_key(account_id: str, revision: int) -> dict[str, Any]:
    return {"PK": {"S": account_partition(account_id)}, "SK": {"S": f"REVISION#{revision:010d}"}}


OUTBOX_PARTITION = "OUTBOX"


def outbox_key(recorded_at: str, pointer: str) -> dict[str, Any]:
    return {"PK": {"S": OUTBOX_PARTITION}, "SK": {"S": f"{recorded_at}#{pointer}"}}


def open_hold_bucket(hold_id: str) -> str:
    return f"HOLDS#{lane_of(hold_id, OPEN_HOLD_BUCKETS):02d}"


def open_hold_bucket_name(bucket: int) -> str:
    return f"HOLDS#{bucket:02d}"


# -- items -----------------------------------------------------------------------------------------


def to_attributes(record: dict[str, Any]) -> dict[str, Any]:
    return {name: to_attribute_value(value) for name, value in record.items()}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _plain(from_attribute_value(value)) for name, value in item.items()}


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the ledger only ever stores integers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, list):
        return [_plain(element) for element in value]
    if isinstance(value, dict):
        return {key: _plain(element) for key, element in value.items()}
    return value


def account_item(account: Account, opened_at: str) -> dict[str, Any]:
    record: dict[str, Any] = {"entity": "account", **account.model_dump(mode="json", exclude_none=True)}
    record["overdraft_limit"] = account.overdraft_limit  # null is a term: unlimited
    record |= {"opened_at": opened_at, "revision": 1, "status_since": opened_at}
    if account.is_unlimited:
        record |= {"lanes": account.lanes, UNLIMITED_KEY: UNLIMITED_VALUE}
    else:
        record |= {
            "balance": 0,
            "pending_debits": 0,
            "pending_credits": 0,
            "headroom": account.overdraft_limit,
            "version": 0,
        }
    return account_key(account.account_id) | to_attributes(record)


def account_state(record: dict[str, Any]) -> AccountState:
    """An account as stored: its terms, and the figures of its balance item if it has one (an
    account without a limit comes with its terms only: `known` is False)."""
    account = Account.model_validate(
        {field: record[field] for field in Account.model_fields if field in record}, strict=False
    )
    return AccountState(
        account=account,
        balance=record.get("balance", 0),
        version=record.get("version", 0),
        pending_debits=record.get("pending_debits", 0),
        pending_credits=record.get("pending_credits", 0),
        last_recorded_at=record.get("last_recorded_at", ""),
        known=not account.is_unlimited,
        recorded_headroom=record.get("headroom"),
        revision=record.get("revision", 1),
        status_since=record.get("status_since", record.get("opened_at")),
    )


def entry_item(entry: Entry) -> dict[str, Any]:
    record: dict[str, Any] = {
        "entity": "entry",
        "account_id": entry.account_id,
        "posting_id": entry.posting_id,
        "side": str(entry.side),
        "amount": entry.amount,
        "currency": entry.currency,
        "kind": entry.kind,
        "leg": entry.leg,
        "recorded_at": entry.recorded_at,
        "effective_at": entry.effective_at,
    }
    if entry.pending:
        record["pending"] = True
    else:
        record["signed_amount"] = entry.signed_amount
    if entry.pending_debits or entry.pending_credits:
        record |= {"pending_debits": entry.pending_debits, "pending_credits": entry.pending_credits}
    if entry.balance_after is not None:
        record |= {"balance_after": entry.balance_after, "sequence": entry.sequence}
    if entry.pending_debits_after is not None and entry.pending_credits_after is not None:
        record |= {
            "pending_debits_after": entry.pending_debits_after,
            "pending_credits_after": entry.pending_credits_after,
        }
    if entry.lane is not None:
        record["lane"] = entry.lane
    return entry_key(entry) | to_attributes(record | _value_keys(entry))


def entry_of(record: dict[str, Any]) -> Entry:
    return Entry(
        account_id=record["account_id"],
        posting_id=record["posting_id"],
        side=Side(record["side"]),
        amount=record["amount"],
        currency=record["currency"],
        kind=record.get("kind", "posting"),
        leg=record.get("leg", 0),
        signed_amount=record.get("signed_amount", 0),
        pending_debits=record.get("pending_debits", 0),
        pending_credits=record.get("pending_credits", 0),
        pending=bool(record.get("pending", False)),
        lane=record.get("lane"),
        recorded_at=record.get("recorded_at", ""),
        effective_at=record.get("effective_at", ""),
        balance_after=record.get("balance_after"),
        pending_debits_after=record.get("pending_debits_after"),
        pending_credits_after=record.get("pending_credits_after"),
        sequence=record.get("sequence", 0),
    )


def checkpoint_item(checkpoint: Checkpoint) -> dict[str, Any]:
    figures = checkpoint.figures
    record = {
        "entity": "checkpoint",
        "account_id": checkpoint.account_id,
        "lane": checkpoint.lane,
        "through": checkpoint.through,
        "posted": figures.posted,
        "pending_debits": figures.pending_debits,
        "pending_credits": figures.pending_credits,
        "entries": figures.entries,
    }
    return checkpoint_key(checkpoint) | to_attributes(record)


def checkpoint_of(record: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        account_id=record["account_id"],
        lane=record["lane"],
        through=record["through"],
        figures=Figures(record["posted"], record["pending_debits"], record["pending_credits"], record["entries"]),
    )


def revision_item(act: AccountAct) -> dict[str, Any]:
    """An account's act as recorded: its revision, what it left the account as, who, when and why."""
    record = {
        "entity": "account_revision",
        **{name: getattr(act, name) for name in _ACT_FIELDS},
        "status": str(act.status),
    }
    return revision_key(act.account_id, act.revision) | to_attributes(record)


_ACT_FIELDS = (
    "account_id",
    "act",
    "status",
    "overdraft_limit",
    "previous_limit",
    "revision",
    "recorded_at",
    "by",
    "note",
    "currency",
)


def act_of(record: dict[str, Any]) -> AccountAct:
    return AccountAct(
        account_id=str(record["account_id"]),
        act=str(record["act"]),
        status=AccountStatus(str(record["status"])),
        overdraft_limit=record.get("overdraft_limit"),
        previous_limit=record.get("previous_limit"),
        revision=int(record["revision"]),
        recorded_at=str(record["recorded_at"]),
        by=str(record.get("by") or ""),
        note=str(record.get("note") or ""),
        currency=str(record.get("currency") or ""),
    )


def revisions_range() -> tuple[str, str]:
    return "REVISION#", "REVISION#~"


def announcement_item(recorded_at: str, record_key: dict[str, Any]) -> dict[str, Any]:
    """A note in the outbox that the record at `record_key` is owed its event: written in the act's
    transaction, read, published and deleted by the sweeper. It points at the record; the event is
    built from the record itself."""
    pointer = f"{record_key['PK']['S']}|{record_key['SK']['S']}"
    return outbox_key(recorded_at, pointer) | to_attributes(
        {"entity": "announcement", "record_pk": record_key["PK"]["S"], "record_sk": record_key["SK"]["S"]}
    )


def announced_record_key(record: dict[str, Any]) -> dict[str, Any]:
    return {"PK": {"S": str(record["record_pk"])}, "SK": {"S": str(record["record_sk"])}}


def period_item(period: Period) -> dict[str, Any]:
    record = {"entity": "period", **{name: value for name, value in period.__dict__.items() if value is not None}}
    return period_key() | to_attributes(record)


def period_of(record: dict[str, Any] | None) -> Period:
    if record is None:
        return Period()
    return Period(**{name: record[name] for name in Period.__dataclass_fields__ if name in record})


def close_item(period: Period) -> dict[str, Any]:
    assert period.through is not None
    record = {"entity": "period_close", **{name: value for name, value in period.__dict__.items() if value is not None}}
    return close_key(period.through) | to_attributes(record)


def decision_item(decision: Decision) -> dict[str, Any]:
    return posting_key(decision.posting_id) | to_attributes({"entity": "posting", **decision_fields(decision)})


def decision_from(record: dict[str, Any]) -> Decision:
    return decision_of(record)
