"""DynamoDB Local as strict as AWS about transaction conflicts: a small proxy in front of it.

DynamoDB Local executes transactions one at a time, so two of them never overlap and AWS's conflict
rules never fire there. This module puts an HTTP proxy on 127.0.0.1 between every local client and
DynamoDB Local. It reads each request's ``X-Amz-Target`` and JSON body, keeps the set of items that
writes are holding, refuses what AWS refuses, with AWS's error shapes, and forwards the rest
unchanged over keep-alive connections. :func:`~posting_cli.local.dynamodb_local.attach_or_start`
puts it in front of every DynamoDB it returns, unless the rules are switched off.

The rules, from AWS's documentation:

* Developer Guide, "Amazon DynamoDB Transactions: How it works", section "Transaction conflict
  handling in DynamoDB"
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html):
  a conflict occurs when "a PutItem, UpdateItem, or DeleteItem request for an item conflicts with
  an ongoing TransactWriteItems request that includes the same item", when "an item within a
  TransactWriteItems request is part of another ongoing TransactWriteItems request", and when "an
  item within a TransactGetItems request is part of an ongoing TransactWriteItems, BatchWriteItem,
  PutItem, UpdateItem, or DeleteItem request". A rejected single write fails with
  TransactionConflictException; a rejected transaction with TransactionCanceledException. GetItem
  never conflicts ("both operations can succeed"); BatchGetItem, Query and Scan are read-committed.
* API Reference, TransactWriteItems: DynamoDB rejects the whole request if "an ongoing operation is
  in the process of updating the same item". TransactGetItems: if "a conflicting operation is in
  the process of updating an item to be read".
* API Reference, TransactionCanceledException: reasons come "in the order of requested items"; an
  item without error has the code "None" and no message; a conflict is "Code: TransactionConflict,
  Message: Transaction is ongoing for the item". TransactionConflictException: "Operation was
  rejected because there is an ongoing transaction for the item". TransactionInProgressException:
  "The transaction with the given request token is already in progress."

What this proxy does with them:

* TransactWriteItems (Put, Update, Delete, ConditionCheck alike): cancelled if any of its items is
  held by another ongoing TransactWriteItems or is being written by an ongoing PutItem, UpdateItem,
  DeleteItem or BatchWriteItem. HTTP 400, ``TransactionCanceledException``, one reason per action:
  ``TransactionConflict`` for the held items, ``None`` for the others, and AWS's message ("Transaction
  cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]").
  A refused transaction holds nothing and never reaches DynamoDB Local. A second request with the
  ``ClientRequestToken`` of a transaction still in flight gets ``TransactionInProgressException``.
* PutItem, UpdateItem, DeleteItem on an item held by an ongoing TransactWriteItems: HTTP 400,
  ``TransactionConflictException``, "Transaction is ongoing for the item".
* TransactGetItems: cancelled like a TransactWriteItems if one of its items is held by a
  transaction or being written by a single or batch write when it arrives. AWS also cancels a read
  transaction that a write overtakes while it runs: a write admitted on one of its items while it is
  in flight turns its answer into the same cancellation.
* BatchWriteItem: AWS documents no conflict for it, only that each of its puts and deletes is
  serializable with transactions, and that a write the batch could not perform comes back in
  ``UnprocessedItems`` for the caller to retry. So a put or delete on an item held by an ongoing
  TransactWriteItems is not performed and comes back in ``UnprocessedItems``; the others are
  forwarded. This is an inference from the documentation, stricter than passing it through.
* GetItem, BatchGetItem, Query, Scan and every other operation: forwarded untouched.

How long an item stays in flight: a TransactWriteItems holds its items from the moment it arrives
until DynamoDB Local has answered it plus τ (tau); only then are they released and the answer sent,
so a client's next call never conflicts with its own finished transaction. Single writes, batch
writes and read transactions are in flight for their real duration only.

τ defaults to 20 ms (``DEFAULT_TAU_MS``). AWS's documentation gives no latency for transactions. The
DynamoDB transactions paper (Idziorek et al., "Distributed Transactions at Scale in Amazon
DynamoDB", USENIX ATC 2023) describes the mechanism, a two-phase protocol in which a transaction's
items stay prepared from its prepare phase to its commit phase (the window during which the rules
above apply), but its latency plots carry no absolute values. The nearest published measurement is
Alex DeBrie's "DynamoDB Transactions Performance Testing" (alexdebrie.com, 2020; code and table in
github.com/alexdebrie/dynamodb-performance-testing), run from Lambda in the table's region: a
5-item TransactWriteItems took 19.4 ms at best, 25.3 ms at p50, 30.7 ms at p90 and 92.5 ms at p99,
where a PutItem took 7.55 ms at p50. With τ = 20 ms plus the few milliseconds DynamoDB Local itself
takes, a local transaction holds its items about as long as a typical one takes on AWS, end to end.

Item identity is table name plus primary key. Each table's key schema is read once with
DescribeTable (forwarded with the caller's credentials) and cached until the table is created or
deleted again through the proxy. Tables are assumed to be shared by every caller (DynamoDB Local's
``-sharedDb``, as this project runs it). A write whose items cannot be keyed (no such table, a key
attribute missing, a body that is not the documented JSON) is forwarded unchanged and logged:
DynamoDB Local then answers it, which for all of these is an error, so nothing is made looser.
PartiQL (ExecuteStatement, BatchExecuteStatement, ExecuteTransaction) is not parsed: it is forwarded
outside the rules, counted and logged once. This project sends none.

Switches (read by ``attach_or_start`` from its environment, or passed to it as ``StrictRules``):

* ``POSTING_DYNAMODB_STRICT=0`` (or ``false``, ``no``, ``off``) turns the rules off, for debugging
  only: a warning says so, and any contention figure from such a run says nothing about AWS.
* ``POSTING_DYNAMODB_TAU_MS``: τ in milliseconds (default 20; 0 holds items for the real duration).

The counters (transactions seen and cancelled, single writes refused, ...) are served as JSON at
``GET <endpoint>/posting-strict/stats``; :func:`strict_stats` reads them from any process, and the
same request tells a process attaching to an endpoint that the rules already apply there.

The proxy runs in a child process of the process that starts DynamoDB Local (``StrictDynamoDB``),
and starts and stops with it; ``StrictProxy`` is the same server on a thread, for tests. A thread of
the starting process costs the same CPU (measured, 8 threads of 3-item transactions on disjoint
items: about 0.35-0.48 ms per transaction in the child, 0.15-0.45 ms more in the caller on a
thread; the raw rate unchanged within this machine's noise), but its holds then include waits for
that process's interpreter lock: with three CPU-bound threads in the process, like the local
pipeline, four writers on one item saw 57-68% of their transactions cancelled through a thread and
39-50% through the child. The proxy is plain standard library: sockets and a minimal HTTP/1.1
reader, because http.server and http.client, which parse headers with the email package, measured
about 0.8 ms per call here. Every
socket has a timeout: an upstream call that does not answer within ``UPSTREAM_TIMEOUT_S``
becomes an HTTP 500 (which the SDKs retry), and an idle client connection is closed after
``IDLE_TIMEOUT_S``.
"""

from __future__ import annotations

import argparse
import contextlib
import http
import http.client
import itertools
import json
import logging
import os
import select
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from posting_cli.local.dynamodb_local import DynamoDBEndpoint, DynamoDBLocalError, StartError, default_log_dir

__all__ = [
    "DEFAULT_TAU_MS",
    "ENV_STRICT",
    "ENV_TAU_MS",
    "STATS_PATH",
    "InFlight",
    "StrictDynamoDB",
    "StrictProxy",
    "StrictRules",
    "StrictRulesError",
    "is_strict_endpoint",
    "strict_stats",
]

log = logging.getLogger(__name__)

ENV_STRICT = "POSTING_DYNAMODB_STRICT"
ENV_TAU_MS = "POSTING_DYNAMODB_TAU_MS"
DEFAULT_TAU_MS = 20.0
STATS_PATH = "/posting-strict/stats"
UPSTREAM_TIMEOUT_S = 60.0
IDLE_TIMEOUT_S = 300.0
#: DynamoDB Local (Jetty) closes a keep-alive connection idle for 30 s; reconnect before that.
UPSTREAM_IDLE_REUSE_S = 20.0

_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_CONFLICT_MESSAGE = "Transaction is ongoing for the item"
_IN_PROGRESS_MESSAGE = "The transaction with the given request token is already in progress."
_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}
_MAX_LINE = 65_536
_MAX_HEADERS = 200
COUNTERS = (
    "transactions",
    "transactions_cancelled",
    "transactions_in_progress",
    "single_writes",
    "single_writes_refused",
    "batch_writes",
    "batch_write_items_unprocessed",
    "transact_gets",
    "transact_gets_cancelled",
    "forwarded_unkeyed",
)
_WRITE_ACTIONS = ("Put", "Update", "Delete", "ConditionCheck")
_PARTIQL = ("ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction")

#: (table name, ((attribute, type, canonical value), ...)): one item, whoever names it.
ItemKey = tuple[str, tuple[tuple[str, str, str], ...]]


class StrictRulesError(DynamoDBLocalError):
    """A strict-rules setting that cannot be read (a flag or environment variable)."""


@dataclass(frozen=True)
class StrictRules:
    """Whether the conflict rules apply, and τ: how long past its answer a transaction holds its items."""

    enabled: bool = True
    tau_ms: float = DEFAULT_TAU_MS

    def __post_init__(self) -> None:
        if not 0 <= self.tau_ms <= 60_000:
            raise StrictRulesError(f"τ must be within 0..60000 ms, got {self.tau_ms}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> StrictRules:
        """``$POSTING_DYNAMODB_STRICT`` and ``$POSTING_DYNAMODB_TAU_MS``, with the defaults where unset."""
        env = os.environ if environ is None else environ
        strict = env.get(ENV_STRICT, "").strip().lower()
        if strict and strict not in _FALSE | _TRUE:
            raise StrictRulesError(f"{ENV_STRICT}={strict!r}: use 1 (the default) or 0 (debugging only)")
        tau = env.get(ENV_TAU_MS, "").strip()
        try:
            tau_ms = float(tau) if tau else DEFAULT_TAU_MS
        except ValueError:
            raise StrictRulesError(f"{ENV_TAU_MS}={tau!r} is not a number of milliseconds") from None
        return cls(enabled=strict not in _FALSE, tau_ms=tau_ms)


# -- the rules, with no I/O ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """Why a request may not run: the indexes of its conflicting items, or a token already in flight."""

    conflicting: tuple[int, ...] = ()
    in_progress: bool = False


@dataclass
class InFlight:
    """The items that ongoing writes hold, and the rules that admit or refuse a new request. Thread-safe.

    Every ``begin_*`` that admits a request must be paired with its ``end_*``.
    """

    counters: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _transactions: dict[ItemKey, int] = field(default_factory=dict)  # item -> the transaction holding it
    _writes: Counter[ItemKey] = field(default_factory=Counter)  # item -> ongoing single/batch writes on it
    _readers: dict[ItemKey, set[int]] = field(default_factory=dict)  # item -> read transactions reading it
    _overtaken: dict[int, set[ItemKey]] = field(default_factory=dict)  # read transaction -> items written meanwhile
    _tokens: dict[str, int] = field(default_factory=dict)  # ClientRequestToken -> its transaction
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def begin_transaction(self, keys: Sequence[ItemKey], token: str | None = None) -> int | Refusal:
        """Admit a TransactWriteItems (its hold id) or refuse it; counted either way."""
        with self._lock:
            self.counters["transactions"] += 1
            if token is not None and token in self._tokens:
                self.counters["transactions_in_progress"] += 1
                return Refusal(in_progress=True)
            conflicting = tuple(i for i, key in enumerate(keys) if key in self._transactions or self._writes[key])
            if conflicting:
                self.counters["transactions_cancelled"] += 1
                return Refusal(conflicting)
            hold = next(self._ids)
            for key in keys:
                self._transactions[key] = hold
                self._overtake(key)
            if token is not None:
                self._tokens[token] = hold
            return hold

    def end_transaction(self, hold: int, keys: Sequence[ItemKey], token: str | None = None) -> None:
        with self._lock:
            for key in keys:
                if self._transactions.get(key) == hold:
                    del self._transactions[key]
            if token is not None and self._tokens.get(token) == hold:
                del self._tokens[token]

    def begin_write(self, key: ItemKey) -> bool:
        """Admit a PutItem, UpdateItem or DeleteItem, unless a transaction holds its item."""
        with self._lock:
            self.counters["single_writes"] += 1
            if key in self._transactions:
                self.counters["single_writes_refused"] += 1
                return False
            self._writes[key] += 1
            self._overtake(key)
            return True

    def begin_batch_write(self, keys: Sequence[ItemKey]) -> list[bool]:
        """Admit each put or delete of a BatchWriteItem whose item no transaction holds."""
        with self._lock:
            self.counters["batch_writes"] += 1
            admitted = [key not in self._transactions for key in keys]
            for key, ok in zip(keys, admitted, strict=True):
                if ok:
                    self._writes[key] += 1
                    self._overtake(key)
            self.counters["batch_write_items_unprocessed"] += admitted.count(False)
            return admitted

    def end_writes(self, keys: Sequence[ItemKey]) -> None:
        with self._lock:
            for key in keys:
                self._writes[key] -= 1
                if self._writes[key] <= 0:
                    del self._writes[key]

    def begin_transact_get(self, keys: Sequence[ItemKey]) -> int | Refusal:
        """Admit a TransactGetItems (its read id) unless an ongoing write holds or writes one of its items."""
        with self._lock:
            self.counters["transact_gets"] += 1
            conflicting = tuple(i for i, key in enumerate(keys) if key in self._transactions or self._writes[key])
            if conflicting:
                self.counters["transact_gets_cancelled"] += 1
                return Refusal(conflicting)
            read = next(self._ids)
            for key in keys:
                self._readers.setdefault(key, set()).add(read)
            return read

    def end_transact_get(self, read: int, keys: Sequence[ItemKey]) -> tuple[int, ...]:
        """Finish a read transaction; the indexes of its items that a write overtook while it ran."""
        with self._lock:
            for key in keys:
                readers = self._readers.get(key)
                if readers is not None:
                    readers.discard(read)
                    if not readers:
                        del self._readers[key]
            overtaken = self._overtaken.pop(read, set())
            return tuple(i for i, key in enumerate(keys) if key in overtaken)

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    def held(self) -> int:
        """How many items transactions hold right now."""
        with self._lock:
            return len(self._transactions)

    def _overtake(self, key: ItemKey) -> None:
        for read in self._readers.get(key, ()):
            self._overtaken.setdefault(read, set()).add(key)


# -- AWS's answers ------------------------------------------------------------------------------------


def _aws_reply(status: int, document: dict[str, Any]) -> Reply:
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = [
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]
    return _reply(status, headers, body)


def transaction_cancelled(actions: int, conflicting: Sequence[int]) -> Reply:
    """AWS's TransactionCanceledException for a transaction of `actions` items, conflicts at `conflicting`."""
    conflicts = set(conflicting)
    reasons: list[dict[str, str]] = [
        {"Code": "TransactionConflict", "Message": _CONFLICT_MESSAGE} if i in conflicts else {"Code": "None"}
        for i in range(actions)
    ]
    codes = ", ".join(reason["Code"] for reason in reasons)
    return _aws_reply(
        400,
        {
            "__type": _ERROR_PREFIX + "TransactionCanceledException",
            "CancellationReasons": reasons,
            "Message": f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
        },
    )


def transaction_conflict() -> Reply:
    """AWS's TransactionConflictException, for a single write on an item a transaction holds."""
    return _aws_reply(400, {"__type": _ERROR_PREFIX + "TransactionConflictException", "Message": _CONFLICT_MESSAGE})


def transaction_in_progress() -> Reply:
    return _aws_reply(
        400, {"__type": _ERROR_PREFIX + "TransactionInProgressException", "Message": _IN_PROGRESS_MESSAGE}
    )


def _internal_error(message: str) -> Reply:
    return _aws_reply(500, {"__type": _ERROR_PREFIX + "InternalServerError", "Message": message})


# -- item identity ------------------------------------------------------------------------------------


def _table_name(table: str) -> str:
    """A table's name, also when the request names it by ARN."""
    return table.rpartition(":table/")[2] if table.startswith("arn:") else table


def _canonical(kind: str, raw: str) -> str:
    """One spelling per key value: DynamoDB compares numbers by value ("1.0" is "1")."""
    if kind != "N":
        return raw
    try:
        return str(Decimal(raw).normalize())
    except InvalidOperation:
        return raw


def item_key(table: str, key_names: Sequence[str], attributes: Any) -> ItemKey | None:
    """The identity of the item that `attributes` (a Key, or a whole Item) names; None if it names none."""
    if not isinstance(attributes, dict) or not key_names:
        return None
    parts = []
    for name in key_names:
        value = attributes.get(name)
        if not isinstance(value, dict) or len(value) != 1:
            return None
        ((kind, raw),) = value.items()
        if kind not in ("S", "N", "B") or not isinstance(raw, str):
            return None
        parts.append((name, kind, _canonical(kind, raw)))
    return (_table_name(table), tuple(parts))


class _Unkeyable(Exception):
    """A write whose items cannot be named: it is forwarded as it came."""


# -- HTTP, just enough of it --------------------------------------------------------------------------


class _BadMessage(Exception):
    """Bytes that are not the HTTP/1.1 this proxy speaks; the connection is closed."""


@dataclass
class Request:
    """One request as received: its head is forwarded byte for byte unless the body changes."""

    method: str
    path: str
    head: bytes
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        return "close" not in connection and (
            self.head.split(b"\r\n", 1)[0].endswith(b"1.1") or "keep-alive" in connection
        )

    def with_body(self, body: bytes) -> Request:
        lines = self.head.split(b"\r\n")
        kept = [line for line in lines[1:] if line and not line.lower().startswith(b"content-length:")]
        head = b"\r\n".join([lines[0], *kept, b"Content-Length: %d" % len(body), b"", b""])
        return Request(self.method, self.path, head, self.headers, body)


@dataclass
class Reply:
    status: int
    head: bytes
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _read_head(rfile: Any) -> list[bytes] | None:
    """The start line and header lines of the next message; None at a clean end of the stream."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(_MAX_LINE + 1)
        if not line:
            if lines:
                raise _BadMessage("the stream ended inside a message head")
            return None
        if len(line) > _MAX_LINE or len(lines) > _MAX_HEADERS:
            raise _BadMessage("a message head too long")
        if line in (b"\r\n", b"\n"):
            if lines:
                return lines
            continue  # blank lines before a message are allowed (RFC 9112, 2.2)
        lines.append(line)


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon:
            raise _BadMessage(f"a header line without a colon: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _read_body(rfile: Any, headers: dict[str, str]) -> bytes | None:
    """The body that `headers` announce; None when they announce none (the body runs to the end)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size_line = rfile.readline(_MAX_LINE + 1)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadMessage(f"a bad chunk size: {size_line[:40]!r}") from None
            if size == 0:
                while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(_read_exactly(rfile, size))
            if rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadMessage("a chunk not followed by CRLF")
    length = headers.get("content-length")
    if length is None:
        return None
    try:
        return _read_exactly(rfile, int(length))
    except ValueError:
        raise _BadMessage(f"a bad Content-Length: {length[:40]!r}") from None


def _read_exactly(rfile: Any, size: int) -> bytes:
    data: bytes = rfile.read(size)
    if len(data) != size:
        raise _BadMessage("the stream ended inside a message body")
    return data


def _read_request(rfile: Any) -> Request | None:
    lines = _read_head(rfile)
    if lines is None:
        return None
    method, path, _ = [*lines[0].decode("latin-1").split(" ", 2), "", ""][:3]
    headers = _headers(lines)
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise _BadMessage("a chunked request body: DynamoDB clients send a Content-Length")
    body = _read_body(rfile, headers) or b""
    return Request(method, path, b"".join(lines) + b"\r\n", headers, body)


def _read_reply(rfile: Any) -> tuple[Reply, bool]:
    """The next final response on an upstream connection, and whether that connection must close."""
    while True:
        lines = _read_head(rfile)
        if lines is None:
            raise http.client.RemoteDisconnected("DynamoDB Local closed the connection without a response")
        try:
            status = int(lines[0].split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise _BadMessage(f"a bad status line: {lines[0][:80]!r}") from None
        if 100 <= status < 200:
            continue  # an interim response; the final one follows
        headers = _headers(lines)
        closes = "close" in headers.get("connection", "").lower()
        if status in (204, 304):
            return Reply(status, b"".join(lines) + b"\r\n", b""), closes
        body = _read_body(rfile, headers)
        if body is None:  # no length given: the body is the rest of the stream
            body, closes = rfile.read(), True
        elif "content-length" in headers:
            return Reply(status, b"".join(lines) + b"\r\n", body), closes
        kept = [line for line in lines if not line.lower().startswith((b"transfer-encoding:", b"content-length:"))]
        return Reply(status, b"".join(kept) + b"Content-Length: %d\r\n\r\n" % len(body), body), closes


def _reply(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> Reply:
    reason = http.HTTPStatus(status).phrase
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"Content-Length: {len(body)}")
    return Reply(status, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body)


class _Upstream:
    """One keep-alive connection to DynamoDB Local, owned by one client connection's thread."""

    def __init__(self, address: tuple[str, int], timeout: float) -> None:
        self._address = address
        self._timeout = timeout
        self._socket: socket.socket | None = None
        self._rfile: Any = None
        self._last_used = 0.0

    def exchange(self, data: bytes) -> Reply:
        """Send one request (head and body) and read its response."""
        for attempt in (1, 2):
            reused = self._socket is not None and time.monotonic() - self._last_used < UPSTREAM_IDLE_REUSE_S
            if not reused:
                self.close()
                self._socket = socket.create_connection(self._address, timeout=self._timeout)
                self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._rfile = self._socket.makefile("rb")
            assert self._socket is not None
            try:
                self._socket.sendall(data)
                reply, closes = _read_reply(self._rfile)
            except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                self.close()
                if reused and attempt == 1:
                    continue  # DynamoDB Local closed an idle connection before it read the request
                raise
            except BaseException:
                self.close()
                raise
            if closes:
                self.close()
            self._last_used = time.monotonic()
            return reply
        raise AssertionError("unreachable")

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if self._rfile is not None:
            with contextlib.suppress(OSError):
                self._rfile.close()
            self._rfile = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


# -- the proxy ----------------------------------------------------------------------------------------


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # many clients connect at once; a backlog of 5 would drop their SYNs
    proxy: StrictProxy


class _Connection(socketserver.BaseRequestHandler):
    """One client connection: its requests, one after the other, each answered under the rules."""

    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        client: socket.socket = self.request
        client.settimeout(IDLE_TIMEOUT_S)
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        proxy.track(client, open_=True)
        rfile = client.makefile("rb")
        upstream = proxy.upstream()
        try:
            while True:
                request = _read_request(rfile)
                if request is None:
                    return
                try:
                    reply = proxy.handle(request, upstream)
                except Exception as error:  # a defect here must not leave the client waiting
                    log.exception("strict DynamoDB: answering %s failed", request.headers.get("x-amz-target"))
                    reply = _internal_error(f"strict proxy: {error!r}")
                    upstream.close()
                client.sendall(reply.head + reply.body)
                if not request.keep_alive:
                    return
        except (OSError, _BadMessage) as error:
            log.debug("strict DynamoDB: a client connection ended: %r", error)
        finally:
            upstream.close()
            rfile.close()
            proxy.track(client, open_=False)


class StrictProxy:
    """The proxy itself: a server on 127.0.0.1 that forwards to `upstream_url` under the rules."""

    def __init__(
        self,
        upstream_url: str,
        rules: StrictRules | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = UPSTREAM_TIMEOUT_S,
    ) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise StrictRulesError(f"the strict proxy fronts a plain http:// endpoint, not {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self._upstream_address = (parts.hostname, parts.port or 80)
        self.rules = rules or StrictRules()
        self.in_flight = InFlight()
        self._host, self._port = host, port
        self._upstream_timeout = upstream_timeout
        self._schemas: dict[str, tuple[str, ...]] = {}
        self._schemas_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._logged: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise DynamoDBLocalError("the strict proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StrictProxy:
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Connection)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="strict-dynamodb", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            open_connections = list(self._connections)
        for connection in open_connections:  # idle keep-alive clients: end their threads now
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def upstream(self) -> _Upstream:
        return _Upstream(self._upstream_address, self._upstream_timeout)

    def stats(self) -> dict[str, Any]:
        """The counters (zeros included), τ, and how many items transactions hold right now."""
        counters = dict.fromkeys(COUNTERS, 0)
        counters.update(self.in_flight.snapshot())
        return {"strict": True, "tau_ms": self.rules.tau_ms, "held_items": self.in_flight.held(), **counters}

    # -- one request -----------------------------------------------------------------------------

    def handle(self, request: Request, upstream: _Upstream) -> Reply:
        """Apply the rules to one request and answer it."""
        if request.method == "GET" and request.path == STATS_PATH:
            return _reply(200, [("Content-Type", "application/json")], json.dumps(self.stats()).encode())
        operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
        try:
            if operation == "TransactWriteItems":
                return self._transact_write(request, upstream)
            if operation in ("PutItem", "UpdateItem", "DeleteItem"):
                return self._single_write(operation, request, upstream)
            if operation == "BatchWriteItem":
                return self._batch_write(request, upstream)
            if operation == "TransactGetItems":
                return self._transact_get(request, upstream)
        except _Unkeyable as why:
            self.in_flight.count("forwarded_unkeyed")
            self._log_once(f"{operation}: {why}", f"forwarded unchanged, outside the rules: {operation} ({why})")
        if operation in _PARTIQL:
            self.in_flight.count("forwarded_unkeyed")
            self._log_once(operation, f"PartiQL is not parsed: {operation} is forwarded outside the rules")
        reply = self._forward(request, upstream)
        if operation in ("CreateTable", "DeleteTable"):
            self._forget_schema(request.body)
        return reply

    def _transact_write(self, request: Request, upstream: _Upstream) -> Reply:
        document = _json_object(request.body)
        actions = document.get("TransactItems")
        if not isinstance(actions, list) or not actions:
            raise _Unkeyable("no TransactItems")
        keys = [self._action_key(action, request, upstream) for action in actions]
        token = document.get("ClientRequestToken")
        token = token if isinstance(token, str) else None
        admitted = self.in_flight.begin_transaction(keys, token)
        if isinstance(admitted, Refusal):
            if admitted.in_progress:
                return transaction_in_progress()
            return transaction_cancelled(len(keys), admitted.conflicting)
        try:
            reply = self._forward(request, upstream)
            if self.rules.tau_ms:
                time.sleep(self.rules.tau_ms / 1000)  # still in flight: on AWS the commit takes this long
        finally:
            self.in_flight.end_transaction(admitted, keys, token)
        return reply

    def _single_write(self, operation: str, request: Request, upstream: _Upstream) -> Reply:
        document = _json_object(request.body)
        attributes = document.get("Item" if operation == "PutItem" else "Key")
        key = self._key(document.get("TableName"), attributes, request, upstream)
        if not self.in_flight.begin_write(key):
            return transaction_conflict()
        try:
            return self._forward(request, upstream)
        finally:
            self.in_flight.end_writes([key])

    def _batch_write(self, request: Request, upstream: _Upstream) -> Reply:
        document = _json_object(request.body)
        writes = self._batch_writes(document.get("RequestItems"), request, upstream)
        keys = [key for _, _, key in writes]
        admitted = self.in_flight.begin_batch_write(keys)
        performed = [key for key, ok in zip(keys, admitted, strict=True) if ok]
        remaining: dict[str, list[Any]] = {}
        held: dict[str, list[Any]] = {}
        for (table, write, _), ok in zip(writes, admitted, strict=True):
            (remaining if ok else held).setdefault(table, []).append(write)
        try:
            if not held:
                return self._forward(request, upstream)
            if not remaining:
                return _aws_reply(200, {"UnprocessedItems": held})
            rest = request.with_body(json.dumps({**document, "RequestItems": remaining}).encode())
            reply = self._forward(rest, upstream)
            if reply.status != 200:
                return reply
            answer = reply.json()
            unprocessed = answer.setdefault("UnprocessedItems", {})
            for table, table_writes in held.items():
                unprocessed.setdefault(table, []).extend(table_writes)
            return _aws_reply(200, answer)
        finally:
            self.in_flight.end_writes(performed)

    def _batch_writes(self, tables: Any, request: Request, upstream: _Upstream) -> list[tuple[str, Any, ItemKey]]:
        """(table, write request, its item) for each put and delete of a BatchWriteItem, in order."""
        if not isinstance(tables, dict) or not tables:
            raise _Unkeyable("no RequestItems")
        writes = []
        for table, table_writes in tables.items():
            if not isinstance(table_writes, list):
                raise _Unkeyable("RequestItems is not a list per table")
            for write in table_writes:
                if not isinstance(write, dict):
                    raise _Unkeyable("a write request that is not an object")
                put, delete = write.get("PutRequest"), write.get("DeleteRequest")
                attributes = (
                    put.get("Item")
                    if isinstance(put, dict)
                    else delete.get("Key")
                    if isinstance(delete, dict)
                    else None
                )
                writes.append((table, write, self._key(table, attributes, request, upstream)))
        return writes

    def _transact_get(self, request: Request, upstream: _Upstream) -> Reply:
        document = _json_object(request.body)
        gets = document.get("TransactItems")
        if not isinstance(gets, list) or not gets:
            raise _Unkeyable("no TransactItems")
        keys = []
        for get in gets:
            action = get.get("Get") if isinstance(get, dict) else None
            if not isinstance(action, dict):
                raise _Unkeyable("a TransactGetItems item without Get")
            keys.append(self._key(action.get("TableName"), action.get("Key"), request, upstream))
        admitted = self.in_flight.begin_transact_get(keys)
        if isinstance(admitted, Refusal):
            return transaction_cancelled(len(keys), admitted.conflicting)
        overtaken: tuple[int, ...] = ()
        try:
            reply = self._forward(request, upstream)
        finally:
            overtaken = self.in_flight.end_transact_get(admitted, keys)
        if overtaken and reply.status == 200:
            self.in_flight.count("transact_gets_cancelled")
            return transaction_cancelled(len(keys), overtaken)
        return reply

    def _action_key(self, action: Any, request: Request, upstream: _Upstream) -> ItemKey:
        if not isinstance(action, dict) or len(action) != 1:
            raise _Unkeyable("an action that is not exactly one of Put, Update, Delete, ConditionCheck")
        ((kind, detail),) = action.items()
        if kind not in _WRITE_ACTIONS or not isinstance(detail, dict):
            raise _Unkeyable(f"an unknown action {kind!r}")
        return self._key(detail.get("TableName"), detail.get("Item" if kind == "Put" else "Key"), request, upstream)

    def _key(self, table: Any, attributes: Any, request: Request, upstream: _Upstream) -> ItemKey:
        if not isinstance(table, str) or not table:
            raise _Unkeyable("no TableName")
        names = self._key_names(table, request, upstream)
        if names is None:
            raise _Unkeyable(f"no key schema for table {table!r}")
        key = item_key(table, names, attributes)
        if key is None:
            raise _Unkeyable(f"no complete primary key for table {table!r}")
        return key

    def _key_names(self, table: str, request: Request, upstream: _Upstream) -> tuple[str, ...] | None:
        name = _table_name(table)
        with self._schemas_lock:
            cached = self._schemas.get(name)
        if cached is not None:
            return cached
        body = json.dumps({"TableName": table}).encode()
        # DynamoDB Local wants an access key in the header (it checks no signature); the caller's own
        # keeps the lookup in the caller's database when DynamoDB Local is not -sharedDb.
        authorization = request.headers.get("authorization", _DUMMY_AUTHORIZATION)
        head = (
            f"POST / HTTP/1.1\r\nHost: {self._upstream_address[0]}:{self._upstream_address[1]}\r\n"
            "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.DescribeTable\r\n"
            f"Authorization: {authorization}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        reply = self._forward(Request("POST", "/", head, {}, body), upstream)
        if reply.status != 200:
            return None
        try:
            schema = reply.json()["Table"]["KeySchema"]
            hash_first = sorted(schema, key=lambda element: element["KeyType"] != "HASH")
            names = tuple(str(element["AttributeName"]) for element in hash_first)
        except (ValueError, KeyError, TypeError):
            return None
        with self._schemas_lock:
            self._schemas[name] = names
        return names

    def _forget_schema(self, body: bytes) -> None:
        with contextlib.suppress(_Unkeyable):
            table = _json_object(body).get("TableName")
            if isinstance(table, str):
                with self._schemas_lock:
                    self._schemas.pop(_table_name(table), None)

    def _forward(self, request: Request, upstream: _Upstream) -> Reply:
        try:
            return upstream.exchange(request.head + request.body)
        except (OSError, _BadMessage, http.client.HTTPException) as error:
            log.warning(
                "strict DynamoDB: %s %s to %s failed: %r", request.method, request.path, self.upstream_url, error
            )
            return _internal_error(f"strict proxy: DynamoDB Local at {self.upstream_url} failed: {error!r}")

    def _log_once(self, kind: str, message: str) -> None:
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("strict DynamoDB: %s", message)


_DUMMY_AUTHORIZATION = (
    "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        raise _Unkeyable("a body that is not JSON") from None
    if not isinstance(document, dict):
        raise _Unkeyable("a body that is not a JSON object")
    return document


# -- the endpoint callers use -------------------------------------------------------------------------


class StrictDynamoDB(DynamoDBEndpoint):
    """A DynamoDB endpoint (DynamoDB Local, or one attached to) behind the strict proxy.

    The proxy runs in a child process (``python -m posting_cli.local.strict_dynamodb``), so the time
    a transaction holds its items depends on DynamoDB Local and τ, not on how busy this process's
    interpreter is. ``endpoint_url`` is the proxy's; ``start()`` starts the upstream (if it is ours)
    and then the proxy; ``stop()`` stops both, proxy first. The child also exits by itself when its
    standard input closes, so it never outlives this process. ``pid`` is DynamoDB Local's when it
    is ours; ``proxy_pid`` is the child's.
    """

    def __init__(
        self,
        upstream: DynamoDBEndpoint,
        rules: StrictRules | None = None,
        *,
        log_dir: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.upstream = upstream
        self.rules = rules or StrictRules()
        self.managed = upstream.managed
        self.region_name = upstream.region_name
        self.log_dir = Path(log_dir or getattr(upstream, "log_dir", None) or default_log_dir())
        self.log_path: Path | None = None
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._url is None:
            raise DynamoDBLocalError("the strict DynamoDB is not started; call start() or use it as a context manager")
        return self._url

    @property
    def pid(self) -> int | None:
        return getattr(self.upstream, "pid", None)

    @property
    def proxy_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> StrictDynamoDB:
        if self._url is not None:
            return self
        self.upstream.start()
        try:
            self._url = self._spawn()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 5.0) -> None:
        process, self._process, self._url = self._process, None, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # the child's signal to stop
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
            if process.stdout is not None:
                process.stdout.close()
        self.upstream.stop()

    def stats(self) -> dict[str, Any]:
        """The counters of the rules so far (see :func:`strict_stats`)."""
        stats = strict_stats(self.endpoint_url)
        if stats is None:
            raise DynamoDBLocalError(f"the strict proxy at {self.endpoint_url} does not answer")
        return stats

    def _spawn(self) -> str:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"strict-dynamodb-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        command = [sys.executable, "-m", "posting_cli.local.strict_dynamodb"]
        command += ["--upstream", self.upstream.endpoint_url, "--tau-ms", repr(self.rules.tau_ms)]
        tools = str(Path(__file__).resolve().parents[2])  # the folder holding posting_cli
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tools, os.environ.get("PYTHONPATH")]))}
        with open(self.log_path, "ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                env=env,
                start_new_session=True,  # Ctrl-C stops the stack first; the stack then stops the proxy
            )
        self._process = process
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], self.startup_timeout)
        line = process.stdout.readline().decode().strip() if ready else ""
        if not line.startswith("http://"):
            process.kill()
            process.wait(5)
            raise StartError(
                f"the strict DynamoDB proxy did not start within {self.startup_timeout:.0f} s "
                f"(log: {self.log_path}):\n{self.log_path.read_text()[-2000:]}"
            )
        return line

    def __repr__(self) -> str:
        where = self._url or "stopped"
        return f"StrictDynamoDB({where} -> {self.upstream!r}, tau {self.rules.tau_ms:g} ms)"


def strict_stats(endpoint_url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The strict proxy's counters at `endpoint_url`, or None when the rules do not apply there.

    Counters only grow; take one reading before and one after a run and subtract. ``conflicts``
    in the answer is the sum of what the rules refused: transactions cancelled, single writes
    refused, read transactions cancelled and batch writes left unprocessed.
    """
    parts = urlsplit(endpoint_url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request("GET", STATS_PATH)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    if response.status != 200:
        return None
    try:
        stats = json.loads(body)
    except ValueError:
        return None
    if not isinstance(stats, dict) or stats.get("strict") is not True:
        return None
    stats["conflicts"] = sum(
        int(stats.get(name, 0))
        for name in (
            "transactions_cancelled",
            "single_writes_refused",
            "transact_gets_cancelled",
            "batch_write_items_unprocessed",
        )
    )
    return stats


def is_strict_endpoint(endpoint_url: str) -> bool:
    """True when `endpoint_url` is a strict proxy already (attaching to it needs no second one)."""
    return strict_stats(endpoint_url) is not None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one strict proxy until standard input closes (or Ctrl-C); print its URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m posting_cli.local.strict_dynamodb",
        description="AWS's transaction conflict rules in front of a DynamoDB Local. Prints its URL, "
        "then serves until standard input closes.",
    )
    parser.add_argument("--upstream", required=True, help="the DynamoDB Local to front, http://127.0.0.1:PORT")
    parser.add_argument("--tau-ms", type=float, default=DEFAULT_TAU_MS, help="τ in milliseconds")
    parser.add_argument("--port", type=int, default=0, help="port to listen on, 127.0.0.1 (default: any free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    proxy = StrictProxy(args.upstream, StrictRules(tau_ms=args.tau_ms), port=args.port).start()
    print(proxy.endpoint_url, flush=True)
    try:
        sys.stdin.buffer.read()
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
