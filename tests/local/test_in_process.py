"""The local stack's AWS-internal clients (the pipe's, the ASL interpreter's) reach moto without a socket.

Each case makes the same call through the server and in-process and compares what the client sees:
the same moto application answers both, so only the transport may differ.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.httpsession
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from posting_cli.local.moto_server import MotoServer

pytestmark = pytest.mark.local_stack

REGION = "us-east-1"
FUNCTION = f"arn:aws:lambda:{REGION}:123456789012:function:echo"


def _dispatch(function_name: str, event: Any) -> Any:
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"function": function_name, "event": event}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(dispatch=_dispatch) as server:
        kw = server.client_kwargs(REGION)
        role = boto3.client("iam", **kw).create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        boto3.client("lambda", **kw).create_function(FunctionName="echo", Role=role, Code={"ZipFile": b"x"})
        yield server


def _pair(moto: MotoServer, service: str, **extra: Any) -> tuple[Any, Any]:
    kw = moto.client_kwargs(REGION)
    return boto3.client(service, **kw, **extra), moto.in_process(boto3.client(service, **kw, **extra))


def _without_transport(response: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


@pytest.fixture
def no_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any request that would go over HTTP fails the test."""

    def refuse(self: Any, request: Any) -> Any:
        raise AssertionError(f"HTTP request to {request.url}")

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", refuse)


def test_sqs_round_trip_without_a_socket(moto: MotoServer) -> None:
    http, local = _pair(moto, "sqs")
    url = http.create_queue(QueueName="round-trip")["QueueUrl"]
    attributes = {"kind": {"DataType": "String", "StringValue": "é"}}
    http.send_message(QueueUrl=url, MessageBody="through the server ✓", MessageAttributes=attributes)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.httpsession.URLLib3Session, "send", lambda *a: pytest.fail("HTTP used"))
        local.send_message(QueueUrl=url, MessageBody="in-process ✓", MessageAttributes=attributes)
        received = local.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )["Messages"]
        assert sorted(m["Body"] for m in received) == ["in-process ✓", "through the server ✓"]
        assert all(m["MessageAttributes"] == attributes for m in received)
        entries = [{"Id": "0", "ReceiptHandle": received[0]["ReceiptHandle"]}, {"Id": "1", "ReceiptHandle": "bogus"}]
        deleted = local.delete_message_batch(QueueUrl=url, Entries=entries)
    assert deleted["Successful"] == [{"Id": "0"}]
    assert deleted["Failed"][0]["Code"] == "ReceiptHandleIsInvalid"
    assert (
        _without_transport(http.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"][
            "ApproximateNumberOfMessagesNotVisible"
        ]
        == "1"
    )


def test_errors_are_the_server_s(moto: MotoServer) -> None:
    http, local = _pair(moto, "sqs")
    codes = []
    for client in (http, local):
        with pytest.raises(ClientError) as raised:
            client.get_queue_url(QueueName="no-such-queue")
        codes.append((raised.value.response["Error"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]))
    assert codes[0] == codes[1]


def test_lambda_invoke_payloads_and_function_errors(moto: MotoServer, no_http: None) -> None:
    _, local = _pair(moto, "lambda")
    answer = local.invoke(FunctionName=FUNCTION, Payload=json.dumps({"n": 1}))
    assert answer["StatusCode"] == 200 and "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"function": "echo", "event": {"n": 1}}
    failed = local.invoke(FunctionName=FUNCTION, Payload=json.dumps({"fail": True}))
    assert failed["FunctionError"] == "Handled"  # what moto says (patch 2)
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
    with pytest.raises(ClientError) as missing:
        local.invoke(FunctionName="nope", Payload=b"{}")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_sync_execution_and_its_tasks_run_without_a_socket(moto: MotoServer, no_http: None) -> None:
    definition = {
        "StartAt": "Echo",
        "States": {
            "Echo": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": FUNCTION, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "End": True,
            }
        },
    }
    _, sfn = _pair(moto, "stepfunctions", config=Config(inject_host_prefix=False))
    arn = sfn.create_state_machine(
        name="in-process",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/r",
        type="EXPRESS",
    )["stateMachineArn"]
    began = time.monotonic()
    result = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps({"n": 2}))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"function": "echo", "event": {"n": 2}}
    assert time.monotonic() - began < 5


def test_a_stopped_server_serves_no_one() -> None:
    server = MotoServer()
    with pytest.raises(RuntimeError):
        server.in_process(boto3.client("sqs", region_name=REGION, endpoint_url="http://127.0.0.1:1"))
