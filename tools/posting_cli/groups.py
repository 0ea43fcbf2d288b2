"""Which message group each request goes in, on a FIFO posting queue (`--group-by`).

A FIFO queue decides the requests of one group in the order they were sent, and the requests of
different groups independently, side by side. How to group is the producer's choice:

  linked   (the default) requests that share an account, or that name one another's posting_id (a
           capture its hold, a reversal its original, a chain its members), are one group: a file
           of "hold, capture, payout" is decided in its order, and requests that share nothing go
           side by side. An account every request touches (a settlement account) links them all.
  file     the whole submission is one group: strictly in order, one batch at a time.
  account  the first account a request names (say, the customer's); a request that names none (a
           capture, void or reversal without legs) goes with the request it names, if it is in the
           submission, else in a group named after that id.
  field:PATH  the value at PATH in the request (`field:metadata.customer`); a request without one
           is a group of its own.

A line that is not a request is a group of its own: it is refused for its content and holds
nothing back. Every group id is a valid MessageGroupId (1 to 128 letters, digits and punctuation).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from posting.domain.planning import accounts_of, member_ids, references_of
from posting.domain.requests import Request, parse_request

GROUPINGS = ("linked", "file", "account", "field:PATH")
_GROUP_ID = re.compile(r"[!-~]{1,128}", re.ASCII)


class GroupingError(ValueError):
    """A --group-by the tool does not know; the message says which it does."""


def check_grouping(group_by: str) -> str:
    if group_by in GROUPINGS[:3] or (group_by.startswith("field:") and len(group_by) > len("field:")):
        return group_by
    raise GroupingError(f"--group-by {group_by!r}: use one of {', '.join(GROUPINGS)}")


def group_ids(bodies: Sequence[str], group_by: str = "linked") -> list[str]:
    """One MessageGroupId per body, in order (see the module's docstring for each way to group)."""
    check_grouping(group_by)
    requests = [_request(body) for body in bodies]
    if group_by == "file":
        return ["file"] * len(bodies)
    if group_by == "linked":
        names = _linked(requests)
    elif group_by == "account":
        names = _by_account(requests)
    else:
        names = [_field(body, group_by.removeprefix("field:")) for body in bodies]
    return [_valid(name) if name is not None else f"line-{number}" for number, name in enumerate(names, start=1)]


def _request(body: str) -> Request | None:
    try:
        return parse_request(body)
    except Exception:  # noqa: BLE001 - a line that is no request is refused by the pipeline, not here
        return None


def _keys(request: Request) -> list[str]:
    """What links a request to others: the accounts it names, its own posting_ids and those it acts on."""
    ids = [request.posting_id, *member_ids(request), *references_of(request)]
    return [f"account:{account}" for account in accounts_of(request)] + [f"posting:{posting_id}" for posting_id in ids]


def _linked(requests: Sequence[Request | None]) -> list[str | None]:
    """Connected requests share a group, named after the first key of its first request."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    keyed = [_keys(request) if request is not None else [] for request in requests]
    for keys in keyed:
        for key in keys[1:]:
            first, other = root(keys[0]), root(key)
            if first != other:
                parent[other] = first
    names: dict[str, str] = {}
    for keys in keyed:  # the group's name: the first key seen of it, without its kind
        if keys:
            names.setdefault(root(keys[0]), keys[0].partition(":")[2])
    return [names[root(keys[0])] if keys else None for keys in keyed]


def _by_account(requests: Sequence[Request | None]) -> list[str | None]:
    group_of: dict[str, str] = {}  # posting_id -> its group, for requests that name it later
    names: list[str | None] = []
    for request in requests:
        if request is None:
            names.append(None)
            continue
        accounts = accounts_of(request)
        references = references_of(request)
        if accounts:
            name = accounts[0]
        elif references:
            name = group_of.get(references[0], references[0])
        else:
            name = request.posting_id
        for posting_id in [request.posting_id, *member_ids(request)]:
            group_of.setdefault(posting_id, name)
        names.append(name)
    return names


def _field(body: str, path: str) -> str | None:
    try:
        value: Any = json.loads(body)
    except ValueError:
        return None
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) and str(value) else None


def _valid(name: str) -> str:
    """The name as a MessageGroupId; one SQS would refuse becomes a digest of it."""
    return name if _GROUP_ID.fullmatch(name) else "g-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
