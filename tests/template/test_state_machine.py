"""Every statemachine/*.asl.json, run in moto's real ASL interpreter: no path may drop a record.

cfn-lint does not look inside the ASL, so each file is created in moto (which parses it) and executed
with StartSyncExecution, the call the EventBridge Pipe makes. The Lambda tasks are stubs with canned
answers: these tests are about the workflow's wiring (what each step receives, what the pipe gets
back, what is retried and what is caught), not about the handlers. Each ASL file is wired exactly as
template.yaml wires it (its state machine's type and DefinitionSubstitutions), with every function
ARN pointing at a stub named after the step its Handler runs (posting.handlers.<step>.handler).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import JsonRESTError

from posting_cli.local.moto_server import MotoServer
from posting_cli.local.template import ACCOUNT_ID, REGION, Template, default_template_path
from tests.builders import request, sqs_record

pytestmark = pytest.mark.local_stack

STATEMACHINE_DIR = Path(__file__).resolve().parents[2] / "statemachine"
ASL_FILES = sorted(STATEMACHINE_DIR.glob("*.asl.json"))
SYNC = Config(inject_host_prefix=False, retries={"total_max_attempts": 1})
# The Lambda service errors AWS recommends retrying on every Lambda task.
LAMBDA_SERVICE_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}


# Stub Lambda functions -----------------------------------------------------------------------------

Step = Callable[[Any], Any]
STEPS: dict[str, Step] = {}
CALLS: list[tuple[str, Any]] = []  # (step, event) in call order
WAITS: list[float] = []  # Retry waits the interpreter asked for (not slept)
_lock = threading.Lock()


def dispatch(function_name: str, event: Any) -> Any:
    with _lock:
        CALLS.append((function_name, event))
    return STEPS[function_name](event)


def fail(error: type[Exception] = RuntimeError) -> Step:
    def step(event: Any) -> Any:
        raise error("the handler broke")

    return step


def answer(result: Any) -> Step:
    return lambda event: result


RECORDS = [sqs_record(request(f"pay-{n}"), message_id=f"m{n}") for n in (1, 2, 3)]
VALIDATED = {
    "items": [
        {
            "message_id": r["messageId"],
            "receive_count": 1,
            "body": r["body"],
            "posting_id": f"pay-{n}",
            "producer_id": r["attributes"]["SenderId"],
            "original_producer_id": r["attributes"]["SenderId"],
        }
        for n, r in enumerate(RECORDS, start=1)
    ]
}
POSTED = {"items": [{**item, "outcome": {"status": "POSTED"}} for item in VALIDATED["items"]]}
EMITTED = {"batchItemFailures": [{"itemIdentifier": "m2"}]}


def failures(*message_ids: str) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}


ALL_RECORDS = failures(*(r["messageId"] for r in RECORDS))


@pytest.fixture(autouse=True)
def steps() -> Iterator[dict[str, Step]]:
    """The canned happy path; a test replaces the steps it wants to break."""
    STEPS.clear()
    STEPS.update(validate=answer(VALIDATED), post=answer(POSTED), emit=answer(EMITTED))
    CALLS.clear()
    WAITS.clear()
    yield STEPS


# The workflow under test, wired as template.yaml wires it -----------------------------------------


@dataclass(frozen=True)
class Workflow:
    arn: str
    definition: dict[str, Any]
    step_of_state: dict[str, str]  # Task state name -> stub step it invokes


def state_machine_for(template: Template, asl: Path) -> str:
    for logical_id in template.resources_of_type("AWS::Serverless::StateMachine"):
        if (template.path.parent / template.properties(logical_id)["DefinitionUri"]).resolve() == asl.resolve():
            return logical_id
    raise AssertionError(f"{asl.name} is not the DefinitionUri of any state machine in template.yaml")


def step_name(template: Template, function_id: str) -> str:
    """posting.handlers.post.handler -> "post"."""
    return str(template.properties(function_id)["Handler"].split(".")[-2])


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer(dispatch=dispatch, retry_sleep=WAITS.append) as server:
        yield server


@pytest.fixture(scope="module")
def aws(moto: MotoServer) -> dict[str, Any]:
    return moto.client_kwargs(REGION)


@pytest.fixture(scope="module")
def role(aws: dict[str, Any]) -> str:
    # moto's Lambda and Step Functions only check that the role exists.
    arn: str = boto3.client("iam", **aws).create_role(RoleName="posting-workflow", AssumeRolePolicyDocument="{}")[
        "Role"
    ]["Arn"]
    return arn


@pytest.fixture(scope="module")
def sfn(aws: dict[str, Any]) -> Any:
    return boto3.client("stepfunctions", config=SYNC, **aws)


_created_functions: set[str] = set()
DLQ_NAME = "posting-workflow-dlq"


def max_receive_count(template: Template) -> int:
    return int(template.parameters["MaxReceiveCount"])


@pytest.fixture(scope="module")
def dlq_url(aws: dict[str, Any]) -> str:
    url: str = boto3.client("sqs", **aws).create_queue(QueueName=DLQ_NAME)["QueueUrl"]
    return url


@pytest.fixture
def dead_letters(aws: dict[str, Any], dlq_url: str) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Read (and remove) what the workflow sent to the DLQ itself."""
    sqs = boto3.client("sqs", **aws)

    def read() -> list[dict[str, Any]]:
        found = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        messages: list[dict[str, Any]] = found.get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    read()  # what an earlier test left
    yield read


@pytest.fixture(scope="module", params=ASL_FILES, ids=lambda path: path.name)
def workflow(
    request: pytest.FixtureRequest, template: Template, aws: dict[str, Any], role: str, sfn: Any, *, dlq_url: str
) -> Workflow:
    asl: Path = request.param
    properties = template.properties(state_machine_for(template, asl))
    text = asl.read_text()
    lam = boto3.client("lambda", **aws)
    stubs: dict[str, str] = {}  # function ARN as substituted -> stub name
    for key, value in properties["DefinitionSubstitutions"].items():
        if value == {"Ref": "PostingDLQ"}:
            text = text.replace("${" + key + "}", dlq_url)
            continue
        if value == {"Ref": "MaxReceiveCount"}:
            text = text.replace("${" + key + "}", str(max_receive_count(template)))
            continue
        function_id = value["Fn::GetAtt"][0]
        name = step_name(template, function_id)
        if name not in _created_functions:
            lam.create_function(FunctionName=name, Role=role, Code={"ZipFile": b"x"})  # never opened
            _created_functions.add(name)
        stubs[function_arn(name)] = name
        text = text.replace("${" + key + "}", function_arn(name))
    assert not re.search(r"\$\{[^}]+\}", text), "placeholders left without a substitution"
    definition = json.loads(text)
    arn: str = sfn.create_state_machine(
        name=asl.name.removesuffix(".asl.json"), definition=text, roleArn=role, type=properties["Type"]
    )["stateMachineArn"]
    step_of_state = {
        name: stubs[state["Parameters"]["FunctionName"]]
        for name, state in all_states(definition).items()
        if state["Type"] == "Task" and state["Resource"].endswith(":lambda:invoke")
    }
    return Workflow(arn=arn, definition=definition, step_of_state=step_of_state)


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, including those inside Map item processors and Parallel branches."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for inner in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                found |= all_states(inner)
    return found


def run(sfn: Any, workflow: Workflow, records: list[dict[str, Any]] = RECORDS) -> Any:
    """Start the workflow as the pipe does; the parsed output of a SUCCEEDED execution."""
    result = sfn.start_sync_execution(stateMachineArn=workflow.arn, input=json.dumps(records))
    assert result["status"] == "SUCCEEDED", result
    return json.loads(result["output"])


def calls_to(step: str) -> list[Any]:
    return [event for name, event in CALLS if name == step]


# Structure: nothing can fall through ---------------------------------------------------------------


def endings(states: dict[str, dict[str, Any]], name: str, workflow: Workflow) -> list[str]:
    """Every state a run can end in from `name`, following Next, Choice branches and Catches."""
    seen: set[str] = set()
    ends: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        state = states[current]
        todo += [catch["Next"] for catch in state.get("Catch", [])]
        todo += [choice["Next"] for choice in state.get("Choices", [])] + (
            [state["Default"]] if "Default" in state else []
        )
        if state.get("End"):
            ends.append(current)
        elif "Next" in state:
            todo.append(state["Next"])
    return ends


def answers_the_pipe(state: dict[str, Any], step: str | None) -> bool:
    """A Pass building batchItemFailures, or the Emit function (which always returns them) as the last state."""
    keys = {key.removesuffix(".$") for key in state.get("Parameters", state.get("Result", {}))}
    return (state["Type"] == "Pass" and keys == {"batchItemFailures"}) or (state["Type"] == "Task" and step == "emit")


def test_every_task_catches_everything_and_every_path_answers_the_pipe(workflow: Workflow) -> None:
    states = workflow.definition["States"]
    tasks = {name: state for name, state in states.items() if state["Type"] == "Task"}
    assert tasks
    assert not [name for name, state in all_states(workflow.definition).items() if state["Type"] == "Fail"]
    for name, task in tasks.items():
        catch_all = [c for c in task.get("Catch", []) if "States.ALL" in c["ErrorEquals"]]
        assert len(catch_all) == 1, f"{name} has no Catch on States.ALL"
        # The error is kept beside the step's input, so the failure path can say why.
        assert catch_all[0]["ResultPath"] in ("$.error", "$.salvage_error"), name
    for end in endings(
        states, states["Receive"]["Next"] if "Receive" in states else workflow.definition["StartAt"], workflow
    ):
        assert answers_the_pipe(states[end], workflow.step_of_state.get(end)), end
    assert "TimeoutSeconds" in workflow.definition


def test_lambda_service_errors_are_retried_and_handler_errors_are_not(workflow: Workflow) -> None:
    for name, state in all_states(workflow.definition).items():
        if state["Type"] != "Task" or not state["Resource"].endswith(":lambda:invoke"):
            continue
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        assert retried >= LAMBDA_SERVICE_ERRORS, name
        # A handler error is a bug or an outage the whole batch shares: it goes back to the queue.
        assert not retried & {"States.ALL", "States.TaskFailed"}, name
        assert all(not e.startswith("Lambda.") or e in LAMBDA_SERVICE_ERRORS for e in retried), name
        for retrier in state.get("Retry", []):
            attempts = retrier.get("MaxAttempts", 3)
            assert attempts >= 2, f"{name}: a throttled Lambda deserves more than {attempts} retry"
            # The waits must fit in the workflow's timeout, or the last retries never happen.
            assert sum(backoff(retrier, attempts)) < workflow.definition["TimeoutSeconds"], name


# Execution -------------------------------------------------------------------------------------------


def test_happy_path_answers_the_pipe_with_emits_batch_item_failures(sfn: Any, workflow: Workflow) -> None:
    assert run(sfn, workflow) == EMITTED
    assert [name for name, _ in CALLS] == ["validate", "post", "emit"]
    assert calls_to("validate") == [RECORDS]  # the pipe's raw array of SQS records
    assert calls_to("post") == [VALIDATED]
    assert calls_to("emit") == [POSTED]


ERROR_KEYS = {"Error", "Cause"}


def test_validate_failing_is_salvaged_by_emit_with_the_error(
    sfn: Any, workflow: Workflow, steps: dict[str, Step]
) -> None:
    steps["validate"] = fail()
    assert run(sfn, workflow) == EMITTED
    assert [name for name, _ in CALLS] == ["validate", "emit"]  # a handler error is not retried
    (salvage,) = calls_to("emit")
    assert salvage["records"] == RECORDS
    assert salvage["failed_step"] == "Validate"
    assert set(salvage["error"]) == ERROR_KEYS and "the handler broke" in salvage["error"]["Cause"]


@pytest.mark.parametrize("broken", ["post", "emit"])
def test_post_or_emit_failing_is_salvaged_by_emit_with_the_error(
    sfn: Any, workflow: Workflow, steps: dict[str, Step], broken: str
) -> None:
    salvaged = {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    calls = iter([fail()] if broken == "emit" else [])

    def emit(event: Any) -> Any:
        if "error" in event:
            return salvaged
        return next(calls, answer(EMITTED))(event)

    steps[broken] = fail() if broken == "post" else emit
    steps["emit"] = emit
    assert run(sfn, workflow) == salvaged
    salvage = calls_to("emit")[-1]
    assert salvage["failed_step"] == broken.capitalize()
    assert salvage["items"] == (VALIDATED if broken == "post" else POSTED)["items"]
    assert set(salvage["error"]) == ERROR_KEYS
    assert len(calls_to(broken)) == (1 if broken == "post" else 2)  # the failing call, then the salvage


def items_with_receive_counts(counts: list[int]) -> list[dict[str, Any]]:
    return [{**item, "receive_count": count} for item, count in zip(VALIDATED["items"], counts, strict=True)]


@pytest.mark.parametrize("broken", ["post", "emit"])
def test_when_the_salvage_fails_too_last_deliveries_are_dead_lettered_with_the_reason(
    sfn: Any, workflow: Workflow, steps: dict[str, Step], template: Template, *, dead_letters: Any, broken: str
) -> None:
    last = max_receive_count(template)
    steps["validate"] = answer({"items": items_with_receive_counts([1, last, last - 1])})
    steps["post"] = fail() if broken == "post" else (lambda event: event)
    steps["emit"] = fail()
    assert run(sfn, workflow) == failures("m1", "m3")  # m2 is in the DLQ: it must not come back
    (letter,) = dead_letters()
    attributes = {name: value["StringValue"] for name, value in letter["MessageAttributes"].items()}
    assert letter["Body"] == RECORDS[1]["body"]
    assert attributes["source_message_id"] == "m2"
    assert attributes["receive_count"] == str(last)
    assert attributes["failure_error"] == "RuntimeError"
    # The error's name only: its Cause holds the exception's message, which may quote the request.
    assert attributes["failure_message"] == "the workflow failed for the whole batch: RuntimeError"
    assert attributes["producer_id"] == attributes["original_producer_id"] == RECORDS[1]["attributes"]["SenderId"]


def test_a_last_delivery_that_names_no_producer_goes_back_to_the_queue(
    sfn: Any, workflow: Workflow, steps: dict[str, Step], template: Template, dead_letters: Any
) -> None:
    # The queue's redrive policy then moves it, with the sender SQS recorded; never unattributed.
    last = max_receive_count(template)
    items = items_with_receive_counts([last, last, 1])
    del items[0]["producer_id"], items[0]["original_producer_id"]
    steps["validate"] = answer({"items": items})
    steps["post"] = fail()
    steps["emit"] = fail()
    assert run(sfn, workflow) == failures("m1", "m3")
    assert [letter["MessageAttributes"]["source_message_id"]["StringValue"] for letter in dead_letters()] == ["m2"]


def test_when_every_item_is_on_its_last_delivery_all_are_dead_lettered_and_none_return(
    sfn: Any, workflow: Workflow, steps: dict[str, Step], template: Template, dead_letters: Any
) -> None:
    last = max_receive_count(template)
    steps["validate"] = answer({"items": items_with_receive_counts([last, last, last])})
    steps["post"] = fail()
    steps["emit"] = fail()
    assert run(sfn, workflow) == failures()
    assert sorted(letter["MessageAttributes"]["source_message_id"]["StringValue"] for letter in dead_letters()) == [
        "m1",
        "m2",
        "m3",
    ]


def test_validate_and_its_salvage_failing_return_every_record(
    sfn: Any, workflow: Workflow, steps: dict[str, Step]
) -> None:
    steps["validate"] = fail()
    steps["emit"] = fail()
    assert run(sfn, workflow) == ALL_RECORDS  # the queue's redrive policy is the backstop


def test_a_failed_batch_of_one_returns_that_record(sfn: Any, workflow: Workflow, steps: dict[str, Step]) -> None:
    steps["validate"] = fail()
    steps["emit"] = fail()
    assert run(sfn, workflow, RECORDS[:1]) == failures(RECORDS[0]["messageId"])


# Lambda service errors: the Lambda API itself answers with an error, before any handler runs.


def lambda_service_errors(monkeypatch: pytest.MonkeyPatch, step: str, error_name: str, times: int) -> list[str]:
    """The next `times` invocations of `step` fail in moto's Lambda API with `error_name`."""
    failed: list[str] = []
    original = LambdaFunction.invoke

    class LambdaServiceError(JsonRESTError):
        code = 500

    def invoke(self: LambdaFunction, *args: Any, **kwargs: Any) -> Any:
        if self.function_name == step and len(failed) < times:
            failed.append(step)
            # The interpreter names a Lambda API error "Lambda.<error code>", as Step Functions does.
            raise LambdaServiceError(error_name.removeprefix("Lambda."), "try again")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LambdaFunction, "invoke", invoke)
    return failed


def retrier_for(workflow: Workflow, step: str, error_name: str) -> dict[str, Any]:
    # The step's own state; the salvage states that also invoke Emit carry the same retrier.
    (state,) = [
        s
        for name, s in all_states(workflow.definition).items()
        if workflow.step_of_state.get(name) == step and not name.startswith("Salvage")
    ]
    (retrier,) = [r for r in state["Retry"] if error_name in r["ErrorEquals"]]
    return retrier


def backoff(retrier: dict[str, Any], waits: int) -> list[float]:
    interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    return [interval * rate**n for n in range(waits)]


@pytest.mark.parametrize("error_name", sorted(LAMBDA_SERVICE_ERRORS))
@pytest.mark.parametrize("step", ["validate", "post", "emit"])
def test_lambda_service_error_is_retried_then_succeeds(
    sfn: Any, workflow: Workflow, monkeypatch: pytest.MonkeyPatch, step: str, error_name: str
) -> None:
    retrier = retrier_for(workflow, step, error_name)
    times = retrier.get("MaxAttempts", 3)  # as many failures as the retrier absorbs
    failed = lambda_service_errors(monkeypatch, step, error_name, times)
    assert run(sfn, workflow) == EMITTED
    assert len(failed) == times
    assert len(calls_to(step)) == 1  # the handler ran once, after the service recovered
    assert backoff(retrier, times) == WAITS


@pytest.mark.parametrize("step", ["validate", "post", "emit"])
def test_lambda_service_error_beyond_retries_is_salvaged_or_returns_the_whole_batch(
    sfn: Any, workflow: Workflow, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    retrier = retrier_for(workflow, step, "Lambda.ServiceException")
    attempts = retrier.get("MaxAttempts", 3) + 1
    failed = lambda_service_errors(monkeypatch, step, "Lambda.ServiceException", 2 * attempts)
    if step == "emit":
        # Emit and its salvage both fail: nothing is on its last delivery, so everything goes back.
        assert run(sfn, workflow) == ALL_RECORDS
        assert len(failed) == 2 * attempts
    else:
        assert run(sfn, workflow) == EMITTED  # Emit salvaged the batch with the step's error
        assert len(failed) == attempts
        (salvage,) = calls_to("emit")
        assert salvage["error"]["Error"] == "Lambda.ServiceException"
    assert calls_to(step) == []


# The timeout budget ----------------------------------------------------------------------------------

# Assumptions of the budget, stated once. A Lambda task's attempt lasts at most its function's Timeout
# plus the invocation's own overhead. A retried Lambda service error (throttling, a service fault) is
# Lambda's answer to the Invoke, not a run of the function: it costs the overhead, then the wait.
INVOKE_OVERHEAD_SECONDS = 1
# The Pass, Choice and Map bookkeeping of a path takes the rest of the workflow's time.
BOOKKEEPING_SECONDS = 4


def task_seconds(state: dict[str, Any], function_timeouts: dict[str, int]) -> float:
    """The longest a Task state can take, its retries included."""
    if state["Resource"].endswith(":lambda:invoke"):
        attempt = function_timeouts[state["Parameters"]["FunctionName"]] + INVOKE_OVERHEAD_SECONDS
        retried_attempt: float = INVOKE_OVERHEAD_SECONDS
    else:  # an SDK integration: every attempt, retried or not, may run to the state's timeout
        assert "TimeoutSeconds" in state, state["Resource"]
        attempt = retried_attempt = state["TimeoutSeconds"]
    total: float = attempt
    for retrier in state.get("Retry", []):
        waits = backoff(retrier, retrier.get("MaxAttempts", 3))
        total += sum(waits) + retried_attempt * len(waits)
    return total


def longest_path(states: dict[str, Any], start: str, function_timeouts: dict[str, int]) -> tuple[float, list[str]]:
    """The slowest way through the states from start, following Next, Choice branches and Catch."""
    state = states[start]
    if state["Type"] == "Task":
        own = task_seconds(state, function_timeouts)
    elif state["Type"] == "Map":  # inline iterations run side by side: the slowest one counts
        processor = state["ItemProcessor"]
        own = longest_path(processor["States"], processor["StartAt"], function_timeouts)[0]
    else:
        own = 0
    following = [state["Next"]] if "Next" in state else []
    following += [choice["Next"] for choice in state.get("Choices", [])]
    following += [state["Default"]] if "Default" in state else []
    following += [catch["Next"] for catch in state.get("Catch", [])]
    if not following:
        return own, [start]
    slowest, path = max(longest_path(states, name, function_timeouts) for name in following)
    return own + slowest, [start, *path]


def test_every_path_through_the_workflow_fits_its_timeout(template: Template) -> None:
    """A batch that times out as a whole loses each last delivery's reason: the failure paths must finish."""
    properties = template.properties("PostingStateMachine")
    definition = json.loads((default_template_path().parent / properties["DefinitionUri"]).read_text())
    function_timeouts = {}
    for key, value in properties["DefinitionSubstitutions"].items():
        if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Arn":
            logical_id = value["Fn::GetAtt"][0]
            timeout = template.function_setting(logical_id, "Timeout")
            function_timeouts["${" + key + "}"] = int(timeout)
    assert len(function_timeouts) == 3
    seconds, path = longest_path(definition["States"], definition["StartAt"], function_timeouts)
    # The longest path runs every step, then Emit's salvage, then dead-letters from the workflow.
    assert {"Validate", "Post", "Emit", "SalvageAfterEmit", "DeadLetterLastDeliveries"} <= set(path)
    assert seconds + BOOKKEEPING_SECONDS <= definition["TimeoutSeconds"], (seconds, path)


def test_the_budget_counts_retries_and_the_slowest_branch() -> None:
    states = {
        "A": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "f"},
            "Retry": [{"ErrorEquals": ["x"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Slow"}],
            "Next": "Fast",
        },
        "Fast": {"Type": "Pass", "End": True},
        "Slow": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "TimeoutSeconds": 2, "End": True},
    }
    seconds, path = longest_path(states, "A", {"f": 10})
    assert path == ["A", "Slow"]
    assert seconds == (10 + 1) + (1 + 2) + 2 * 1 + 2


# On a FIFO queue: the last-resort path keeps each dead letter in its message group ------------------


@pytest.fixture(scope="module")
def fifo_dlq(aws: dict[str, Any]) -> str:
    sqs = boto3.client("sqs", **aws)
    url: str = sqs.create_queue(QueueName="posting-workflow-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    return url


@pytest.fixture(scope="module")
def fifo_workflow(template: Template, aws: dict[str, Any], role: str, sfn: Any, fifo_dlq: str) -> str:
    """The workflow as template.yaml wires it, dead-lettering to a FIFO DLQ; its functions are the
    stubs test_state_machine.py creates (named after their step)."""
    asl = STATEMACHINE_DIR / "posting.asl.json"
    properties = template.properties(state_machine_for(template, asl))
    text = asl.read_text()
    lam = boto3.client("lambda", **aws)
    existing = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    for key, value in properties["DefinitionSubstitutions"].items():
        if value == {"Ref": "PostingDLQ"}:
            text = text.replace("${" + key + "}", fifo_dlq)
        elif value == {"Ref": "MaxReceiveCount"}:
            text = text.replace("${" + key + "}", str(max_receive_count(template)))
        else:
            name = str(template.properties(value["Fn::GetAtt"][0])["Handler"].split(".")[-2])
            if name not in existing:
                lam.create_function(FunctionName=name, Role=role, Code={"ZipFile": b"x"})
                existing.add(name)
            text = text.replace("${" + key + "}", f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
    assert not re.search(r"\$\{[^}]+\}", text)
    arn: str = sfn.create_state_machine(name="posting-fifo", definition=text, roleArn=role, type=properties["Type"])[
        "stateMachineArn"
    ]
    return arn


def test_on_a_fifo_queue_a_last_delivery_is_dead_lettered_in_its_group_and_the_rest_go_back(
    sfn: Any, fifo_workflow: str, steps: dict[str, Step], template: Template, *, aws: dict[str, Any], fifo_dlq: str
) -> None:
    last = max_receive_count(template)
    groups = ["acc-alice", "acc-alice", "acc-bob"]
    items = [
        {**item, "receive_count": count, "group_id": group}
        for item, count, group in zip(VALIDATED["items"], [last, last, 1], groups, strict=True)
    ]
    steps["validate"] = answer({"items": items})
    steps["post"] = fail()
    steps["emit"] = fail()

    result = sfn.start_sync_execution(stateMachineArn=fifo_workflow, input=json.dumps(RECORDS))

    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == failures("m3")
    sqs = boto3.client("sqs", **aws)
    letters = sqs.receive_message(
        QueueUrl=fifo_dlq, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    assert sorted(
        (
            letter["MessageAttributes"]["source_message_id"]["StringValue"],
            letter["Attributes"]["MessageGroupId"],
            letter["Attributes"]["MessageDeduplicationId"],
        )
        for letter in letters
    ) == [("m1", "acc-alice", "m1"), ("m2", "acc-alice", "m2")]
