"""The strict DynamoDB: AWS's transaction conflict rules on DynamoDB Local, seen through a real boto3 client.

Each test runs its own proxy in front of the session's DynamoDB Local. A long τ keeps a transaction's
items in flight for as long as the test needs, so every overlap here is made, not hoped for.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from posting_cli.local import dynamodb_local as ddbl
from posting_cli.local.strict_dynamodb import (
    DEFAULT_TAU_MS,
    StrictDynamoDB,
    StrictProxy,
    StrictRules,
    StrictRulesError,
    strict_stats,
)

pytestmark = pytest.mark.local_stack

NO_SDK_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
CONFLICT = {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
HOLD_MS = 1000  # long enough for the test to act while a transaction is in flight


def _bare_engine_url(dynamodb_local: Any) -> str:
    """The engine behind the session's strict endpoint (or that endpoint itself when attached to one)."""
    return str(getattr(dynamodb_local, "upstream", dynamodb_local).endpoint_url)


@pytest.fixture
def proxy(dynamodb_local: Any) -> Iterator[StrictProxy]:
    server = StrictProxy(_bare_engine_url(dynamodb_local), StrictRules(tau_ms=HOLD_MS)).start()
    yield server
    server.stop()


def _client(url: str) -> Any:
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=NO_SDK_RETRIES,
    )


@pytest.fixture
def client(proxy: StrictProxy) -> Any:
    return _client(proxy.endpoint_url)


@pytest.fixture
def table(client: Any) -> Iterator[str]:
    name = f"strict-{uuid.uuid4().hex[:10]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    client.delete_table(TableName=name)


def _key(pk: str) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"N": "1"}}


def _put(table: str, pk: str, **more: Any) -> dict[str, Any]:
    return {"Put": {"TableName": table, "Item": {**_key(pk), **more}}}


def _add(table: str, pk: str) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": _key(pk),
            "UpdateExpression": "ADD n :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }


def _holding(proxy: StrictProxy, start: Callable[[], Any], held: int = 1) -> Future[Any]:
    """Start `start` (a transaction) on another thread; return once the proxy holds `held` items."""
    before = proxy.stats()["transactions"]
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(start)
    pool.shutdown(wait=False)
    deadline = time.monotonic() + 10
    while True:
        stats = strict_stats(proxy.endpoint_url)
        assert stats is not None
        if stats["held_items"] >= held and stats["transactions"] > before:
            return future
        assert not future.done(), future.exception() or "the transaction finished before it was seen in flight"
        assert time.monotonic() < deadline, "the transaction never came in flight"
        time.sleep(0.005)


def _item(client: Any, table: str, pk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = client.get_item(TableName=table, Key=_key(pk), ConsistentRead=True).get("Item")
    return item


# -- the two rules ---------------------------------------------------------------------------------


def test_two_overlapping_transactions_on_one_item_one_is_cancelled(proxy, client, table):
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_put(table, "p1"), _add(table, "hot")]))
    with pytest.raises(client.exceptions.TransactionCanceledException) as error:
        client.transact_write_items(TransactItems=[_add(table, "hot"), _put(table, "p2")])
    first.result(timeout=10)

    response = error.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"] == {
        "Code": "TransactionCanceledException",
        "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
        "[TransactionConflict, None]",
    }
    assert response["CancellationReasons"] == [CONFLICT, {"Code": "None"}]
    # The first committed once; the cancelled one wrote nothing.
    assert _item(client, table, "hot") == {**_key("hot"), "n": {"N": "1"}}
    assert _item(client, table, "p1") is not None
    assert _item(client, table, "p2") is None


@pytest.mark.parametrize("action", ["Put", "Update", "Delete", "ConditionCheck"])
def test_every_kind_of_action_holds_its_item(proxy, client, table, action):
    client.put_item(TableName=table, Item={**_key("held"), "n": {"N": "5"}})
    detail: dict[str, Any] = {"TableName": table}
    if action == "Put":
        detail["Item"] = {**_key("held"), "n": {"N": "6"}}
    else:
        detail["Key"] = _key("held")
    if action == "Update":
        detail |= {"UpdateExpression": "SET n = :six", "ExpressionAttributeValues": {":six": {"N": "6"}}}
    if action == "ConditionCheck":
        detail["ConditionExpression"] = "attribute_exists(PK)"
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[{action: detail}, _put(table, "x")]))

    with pytest.raises(client.exceptions.TransactionCanceledException) as error:
        client.transact_write_items(TransactItems=[_put(table, "y"), _add(table, "held")])
    assert error.value.response["CancellationReasons"] == [{"Code": "None"}, CONFLICT]
    with pytest.raises(client.exceptions.TransactionConflictException):
        client.put_item(TableName=table, Item={**_key("held"), "n": {"N": "7"}})
    first.result(timeout=10)


@pytest.mark.parametrize("operation", ["put_item", "update_item", "delete_item"])
def test_a_single_write_on_an_item_a_transaction_holds_fails_with_transaction_conflict(proxy, client, table, operation):
    client.put_item(TableName=table, Item={**_key("acc"), "n": {"N": "10"}})
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "acc")]))
    calls: dict[str, dict[str, Any]] = {
        "put_item": {"Item": {**_key("acc"), "n": {"N": "0"}}},
        "update_item": {
            "Key": _key("acc"),
            "UpdateExpression": "SET n = :zero",
            "ExpressionAttributeValues": {":zero": {"N": "0"}},
        },
        "delete_item": {"Key": _key("acc")},
    }
    with pytest.raises(client.exceptions.TransactionConflictException) as error:
        getattr(client, operation)(TableName=table, **calls[operation])
    first.result(timeout=10)

    response = error.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"] == {"Code": "TransactionConflictException", "Message": CONFLICT["Message"]}
    assert "CancellationReasons" not in response
    assert _item(client, table, "acc") == {**_key("acc"), "n": {"N": "11"}}  # only the transaction's ADD


def test_disjoint_transactions_both_pass_while_both_in_flight(proxy, client, table):
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "a"), _put(table, "pa")]))
    second = _holding(
        proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "b"), _put(table, "pb")]), held=4
    )
    assert not first.done()  # both hold their items at once
    first.result(timeout=10)
    second.result(timeout=10)
    assert _item(client, table, "a") == {**_key("a"), "n": {"N": "1"}}
    assert _item(client, table, "b") == {**_key("b"), "n": {"N": "1"}}


def test_reads_of_a_held_item_pass(proxy, client, table):
    client.put_item(TableName=table, Item={**_key("acc"), "n": {"N": "3"}})
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "acc")]))
    assert _item(client, table, "acc") is not None
    batch = client.batch_get_item(RequestItems={table: {"Keys": [_key("acc")], "ConsistentRead": True}})
    assert len(batch["Responses"][table]) == 1
    query = client.query(
        TableName=table, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": "acc"}}
    )
    assert query["Count"] == 1
    assert client.scan(TableName=table)["Count"] >= 1
    assert not first.done()  # all of that ran while the transaction held the item
    first.result(timeout=10)


def test_a_clients_next_call_never_conflicts_with_its_own_finished_transaction(dynamodb_local, table):
    tau_ms = 40
    server = StrictProxy(_bare_engine_url(dynamodb_local), StrictRules(tau_ms=tau_ms)).start()
    try:
        client = _client(server.endpoint_url)
        for _ in range(5):
            began = time.monotonic()
            client.transact_write_items(TransactItems=[_add(table, "mine")])
            assert time.monotonic() - began >= tau_ms / 1000  # the answer waits out τ
            client.update_item(
                TableName=table,
                Key=_key("mine"),
                UpdateExpression="ADD m :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
        assert _item(client, table, "mine") == {**_key("mine"), "n": {"N": "5"}, "m": {"N": "5"}}
    finally:
        server.stop()


# -- the other operations ---------------------------------------------------------------------------


def test_a_read_transaction_on_a_held_item_is_cancelled(proxy, client, table):
    client.put_item(TableName=table, Item={**_key("acc"), "n": {"N": "3"}})
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "acc")]))
    gets = [{"Get": {"TableName": table, "Key": _key("other")}}, {"Get": {"TableName": table, "Key": _key("acc")}}]
    with pytest.raises(client.exceptions.TransactionCanceledException) as error:
        client.transact_get_items(TransactItems=gets)
    assert error.value.response["CancellationReasons"] == [{"Code": "None"}, CONFLICT]
    first.result(timeout=10)
    assert len(client.transact_get_items(TransactItems=gets)["Responses"]) == 2  # released: it reads


def test_a_batch_write_on_a_held_item_leaves_that_write_unprocessed(proxy, client, table):
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "held")]))
    held_put = {"PutRequest": {"Item": {**_key("held"), "n": {"N": "100"}}}}
    free_put = {"PutRequest": {"Item": {**_key("free"), "n": {"N": "1"}}}}
    answer = client.batch_write_item(RequestItems={table: [held_put, free_put]})
    assert answer["UnprocessedItems"] == {table: [held_put]}
    assert _item(client, table, "free") is not None
    first.result(timeout=10)
    assert _item(client, table, "held") == {**_key("held"), "n": {"N": "1"}}  # the batch's put did not land
    assert client.batch_write_item(RequestItems=answer["UnprocessedItems"])["UnprocessedItems"] == {}
    assert _item(client, table, "held") == {**_key("held"), "n": {"N": "100"}}


def test_a_retry_with_the_token_of_a_transaction_in_flight_is_in_progress(proxy, client, table):
    token = str(uuid.uuid4())
    first = _holding(
        proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "t")], ClientRequestToken=token)
    )
    with pytest.raises(ClientError) as error:
        client.transact_write_items(TransactItems=[_add(table, "t")], ClientRequestToken=token)
    assert error.value.response["Error"]["Code"] == "TransactionInProgressException"
    first.result(timeout=10)
    assert _item(client, table, "t") == {**_key("t"), "n": {"N": "1"}}


def test_keys_are_item_identities_whatever_their_spelling(proxy, client, table):
    numbered = {"PK": {"S": "acc"}, "SK": {"N": "1.0"}}  # the same number as "1"
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "acc")]))
    with pytest.raises(client.exceptions.TransactionConflictException):
        client.put_item(TableName=table, Item={**numbered, "extra": {"S": "attributes are not identity"}})
    first.result(timeout=10)


def test_error_shapes_parse_like_the_engines_own(proxy, client, table):
    """Our cancellation and DynamoDB Local's own parse into the same botocore structure."""
    client.put_item(TableName=table, Item=_key("exists"))
    condition = {
        "ConditionCheck": {
            "TableName": table,
            "Key": _key("exists"),
            "ConditionExpression": "attribute_not_exists(PK)",
        }
    }
    with pytest.raises(client.exceptions.TransactionCanceledException) as engine_error:
        client.transact_write_items(TransactItems=[condition, _put(table, "z")])
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "hot")]))
    with pytest.raises(client.exceptions.TransactionCanceledException) as our_error:
        client.transact_write_items(TransactItems=[_add(table, "hot"), _put(table, "z")])
    first.result(timeout=10)

    engine, ours = engine_error.value.response, our_error.value.response
    assert set(engine) == set(ours) == {"Error", "ResponseMetadata", "CancellationReasons", "Message"}
    assert engine["Error"]["Message"].endswith("[ConditionalCheckFailed, None]")
    assert ours["Error"]["Message"].endswith("[TransactionConflict, None]")
    assert [set(r) for r in engine["CancellationReasons"]] == [set(r) for r in ours["CancellationReasons"]]
    assert {"content-type", "x-amzn-requestid", "content-length"} <= set(ours["ResponseMetadata"]["HTTPHeaders"])


# -- the switch, τ and the counters -------------------------------------------------------------------


def test_rules_come_from_the_environment():
    assert StrictRules.from_environ({}) == StrictRules(enabled=True, tau_ms=DEFAULT_TAU_MS)
    assert StrictRules.from_environ({"POSTING_DYNAMODB_TAU_MS": "75"}) == StrictRules(tau_ms=75)
    assert not StrictRules.from_environ({"POSTING_DYNAMODB_STRICT": "0"}).enabled
    assert StrictRules.from_environ({"POSTING_DYNAMODB_STRICT": "1"}).enabled
    for bad in ({"POSTING_DYNAMODB_STRICT": "maybe"}, {"POSTING_DYNAMODB_TAU_MS": "fast"}):
        with pytest.raises(StrictRulesError):
            StrictRules.from_environ(bad)
    with pytest.raises(StrictRulesError):
        StrictRules(tau_ms=-1)


def test_attaching_is_strict_by_default_with_tau_from_the_environment(dynamodb_local):
    engine = _bare_engine_url(dynamodb_local)
    environ = {ddbl.ENV_ENDPOINT: engine, "POSTING_DYNAMODB_TAU_MS": "75"}
    with ddbl.attach_or_start(environ=environ) as endpoint:
        assert isinstance(endpoint, StrictDynamoDB)
        assert endpoint.endpoint_url != engine
        stats = strict_stats(endpoint.endpoint_url)
        assert stats is not None and stats["tau_ms"] == 75
        # A second process attaching to a strict endpoint shares it: one set of held items for all.
        with ddbl.attach_or_start(environ={ddbl.ENV_ENDPOINT: endpoint.endpoint_url}) as shared:
            assert isinstance(shared, ddbl.ExternalDynamoDB)
            assert shared.endpoint_url == endpoint.endpoint_url
    assert strict_stats(endpoint.upstream.endpoint_url) is None  # the engine itself is not strict


def test_the_lenient_switch_really_lets_overlapping_transactions_through(dynamodb_local, table):
    environ = {ddbl.ENV_ENDPOINT: _bare_engine_url(dynamodb_local), "POSTING_DYNAMODB_STRICT": "0"}
    with ddbl.attach_or_start(environ=environ) as endpoint:
        assert not isinstance(endpoint, StrictDynamoDB)
        assert strict_stats(endpoint.endpoint_url) is None
        client = _client(endpoint.endpoint_url)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(
                pool.map(lambda _: client.transact_write_items(TransactItems=[_add(table, "lenient")]), range(40))
            )
        assert len(results) == 40  # none cancelled: DynamoDB Local alone never conflicts
    assert _item(client, table, "lenient") == {**_key("lenient"), "n": {"N": "40"}}


def test_the_counters_count(proxy, client, table):
    before = strict_stats(proxy.endpoint_url)
    assert before is not None
    client.transact_write_items(TransactItems=[_add(table, "c1")])
    client.put_item(TableName=table, Item=_key("c2"))
    first = _holding(proxy, lambda: client.transact_write_items(TransactItems=[_add(table, "c1")]))
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(TransactItems=[_add(table, "c1")])
    with pytest.raises(client.exceptions.TransactionConflictException):
        client.update_item(TableName=table, Key=_key("c1"), UpdateExpression="REMOVE n")
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": _key("c1")}}])
    client.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": _key("c1")}}]})
    first.result(timeout=10)
    after = strict_stats(proxy.endpoint_url)
    assert after is not None
    delta = {name: after[name] - before[name] for name in after if isinstance(after[name], int) and name in before}
    assert delta["transactions"] == 3
    assert delta["transactions_cancelled"] == 1
    assert delta["single_writes"] == 2
    assert delta["single_writes_refused"] == 1
    assert delta["transact_gets_cancelled"] == 1
    assert delta["batch_write_items_unprocessed"] == 1
    assert delta["conflicts"] == 4
    assert after["held_items"] == 0


# -- robustness -----------------------------------------------------------------------------------------


def test_many_concurrent_clients_are_all_answered_and_nothing_stays_held(dynamodb_local, table):
    server = StrictProxy(_bare_engine_url(dynamodb_local), StrictRules(tau_ms=5)).start()
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = _client(server.endpoint_url)
        for i in range(15):
            try:
                if i % 3 == 0:
                    client.put_item(TableName=table, Item={**_key(f"w{n % 4}"), "n": {"N": str(i)}})
                elif i % 3 == 1:
                    client.transact_write_items(TransactItems=[_add(table, f"w{n % 4}"), _put(table, f"own{n}-{i}")])
                else:
                    client.get_item(TableName=table, Key=_key(f"w{n % 4}"))
                outcome = "ok"
            except ClientError as error:
                outcome = error.response["Error"]["Code"]
            with lock:
                outcomes.append(outcome)

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads)
        assert len(outcomes) == 24 * 15
        assert set(outcomes) <= {"ok", "TransactionCanceledException", "TransactionConflictException"}
        assert server.stats()["held_items"] == 0
    finally:
        server.stop()


def test_a_dead_engine_is_an_internal_server_error_not_a_hang(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there once closed
    server = StrictProxy(f"http://127.0.0.1:{port}", StrictRules(tau_ms=0), upstream_timeout=2).start()
    try:
        client = _client(server.endpoint_url)
        began = time.monotonic()
        with pytest.raises(ClientError) as error:
            client.transact_write_items(TransactItems=[_add("nope", "x")])
        assert error.value.response["Error"]["Code"] == "InternalServerError"
        assert time.monotonic() - began < 10
    finally:
        server.stop()


def test_stopping_with_idle_keep_alive_clients_does_not_hang(dynamodb_local):
    server = StrictProxy(_bare_engine_url(dynamodb_local), StrictRules(tau_ms=0)).start()
    clients = [_client(server.endpoint_url) for _ in range(5)]
    for client in clients:
        client.list_tables()  # each leaves a keep-alive connection open
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 5


def test_writes_it_cannot_key_are_forwarded_unchanged(proxy, client, table):
    before = proxy.stats()["forwarded_unkeyed"]
    with pytest.raises(ClientError) as error:  # no such table: DynamoDB Local answers, not the proxy
        client.put_item(TableName="no-such-table", Item=_key("x"))
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:  # half a key: DynamoDB Local's validation answers
        client.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"PK": {"S": "x"}}}}])
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert proxy.stats()["forwarded_unkeyed"] == before + 2


def test_the_stats_endpoint_is_plain_json(proxy):
    import urllib.request

    with urllib.request.urlopen(proxy.endpoint_url + "/posting-strict/stats", timeout=5) as response:  # noqa: S310
        document = json.load(response)
    assert document["strict"] is True and document["tau_ms"] == HOLD_MS


# -- the child process ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_endpoint_runs_the_proxy_in_a_child_that_stops_with_it(dynamodb_local, tmp_path):
    engine = ddbl.ExternalDynamoDB(_bare_engine_url(dynamodb_local))
    endpoint = StrictDynamoDB(engine, StrictRules(tau_ms=30), log_dir=tmp_path)
    with endpoint:
        pid = endpoint.proxy_pid
        assert pid is not None and _alive(pid)
        assert endpoint.stats()["tau_ms"] == 30
        assert endpoint.client().list_tables()["TableNames"] is not None
        url = endpoint.endpoint_url
    assert not _alive(pid)
    assert strict_stats(url) is None
    assert endpoint.log_path is not None and endpoint.log_path.parent == tmp_path


def test_the_proxy_never_outlives_the_process_that_started_it(dynamodb_local, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    program = (
        "import os, time\n"
        "from posting_cli.local.dynamodb_local import attach_or_start\n"
        "endpoint = attach_or_start()\n"
        "print(endpoint.proxy_pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, ddbl.ENV_ENDPOINT: _bare_engine_url(dynamodb_local), "POSTING_CACHE_DIR": str(tmp_path)}
    owner = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert owner.stdout is not None
        proxy_pid = int(owner.stdout.readline())
        assert _alive(proxy_pid)
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    deadline = time.monotonic() + 10
    while _alive(proxy_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(proxy_pid)


# -- the flags -----------------------------------------------------------------------------------------


@pytest.fixture
def rules_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither rules variable set, and whatever a test sets in os.environ undone after it."""
    for name in ("POSTING_DYNAMODB_TAU_MS", "POSTING_DYNAMODB_STRICT"):
        monkeypatch.setenv(name, "")  # recorded, so the original state comes back at teardown
        monkeypatch.delenv(name)


@pytest.mark.parametrize("verb", [["local", "up"], ["local", "demo"], ["local", "soak"]])
def test_the_cli_flags_become_the_environment_every_engine_reads(verb, rules_environment):
    from posting_cli import cli
    from posting_cli.commands.local_stack import apply_dynamodb_options

    apply_dynamodb_options(cli._parser().parse_args(verb))
    assert StrictRules.from_environ() == StrictRules()  # no flag: strict, default τ

    apply_dynamodb_options(cli._parser().parse_args([*verb, "--dynamodb-tau-ms", "35", "--lenient-dynamodb"]))
    assert StrictRules.from_environ() == StrictRules(enabled=False, tau_ms=35)

    with pytest.raises(cli.CliError, match="τ"):
        apply_dynamodb_options(cli._parser().parse_args([*verb, "--dynamodb-tau-ms", "-5"]))


def test_the_bench_flags_become_the_environment(rules_environment):
    from posting_cli.bench.__main__ import _apply_dynamodb_options

    _apply_dynamodb_options(12.5, lenient=False)
    assert StrictRules.from_environ() == StrictRules(tau_ms=12.5)
    _apply_dynamodb_options(None, lenient=True)
    assert not StrictRules.from_environ().enabled


# -- the rules and the wire, without an engine ----------------------------------------------------------


def test_in_flight_rules_hold_over_any_interleaving():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from posting_cli.local.strict_dynamodb import InFlight, Refusal

    items = [("t", (("PK", "S", name),)) for name in "abcd"]
    step = st.one_of(
        st.tuples(st.just("transaction"), st.lists(st.sampled_from(items), min_size=1, max_size=3, unique=True)),
        st.tuples(st.just("write"), st.lists(st.sampled_from(items), min_size=1, max_size=1)),
        st.tuples(st.just("end"), st.integers(min_value=0, max_value=20)),
    )

    @settings(max_examples=300, deadline=None)
    @given(st.lists(step, max_size=40))
    def check(steps: list[tuple[str, Any]]) -> None:
        rules = InFlight()
        running: list[tuple[str, Any, list[Any]]] = []  # (kind, hold, keys)
        for kind, argument in steps:
            transactions = {key for k, _, keys in running if k == "transaction" for key in keys}
            writes = {key for k, _, keys in running if k == "write" for key in keys}
            if kind == "transaction":
                admitted = rules.begin_transaction(argument)
                clash = [i for i, key in enumerate(argument) if key in transactions or key in writes]
                if clash:
                    assert admitted == Refusal(tuple(clash))
                else:
                    assert isinstance(admitted, int)
                    running.append(("transaction", admitted, argument))
            elif kind == "write":
                ok = rules.begin_write(argument[0])
                assert ok == (argument[0] not in transactions)
                if ok:
                    running.append(("write", None, argument))
            elif running:
                done_kind, hold, keys = running.pop(argument % len(running))
                if done_kind == "transaction":
                    rules.end_transaction(hold, keys)
                else:
                    rules.end_writes(keys)
        for done_kind, hold, keys in running:
            if done_kind == "transaction":
                rules.end_transaction(hold, keys)
            else:
                rules.end_writes(keys)
        assert rules.held() == 0
        assert isinstance(rules.begin_transaction(items), int)  # everything released: all of it is free again

    check()


def test_replies_are_read_whatever_their_framing():
    import io

    from posting_cli.local.strict_dynamodb import _read_reply

    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"  # an interim answer first
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
    )
    reply, closes = _read_reply(io.BufferedReader(io.BytesIO(chunked)))  # type: ignore[arg-type]
    assert (reply.status, reply.body, closes) == (200, b'{"a":1}', False)
    assert b"Content-Length: 7\r\n" in reply.head and b"chunked" not in reply.head.lower()

    sized = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    reply, closes = _read_reply(io.BufferedReader(io.BytesIO(sized)))  # type: ignore[arg-type]
    assert (reply.status, reply.body, closes) == (400, b"{}", True)
    assert reply.head + reply.body == sized  # forwarded byte for byte

    unsized = b"HTTP/1.0 200 OK\r\n\r\nto the end"
    reply, closes = _read_reply(io.BufferedReader(io.BytesIO(unsized)))  # type: ignore[arg-type]
    assert (reply.body, closes) == (b"to the end", True)
