"""Why each moto patch exists, and that the patched server runs our ASL.

Everything runs against an in-process moto server on 127.0.0.1; no Docker,
no AWS, no network. Retry/timeout cases sleep about 1 s each (ASL minimums).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from posting_cli.local import moto_patches
from posting_cli.local.moto_server import MotoServer

pytestmark = pytest.mark.local_stack

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
SYNC = Config(inject_host_prefix=False, retries={"total_max_attempts": 1})


class TransientPostingError(Exception):
    pass


class PermanentPostingError(Exception):
    pass


HANDLERS: dict[str, Callable[[dict[str, Any]], Any]] = {}
CALLS: dict[str, int] = {}
WAITS: list[float] = []  # Retry waits the interpreter asked for (not slept)
_calls_lock = threading.Lock()


def dispatch(function_name: str, event: dict[str, Any]) -> Any:
    with _calls_lock:
        CALLS[function_name] = CALLS.get(function_name, 0) + 1
    return HANDLERS[function_name](event)


def _fail_first_time(event: dict[str, Any]) -> Any:
    if CALLS["flaky"] == 1:
        raise TransientPostingError("first attempt fails")
    return {**event, "flaky": "ok"}


def _always_transient(event: dict[str, Any]) -> Any:
    raise TransientPostingError("still down")


def _permanent(event: dict[str, Any]) -> Any:
    raise PermanentPostingError("rejected")


def _slow(event: dict[str, Any]) -> Any:
    time.sleep(2.0)
    return event


HANDLERS.update(
    validate=lambda e: {**e, "valid": True},
    post=lambda e: {**e, "posted": True},
    emit=lambda e: {**e, "emitted": True},
    double=lambda e: {"value": e["value"] * 2, "index": e["index"]},
    flaky=_fail_first_time,
    transient=_always_transient,
    permanent=_permanent,
    slow=_slow,
    not_json=lambda e: {"when": object()},
)


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def invoke(name: str, **extra: Any) -> dict[str, Any]:
    """A Task through the optimised integration, as the pipeline uses it."""
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": fn_arn(name), "Payload.$": "$"},
        "OutputPath": "$.Payload",
        **extra,
    }


THREE_TASKS = {
    "StartAt": "Validate",
    "States": {
        "Validate": invoke("validate", Next="Post"),
        "Post": {"Type": "Task", "Resource": fn_arn("post"), "Next": "Emit"},
        "Emit": invoke("emit", End=True),
    },
}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(dispatch=dispatch, retry_sleep=WAITS.append) as server:
        yield server


def reinstall(moto: MotoServer) -> None:
    moto_patches.install_all(moto.endpoint_url, dispatch, WAITS.append)


@pytest.fixture(scope="module")
def kw(moto: MotoServer) -> dict[str, Any]:
    return moto.client_kwargs(REGION)


@pytest.fixture(scope="module")
def role(kw: dict[str, Any]) -> str:
    iam = boto3.client("iam", **kw)
    arn: str = iam.create_role(RoleName="local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = boto3.client("lambda", **kw)
    for name in HANDLERS:
        # The role must exist in moto's IAM; the zip is never opened.
        lam.create_function(FunctionName=name, Role=arn, Code={"ZipFile": b"x"})
    return arn


@pytest.fixture(scope="module")
def sfn(kw: dict[str, Any]) -> Any:
    return boto3.client("stepfunctions", config=SYNC, **kw)


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()
    WAITS.clear()


@pytest.fixture
def unpatched(moto: MotoServer) -> Iterator[None]:
    """Remove every patch for one test, then put them back."""
    moto_patches.uninstall()
    yield
    reinstall(moto)


def count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Count the calls of a method from now on (one list item per call), calling it as before."""
    calls: list[int] = []
    original = getattr(owner, name)

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


def only_what_executions_need(sfn: Any) -> None:
    """Under `unpatched`: the patches without which no execution runs at all (undone after the test)."""
    moto_patches.install_start_sync_execution()
    moto_patches.install_lambda_dispatch(dispatch)
    moto_patches.route_interpreter_clients(sfn.meta.endpoint_url)


_sm_counter = iter(range(10**6))


def state_machine(sfn: Any, role: str, definition: dict[str, Any], **kw: Any) -> str:
    arn: str = sfn.create_state_machine(
        name=f"sm{next(_sm_counter)}",
        definition=json.dumps(definition),
        roleArn=role,
        type=kw.pop("type", "EXPRESS"),
    )["stateMachineArn"]
    return arn


def run(sfn: Any, arn: str, payload: Any) -> dict[str, Any]:
    result: dict[str, Any] = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(payload))
    return result


def catch_all(name: str, error: str) -> dict[str, Any]:
    return {
        "StartAt": "T",
        "States": {
            "T": invoke(
                name,
                Catch=[{"ErrorEquals": [error], "ResultPath": "$.error", "Next": "H"}],
                End=True,
            ),
            "H": {"Type": "Pass", "End": True},
        },
    }


# Why the patches are needed ----------------------------------------------


@pytest.mark.usefixtures("unpatched")
def test_moto_lacks_start_sync_execution(sfn: Any, role: str) -> None:
    arn = state_machine(sfn, role, THREE_TASKS)
    with pytest.raises(ClientError) as err:
        run(sfn, arn, {})
    # moto raises NotImplementedError -> HTTP 500 in server mode.
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_start_sync_execution_needs_inject_host_prefix_false(kw: dict[str, Any]) -> None:
    urls: list[str] = []

    class Sent(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        urls.append(request.url)
        raise Sent

    for config in (Config(), SYNC):
        client = boto3.client("stepfunctions", config=config, **kw)
        client.meta.events.register("before-send.sfn.StartSyncExecution", capture)
        with pytest.raises(Sent):
            client.start_sync_execution(stateMachineArn=f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:x")
    host = kw["endpoint_url"].removeprefix("http://")
    assert urls == [f"http://sync-{host}/", f"http://{host}/"]


def test_lambda_task_needs_docker_without_dispatch(
    moto: MotoServer, sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    arn = state_machine(sfn, role, THREE_TASKS)
    moto_patches.uninstall()
    try:
        moto_patches.install_start_sync_execution()
        moto_patches.route_interpreter_clients(moto.endpoint_url)
        out = run(sfn, arn, {})
    finally:
        reinstall(moto)
    assert out["status"] == "FAILED"
    assert "error running docker" in out["cause"]
    assert CALLS == {}


def test_interpreter_calls_localhost_moto_port_without_routing(
    moto: MotoServer, sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    monkeypatch.setenv("MOTO_PORT", str(closed_port))
    arn = state_machine(sfn, role, THREE_TASKS)
    moto_patches.uninstall()
    try:
        moto_patches.install_start_sync_execution()
        moto_patches.install_lambda_dispatch(dispatch)
        out = run(sfn, arn, {})
    finally:
        reinstall(moto)
    assert out["status"] == "FAILED"
    assert out["error"] == "States.Runtime"  # not catchable by States.ALL
    assert f"localhost:{closed_port}" in out["cause"]


# What the patched server does --------------------------------------------


def test_three_task_workflow(sfn: Any, role: str) -> None:
    arn = state_machine(sfn, role, THREE_TASKS)
    out = run(sfn, arn, {"id": "p1"})
    assert out["status"] == "SUCCEEDED"
    assert json.loads(out["output"]) == {
        "id": "p1",
        "valid": True,
        "posted": True,
        "emitted": True,
    }
    assert out["stateMachineArn"] == arn
    assert out["executionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:express:")
    assert json.loads(out["input"]) == {"id": "p1"}
    assert out["startDate"] <= out["stopDate"]
    assert CALLS == {"validate": 1, "post": 1, "emit": 1}


def test_raised_exception_is_a_lambda_function_error(kw: dict[str, Any], role: str) -> None:
    lam = boto3.client("lambda", **kw)
    resp = lam.invoke(FunctionName="permanent", Payload=b"{}")
    assert resp["FunctionError"]  # moto says "Handled"; AWS "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "PermanentPostingError"
    assert body["errorMessage"] == "rejected"
    assert any("_permanent" in line for line in body["stackTrace"])


def test_retry_then_success_on_exception_class_name(sfn: Any, role: str) -> None:
    retry = [{"ErrorEquals": ["TransientPostingError"], "IntervalSeconds": 2, "MaxAttempts": 3}]
    arn = state_machine(sfn, role, {"StartAt": "T", "States": {"T": invoke("flaky", Retry=retry, End=True)}})
    out = run(sfn, arn, {"id": "p2"})
    assert out["status"] == "SUCCEEDED"
    assert json.loads(out["output"]) == {"id": "p2", "flaky": "ok"}
    assert CALLS == {"flaky": 2}
    assert WAITS == [2]


def test_retries_exhausted_then_catch_with_result_path(sfn: Any, role: str) -> None:
    definition = catch_all("transient", "TransientPostingError")
    definition["States"]["T"]["Retry"] = [
        {
            "ErrorEquals": ["TransientPostingError"],
            "IntervalSeconds": 1,
            "MaxAttempts": 3,
            "BackoffRate": 2.0,
        }
    ]
    out = run(sfn, state_machine(sfn, role, definition), {"id": "p3"})
    assert out["status"] == "SUCCEEDED"
    result = json.loads(out["output"])
    assert result["id"] == "p3"
    assert result["error"]["Error"] == "TransientPostingError"
    assert json.loads(result["error"]["Cause"])["errorMessage"] == "still down"
    assert CALLS == {"transient": 4}
    assert WAITS == [1, 2, 4]


@pytest.mark.parametrize("error", ["PermanentPostingError", "States.TaskFailed", "States.ALL"])
def test_catch_matches(sfn: Any, role: str, error: str) -> None:
    out = run(sfn, state_machine(sfn, role, catch_all("permanent", error)), {})
    assert out["status"] == "SUCCEEDED"
    assert json.loads(out["output"])["error"]["Error"] == "PermanentPostingError"


def test_catch_does_not_match_other_error(sfn: Any, role: str) -> None:
    out = run(sfn, state_machine(sfn, role, catch_all("permanent", "TransientPostingError")), {})
    assert out["status"] == "FAILED"
    assert out["error"] == "PermanentPostingError"
    assert json.loads(out["cause"])["errorType"] == "PermanentPostingError"
    assert "output" not in out


def test_non_json_result_is_marshal_error(sfn: Any, role: str) -> None:
    arn = state_machine(sfn, role, {"StartAt": "T", "States": {"T": invoke("not_json", End=True)}})
    out = run(sfn, arn, {})
    assert (out["status"], out["error"]) == ("FAILED", "Runtime.MarshalError")


def test_inline_map_with_item_selector(sfn: Any, role: str) -> None:
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"value.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "D",
                    "States": {"D": invoke("double", End=True)},
                },
                "End": True,
            }
        },
    }
    out = run(sfn, state_machine(sfn, role, definition), {"items": [1, 2, 3]})
    assert out["status"] == "SUCCEEDED"
    assert json.loads(out["output"]) == [
        {"value": 2, "index": 0},
        {"value": 4, "index": 1},
        {"value": 6, "index": 2},
    ]


def test_top_level_timeout(sfn: Any, role: str) -> None:
    definition = {"TimeoutSeconds": 1, "StartAt": "T", "States": {"T": invoke("slow", End=True)}}
    started = time.monotonic()
    out = run(sfn, state_machine(sfn, role, definition), {})
    assert out["status"] == "TIMED_OUT"
    assert time.monotonic() - started < 1.8  # did not wait for the Lambda


def test_standard_workflow_is_rejected(sfn: Any, role: str) -> None:
    arn = state_machine(sfn, role, THREE_TASKS, type="STANDARD")
    with pytest.raises(sfn.exceptions.ClientError) as err:
        run(sfn, arn, {})
    assert err.value.response["Error"]["Code"] == "StateMachineTypeNotSupported"


def test_four_concurrent_sync_executions(kw: dict[str, Any], sfn: Any, role: str) -> None:
    arn = state_machine(sfn, role, THREE_TASKS)
    results: dict[int, dict[str, Any]] = {}

    def worker(i: int) -> None:
        client = boto3.client("stepfunctions", config=SYNC, **kw)
        for j in range(3):
            results[i * 10 + j] = run(client, arn, {"id": i * 10 + j})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 12
    for key, out in results.items():
        assert out["status"] == "SUCCEEDED"
        assert json.loads(out["output"])["id"] == key
    assert CALLS == {"validate": 12, "post": 12, "emit": 12}


# 5. SQS message bodies ------------------------------------------------------


@pytest.fixture(scope="module")
def strict_queue(kw: dict[str, Any]) -> tuple[Any, str]:
    sqs = boto3.client("sqs", **kw)
    url = sqs.create_queue(QueueName="strict", Attributes={"MaximumMessageSize": "8192"})["QueueUrl"]
    return sqs, url


def _refusal(sqs: Any, url: str, body: str) -> str | None:
    try:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return None


def test_moto_counts_characters_and_accepts_noncharacters(unpatched: None, kw: dict[str, Any]) -> None:
    sqs = boto3.client("sqs", **kw)
    url = sqs.create_queue(QueueName="loose", Attributes={"MaximumMessageSize": "8192"})["QueueUrl"]
    assert _refusal(sqs, url, "é" * 8192) is None  # 16,384 bytes: SQS refuses it
    assert _refusal(sqs, url, "a\ufffe") is None
    assert _refusal(sqs, url, "a\uffff") is None
    assert _refusal(sqs, url, "\x01") is None


def test_size_limit_is_counted_in_utf8_bytes(strict_queue: tuple[Any, str]) -> None:
    sqs, url = strict_queue
    assert _refusal(sqs, url, "x" * 8192) is None  # exactly the limit
    assert _refusal(sqs, url, "x" * 8193) == "InvalidParameterValue"
    assert _refusal(sqs, url, "é" * 4096) is None  # 8,192 bytes
    assert _refusal(sqs, url, "é" * 4097) == "InvalidParameterValue"  # 4,097 characters, 8,194 bytes
    assert _refusal(sqs, url, "x" + "\U0001f600" * 2048) == "InvalidParameterValue"  # 2,049 chars, 8,193 bytes


@pytest.mark.parametrize("character", ["\ufffe", "\uffff", "\x00", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff"])
def test_characters_sqs_refuses(strict_queue: tuple[Any, str], character: str) -> None:
    sqs, url = strict_queue
    assert _refusal(sqs, url, f"before {character} after") == "InvalidMessageContents"


@pytest.mark.parametrize("character", ["\t", "\n", "\r", " ", "\ud7ff", "\ue000", "\ufffd", "\U00010000", "\U0010ffff"])
def test_characters_sqs_allows(strict_queue: tuple[Any, str], character: str) -> None:
    sqs, url = strict_queue
    assert _refusal(sqs, url, f"before {character} after") is None


def test_batch_fails_only_the_refused_entries(strict_queue: tuple[Any, str]) -> None:
    sqs, url = strict_queue
    response = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "ok", "MessageBody": "fine"},
            {"Id": "nonchar", "MessageBody": "a\uffff"},
            {"Id": "big", "MessageBody": "é" * 4097},
        ],
    )
    assert [entry["Id"] for entry in response["Successful"]] == ["ok"]
    failed = {entry["Id"]: (entry["Code"], entry["SenderFault"]) for entry in response["Failed"]}
    assert failed == {"nonchar": ("InvalidMessageContents", True), "big": ("InvalidParameterValue", True)}


# 6. moto's module list ------------------------------------------------------


class _CountingOs:
    """Stands in for ``os`` in ``moto.backends``, counting directory listings."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.listings = 0

    def listdir(self, path: str) -> list[str]:
        self.listings += 1
        return list(self._real.listdir(path))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _listings_per_request(kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    from moto import backends

    counting = _CountingOs(backends.os)
    monkeypatch.setattr(backends, "os", counting)
    sqs = boto3.client("sqs", **kw)
    sqs.list_queues()  # the client's first request also resolves the endpoint: not counted
    counting.listings = 0
    for _ in range(5):
        sqs.list_queues()
    return counting.listings


def test_moto_lists_its_package_on_every_request(
    unpatched: None, kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _listings_per_request(kw, monkeypatch) >= 5


def test_module_list_is_listed_once(kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import backends

    assert _listings_per_request(kw, monkeypatch) == 0
    assert list(backends.list_of_moto_modules()) == sorted(backends.list_of_moto_modules())
    assert {"sqs", "stepfunctions", "events", "awslambda"} <= set(backends.list_of_moto_modules())


# 7. ASL parse trees ---------------------------------------------------------


def _parses_for_two_executions(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> int:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser

    arn = state_machine(sfn, role, THREE_TASKS)
    parses = count_calls(monkeypatch, ASLParser, "state_machine")
    for _ in range(2):
        assert run(sfn, arn, {"n": 1})["status"] == "SUCCEEDED"
    return len(parses)


def test_interpreter_parses_the_definition_on_every_execution(
    unpatched: None, sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_what_executions_need(sfn)
    assert _parses_for_two_executions(sfn, role, monkeypatch) == 2


def test_definition_is_parsed_once(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # create_state_machine parses it (validation), the executions reuse that tree.
    assert _parses_for_two_executions(sfn, role, monkeypatch) == 0


def test_a_definition_that_does_not_parse_is_still_refused(sfn: Any, role: str) -> None:
    broken = json.dumps({"StartAt": "T", "States": {"T": {"Type": "Nope", "End": True}}})
    for _ in range(2):  # the second time is not served from the cache
        with pytest.raises(ClientError):
            sfn.create_state_machine(name=f"broken{next(_sm_counter)}", definition=broken, roleArn=role)


# 8. SQS retention check and clock ---------------------------------------------


_queue_counter = iter(range(10**6))


def _attribute_builds_per_receive(kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> int:
    """How often one ReceiveMessage of 10 builds the queue's whole attribute map."""
    from moto.sqs.models import Queue

    sqs = boto3.client("sqs", **kw)
    url = sqs.create_queue(QueueName=f"retention{next(_queue_counter)}")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    builds: list[int] = []
    original = Queue.attributes

    def counting(self: Any) -> Any:
        builds.append(1)
        return original.fget(self)

    monkeypatch.setattr(Queue, "attributes", property(counting))
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 10
    return len(builds)


def test_moto_builds_every_queue_attribute_per_received_message(
    unpatched: None, kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _attribute_builds_per_receive(kw, monkeypatch) >= 10


def test_receive_builds_no_queue_attributes(kw: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    assert _attribute_builds_per_receive(kw, monkeypatch) == 0


def test_messages_past_retention_are_still_not_received(kw: dict[str, Any]) -> None:
    from moto.sqs.models import sqs_backends

    sqs = boto3.client("sqs", **kw)
    name = f"retention{next(_queue_counter)}"
    url = sqs.create_queue(QueueName=name, Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    [old] = sqs_backends[ACCOUNT][REGION].queues[name]._messages
    old.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention
    # moto marks a message received before it checks retention: VisibilityTimeout=0 keeps it visible.
    assert "Messages" not in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    old.sent_timestamp += 2_000  # 59 s ago: still retained
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert message["Body"] == "old"


def test_the_sqs_clock_is_the_epoch_clock() -> None:
    import datetime as dt

    from moto.core import utils as moto_utils
    from moto.sqs import models as sqs_models

    before = time.time()
    now = sqs_models.unix_time()
    assert before <= now <= time.time()
    assert abs(sqs_models.unix_time_millis() - time.time() * 1000) < 1_000
    moment = dt.datetime(2026, 12, 2, 4, 30)
    assert sqs_models.unix_time(moment) == moto_utils.unix_time(moment)


# 9. Texts of cached parse trees -----------------------------------------------

ESCAPES = {
    "Comment": 'quotes " and \\ and a tab\t, é, \u2028',
    "StartAt": "Pick",
    "States": {
        "Pick": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "Say"}],
            "Default": "Each",
        },
        "Say": {"Type": "Pass", "Parameters": {"text": 'line\nbreak "quoted" \\ é', "n.$": "$.n"}, "End": True},
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemProcessor": {"StartAt": "One", "States": {"One": invoke("double", End=True)}},
            "End": True,
        },
    },
}


def _text_work_of_second_execution(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(RuleContext.getText calls, ast.literal_eval calls) while the definition runs a second time."""
    from antlr4.RuleContext import RuleContext
    from moto.stepfunctions.parser.asl.antlt4utils import antlr4utils

    texts: list[int] = []
    literals: list[int] = []
    original_text = RuleContext.getText
    original_ast = antlr4utils.ast

    def counting_text(self: Any) -> str:
        texts.append(1)
        return original_text(self)

    def counting_literal(source: str) -> Any:
        literals.append(1)
        return original_ast.literal_eval(source)

    arn = state_machine(sfn, role, THREE_TASKS)
    assert run(sfn, arn, {"n": 1})["status"] == "SUCCEEDED"
    monkeypatch.setattr(RuleContext, "getText", counting_text)
    monkeypatch.setattr(antlr4utils, "ast", SimpleNamespace(literal_eval=counting_literal))
    assert run(sfn, arn, {"n": 1})["status"] == "SUCCEEDED"
    return len(texts), len(literals)


def test_preprocessor_rederives_texts_on_every_execution(
    unpatched: None, sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_what_executions_need(sfn)
    moto_patches.install_asl_parse_cache()  # even with the tree parsed once
    texts, literals = _text_work_of_second_execution(sfn, role, monkeypatch)
    assert texts > 100  # the whole program's text, node by node, for error messages it does not raise
    assert literals >= 3


def test_texts_of_a_cached_tree_are_computed_once(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _text_work_of_second_execution(sfn, role, monkeypatch) == (0, 0)


def test_the_program_from_remembered_texts_is_moto_s(unpatched: None) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = json.dumps(ESCAPES)
    shipped, _ = AmazonStateLanguageParser.parse(definition)
    moto_patches.install_asl_parse_cache()
    moto_patches.install_asl_text_cache()
    for _ in range(2):  # the second time from remembered texts and memoised literals
        program, _ = AmazonStateLanguageParser.parse(definition)
        assert _without_addresses(program) == _without_addresses(shipped)
    assert 'line\\nbreak "quoted" \\\\ é' in _without_addresses(program)


def _without_addresses(component: Any) -> str:
    import re

    return re.sub(r" at 0x[0-9a-f]+", "", str(component))


def test_a_map_with_escaped_strings_runs_the_same(sfn: Any, role: str) -> None:
    arn = state_machine(sfn, role, ESCAPES)
    for _ in range(2):
        said = run(sfn, arn, {"n": 1})
        assert json.loads(said["output"]) == {"text": 'line\nbreak "quoted" \\ é', "n": 1}
        mapped = run(sfn, arn, {"n": 2, "items": [{"value": 1, "index": 0}, {"value": 5, "index": 1}]})
        assert json.loads(mapped["output"]) == [{"value": 2, "index": 0}, {"value": 10, "index": 1}]


# 10. Intrinsic function parse trees ---------------------------------------------

INTRINSICS = {
    "StartAt": "Say",
    "States": {
        "Say": {
            "Type": "Pass",
            "Parameters": {
                "text.$": "States.Format('{} has {} items', $.name, States.ArrayLength($.items))",
                "has_two.$": "States.ArrayContains($.items, 2)",
            },
            "End": True,
        }
    },
}


def _intrinsic_parses_of_second_execution(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> int:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicParser import ASLIntrinsicParser

    arn = state_machine(sfn, role, INTRINSICS)
    assert run(sfn, arn, {"name": "a", "items": [1]})["status"] == "SUCCEEDED"
    parses = count_calls(monkeypatch, ASLIntrinsicParser, "func_decl")
    said = run(sfn, arn, {"name": "b", "items": [1, 2, 3]})
    assert json.loads(said["output"]) == {"text": "b has 3 items", "has_two": True}
    return len(parses)


def test_preprocessor_parses_intrinsic_functions_on_every_execution(
    unpatched: None, sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_patches.install_start_sync_execution()  # only to run executions; uninstalled after the test
    moto_patches.route_interpreter_clients(sfn.meta.endpoint_url)
    moto_patches.install_asl_parse_cache()  # even with the definition parsed once
    moto_patches.install_asl_text_cache()
    assert _intrinsic_parses_of_second_execution(sfn, role, monkeypatch) >= 2


def test_intrinsic_functions_are_parsed_once_per_text(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _intrinsic_parses_of_second_execution(sfn, role, monkeypatch) == 0


def test_an_intrinsic_text_with_syntax_errors_is_parsed_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicParser import ASLIntrinsicParser
    from moto.stepfunctions.parser.asl.parse.intrinsic.intrinsic_parser import IntrinsicParser

    parses = count_calls(monkeypatch, ASLIntrinsicParser, "func_decl")
    outcomes = []
    for _ in range(2):
        try:
            IntrinsicParser.parse("States.Format('{}', $.a")
            outcomes.append("parsed")
        except Exception as error:  # noqa: BLE001 - whatever moto makes of it, the same both times
            outcomes.append(type(error).__name__)
    assert len(parses) == 2
    assert outcomes[0] == outcomes[1]


# 11. JSON copies of state data --------------------------------------------------


def _deep_copies_of_one_execution(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> int:
    import copy

    copies: list[int] = []
    original = copy.deepcopy

    def counting(value: Any, memo: Any = None) -> Any:
        if memo is None and type(value) in (dict, list):  # a copy of a JSON container, not a recursion
            copies.append(1)
        return original(value, memo)

    arn = state_machine(sfn, role, THREE_TASKS)
    monkeypatch.setattr(copy, "deepcopy", counting)
    result = run(sfn, arn, {"n": 1, "nested": {"list": [1, "two", None, 3.5, True]}})
    monkeypatch.undo()
    assert json.loads(result["output"]) == {
        "n": 1,
        "nested": {"list": [1, "two", None, 3.5, True]},
        "valid": True,
        "posted": True,
        "emitted": True,
    }
    return len(copies)


def test_interpreter_deep_copies_state_data_generically(
    unpatched: None, sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_what_executions_need(sfn)
    assert _deep_copies_of_one_execution(sfn, role, monkeypatch) > 10


def test_state_data_is_copied_as_json(sfn: Any, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The interpreter's copies of dicts and lists no longer go through copy.deepcopy.
    assert _deep_copies_of_one_execution(sfn, role, monkeypatch) == 0


def test_json_copy_is_a_deep_copy() -> None:
    import datetime as dt
    from collections import OrderedDict

    moment = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)
    value = {"a": [1, {"b": "c"}], "d": None, "e": 1.5, "f": True, "g": moment, "h": OrderedDict(x=[1])}
    copied = moto_patches.json_copy(value)
    assert copied == value
    assert copied["a"] is not value["a"] and copied["a"][1] is not value["a"][1]
    assert type(copied["h"]) is OrderedDict and copied["h"]["x"] is not value["h"]["x"]  # deepcopy's copy
    assert copied["g"] == moment
    copied["a"][1]["b"] = "changed"
    assert value["a"][1]["b"] == "c"


# 12. SQS queues under their own lock -------------------------------------------


class _Pause:
    """Stops the first call of one message's method, in whichever server thread makes it, until
    `resume()`; `reached` is set once that call is waiting."""

    def __init__(self, message: Any, method: str, only_if: Callable[..., bool] = lambda *_: True) -> None:
        self.reached, self._go = threading.Event(), threading.Event()
        own = getattr(message, method)

        def paused(*args: Any, **kwargs: Any) -> Any:
            if only_if(*args) and not self.reached.is_set():
                self.reached.set()
                self._go.wait(30)
            return own(*args, **kwargs)

        setattr(message, method, paused)  # this message only: an instance attribute

    def resume(self) -> None:
        self._go.set()


def _overlapping(
    kw: dict[str, Any], url: str, first: tuple[str, dict[str, Any]], pause: _Pause, *others: tuple[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Calls `first` over HTTP until it reaches `pause`, then `others`; then lets `first` finish.
    Returns the responses, `first`'s first.

    While `first` is half-way, each of the others runs to its end if nothing holds the queue, and
    otherwise waits for `first` (under the patch, `first` holds the queue's lock while it pauses).
    """
    from moto.sqs.models import sqs_backends

    responses: dict[int, dict[str, Any]] = {}

    def call(index: int, method: str, arguments: dict[str, Any]) -> threading.Thread:
        client = boto3.client("sqs", **kw)

        def send() -> None:
            responses[index] = getattr(client, method)(QueueUrl=url, **arguments)

        thread = threading.Thread(target=send)
        thread.start()
        return thread

    started = [call(0, *first)]
    assert pause.reached.wait(30)
    lock = sqs_backends[ACCOUNT][REGION].queues[url.rsplit("/", 1)[-1]]._messages_lock
    queue_is_free = lock.acquire(blocking=False)  # only `first` can hold it now: nothing else runs
    if queue_is_free:
        lock.release()
    for index, (method, arguments) in enumerate(others, start=1):
        started.append(call(index, method, arguments))
        if queue_is_free:
            started[-1].join(30)
    pause.resume()
    for thread in started:
        thread.join(30)
    assert sorted(responses) == list(range(len(started)))  # every call answered
    return [responses[index] for index in range(len(started))]


def _queue_after_overlapping_deletes_and_a_send(kw: dict[str, Any]) -> set[str]:
    """Delete A pauses half-way through its copy of the message list; delete B and a SendMessageBatch
    run meanwhile (as the pipe's pollers delete while a producer sends). Returns the bodies kept."""
    from moto.sqs.models import sqs_backends

    sqs = boto3.client("sqs", **kw)
    name = f"overlap{next(_queue_counter)}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": body, "MessageBody": body} for body in ("a", "pause", "b")])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    handles = {message["Body"]: message["ReceiptHandle"] for message in received}
    queue = sqs_backends[ACCOUNT][REGION].queues[name]
    [message] = [m for m in queue._messages if m.body == "pause"]
    # A delete asks each message in turn whether the receipt handle is its own.
    pause = _Pause(message, "had_receipt_handle", only_if=lambda handle: handle == handles["a"])
    _overlapping(
        kw,
        url,
        ("delete_message", {"ReceiptHandle": handles["a"]}),
        pause,
        ("delete_message", {"ReceiptHandle": handles["b"]}),
        ("send_message_batch", {"Entries": [{"Id": body, "MessageBody": body} for body in ("c", "d")]}),
    )
    return {m.body for m in queue._messages}


def test_moto_loses_messages_sent_between_overlapping_deletes(unpatched: None, kw: dict[str, Any]) -> None:
    # A puts back its copy of the list: "b", deleted by B, is back, and "c" and "d" are gone for good,
    # though the sender was given their message ids.
    assert _queue_after_overlapping_deletes_and_a_send(kw) == {"pause", "b"}


def test_overlapping_deletes_keep_every_message_sent_meanwhile(kw: dict[str, Any]) -> None:
    assert _queue_after_overlapping_deletes_and_a_send(kw) == {"pause", "c", "d"}


def _bodies_of_two_overlapping_receives(kw: dict[str, Any]) -> list[str]:
    """Receive A pauses as it takes its one message; receive B runs meanwhile. Returns what each got."""
    from moto.sqs.models import sqs_backends

    sqs = boto3.client("sqs", **kw)
    name = f"overlap{next(_queue_counter)}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="once")
    [message] = sqs_backends[ACCOUNT][REGION].queues[name]._messages
    pause = _Pause(message, "mark_received")
    responses = _overlapping(kw, url, ("receive_message", {}), pause, ("receive_message", {}))
    return [m["Body"] for response in responses for m in response.get("Messages", [])]


def test_moto_hands_one_message_to_two_overlapping_receives(unpatched: None, kw: dict[str, Any]) -> None:
    assert _bodies_of_two_overlapping_receives(kw) == ["once", "once"]


def test_overlapping_receives_take_a_message_once(kw: dict[str, Any]) -> None:
    assert _bodies_of_two_overlapping_receives(kw) == ["once"]
