"""What moto (5.2.5) lacks for the local posting pipeline, and nothing else.

The local stack runs moto in server mode in this process (see
``moto_server.MotoServer``) with Step Functions executing real ASL
(config ``{"stepfunctions": {"execute_state_machine": True}}``). Three gaps
remain; each patch below fills one and says why:

1. ``StartSyncExecution`` is not implemented (server mode: HTTP 500
   NotImplementedError), but the EventBridge Pipe with ``REQUEST_RESPONSE``
   invokes EXPRESS workflows with it. -> :func:`install_start_sync_execution`
   (server mode only: under ``mock_aws`` the ``sync-states`` host is not even
   routed to Step Functions).
2. A Lambda Task reaches moto's Lambda backend, which runs the function in
   Docker (``LambdaFunction._invoke_lambda``).
   -> :func:`install_lambda_dispatch` runs a Python callable instead.
3. In server mode the ASL interpreter calls services over HTTP with a new
   boto3 client per Task, at ``http://localhost:$MOTO_PORT`` (default 5000),
   not at our server on a free port. -> :func:`route_interpreter_clients`.

4. moto builds a new JSONPath parser (PLY lexer and grammar tables) on every
   use: for each event, each rule target and each of the 8 default input
   paths of EventBridge, and for each path the ASL interpreter evaluates.
   Measured: 143 ms per PutEvents of 10 entries, most of the Emit step's
   time. -> :func:`install_jsonpath_cache` memoises the parse (the parsed
   expression is immutable; ``find`` only reads it).

5. moto's SQS is looser than SQS about message bodies: it counts
   ``MaximumMessageSize`` in characters rather than UTF-8 bytes, and accepts
   every character SQS refuses (U+FFFE, U+FFFF, C0 controls; a lone
   surrogate even gives HTTP 500). -> :func:`install_strict_sqs_bodies`
   refuses them as SQS does (see :mod:`posting_cli.local.sqs_limits`), for
   every sender on the local stack.

6. moto's server finds the backend for every request by listing its own
   package directory (``backends.list_of_moto_modules``: ``os.listdir`` and
   an ``os.path.isdir`` per entry, about 150 system calls) while holding the
   dispatcher's lock, so every request of every thread queues behind a
   filesystem scan, and each system call hands the GIL away. Measured: 3 %
   of all samples of a 300-posting run, in that one function.
   -> :func:`install_module_list_cache` lists it once (the package does not
   change while the process runs).

7. The ASL interpreter lexes and parses the state machine's definition with
   ANTLR (pure Python) on every execution, then builds its evaluation
   components from the tree. Measured on statemachine/posting.asl.json:
   about 75 ms of CPU per execution under the GIL, 60 ms of it lexing and
   parsing - the same text every time.
   -> :func:`install_asl_parse_cache` keeps the parse tree per definition
   text and still builds fresh evaluation components per execution (they
   are not shared between concurrent executions).

8. moto's SQS checks each message it hands out against the queue's
   retention period by building *all* of the queue's attributes
   (``get_queue_attributes`` -> ``Queue.attributes``), and three of those
   attributes count the queue's messages, each reading the clock through a
   naive-datetime round trip. So every ReceiveMessage of 10 costs 10 x 3
   scans of the whole queue: quadratic in the backlog. Measured: 37 % of the
   GIL's time in a 1,500-posting run at 400 in flight.
   -> :func:`install_sqs_retention_check` reads the one attribute it needs,
   and gives the SQS model the same clock as ``time.time()`` directly
   (moto's ``unix_time`` is that value, computed through ``datetime``).

9. With 7, every execution still runs moto's ``Preprocessor`` over the
   cached tree, and it asks nodes for their text again and again:
   ``RuleContext.getText`` joins the texts of the whole subtree each time,
   and ``visitProgram_decl`` / ``visitItem_processor_decl`` format the text
   of the whole program (or Map processor) into error messages they only
   raise when a declaration is missing; every string literal also goes
   through ``ast.literal_eval``. Measured on statemachine/posting.asl.json:
   11.6-15.5 ms of CPU per execution in the Preprocessor, 10 % of the GIL's
   time in a 1,500-posting run at 400 in flight; with this patch 5.4 ms.
   -> :func:`install_asl_text_cache` gives each node of a cached tree its
   text once (an instance attribute ``getText`` returning the text moto's
   own ``getText`` computed), and memoises moto's ``from_string_literal``
   by that text. The evaluation components are still built per execution.

10. Intrinsic functions (``States.Format(...)``, ``States.ArrayContains``...)
   are lexed and parsed with ANTLR by the Preprocessor on every execution,
   each one from its text (statemachine/posting.asl.json has four).
   Measured in a 720-posting run (thread CPU per call): 0.64 ms per
   intrinsic parse, 9.9 ms per whole Preprocessor run; with this patch
   0.15 ms and 8.0 ms.
   -> :func:`install_intrinsic_parse_cache` keeps the tree per text (not
   when it has syntax errors) and still runs moto's intrinsic Preprocessor
   per call, so each execution gets its own Function components.

11. The ASL interpreter deep-copies state data with ``copy.deepcopy`` at
   every step (``States`` input/result/context reads and writes, the
   context object's ``State``, the stack handed to a Task's thread,
   ResultPath, Task parameters, JSONPath strings): generic, memo-keeping
   copies of JSON values. -> :func:`install_json_state_copies` gives those
   six modules a ``copy`` whose ``deepcopy`` copies exact dicts and lists
   and returns str/int/float/bool/None as they are (as ``deepcopy`` does),
   and hands any other value to ``copy.deepcopy``. The copy is as
   independent as moto's; only identity sharing *inside* one value (the same
   dict twice) is not kept - JSON has none. Measured in a 720-posting run
   (thread CPU in those copies, 66 per execution): 5.0-9.0 ms per
   execution with ``copy.deepcopy``, 1.8-2.0 ms with this patch.

12. moto's SQS queue is not safe for concurrent callers, and the server
   serves each request on its own thread: ``Queue.delete_message`` copies
   the queue's message list without the deleted message and then puts the
   copy in its place, holding no lock. When two deletes overlap (the pipe's
   pollers delete their batches at the same time), the one that finishes
   last puts back its copy of the list from before the other one finished:
   a message the other one deleted is back (and is delivered again), and
   every message sent in between is gone, with its message id already
   given to the sender: no workflow runs it, no event or dead letter names
   it. Measured: 4 threads receiving and deleting while one sends batches
   of 9 lost one whole batch in 20 s. ``posting local run`` of 8,515 mixed
   lines (4 pollers): in 6 runs of 10, a batch of 10 deleted messages was
   delivered again; with the GIL switching every 0.5 ms, 107 messages were
   delivered again and 2 accepted ones never reached a workflow. With this
   patch: none, in 3 runs of each kind. ReceiveMessage races the same way
   (two receivers take one message; "Set changed size during iteration",
   an HTTP 500).
   -> :func:`install_sqs_queue_lock` runs every receive, delete and
   visibility change of a queue under that queue's own lock, the one moto
   already takes to append a sent message.

13. FIFO deduplication as SQS keeps it (5 minutes from the send, deleted
   or not), and 14. a FIFO group handed back in its order after a
   visibility timeout (see :mod:`posting_cli.local.moto_fifo`).
   -> :func:`install_fifo_deduplication`.

Optional: :func:`install_retry_sleep` lets tests skip real ``Retry`` waits
(``IntervalSeconds`` is at least 1 s in ASL).

Patches are class/module attribute swaps (no moto code copied) and are
undone by :func:`uninstall`. All of them are process-global.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import threading
import traceback
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import boto3
from moto import backends as moto_backends
from moto.awslambda.models import LambdaFunction
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.sqs.constants import MAXIMUM_MESSAGE_LENGTH
from moto.sqs.exceptions import (
    BatchEntryIdsNotDistinct,
    BatchRequestTooLong,
    InvalidBatchEntryId,
    SQSException,
    TooManyEntriesInBatchRequest,
)
from moto.sqs.models import Queue, SQSBackend
from moto.stepfunctions.exceptions import InvalidExecutionInput, ValidationException
from moto.stepfunctions.parser import utils as parser_utils
from moto.stepfunctions.parser.api import StateMachineType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.backend.execution import SyncExecution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from posting_cli.local import moto_fifo
from posting_cli.local.sqs_limits import body_problem, body_size

LambdaDispatch = Callable[[str, dict[str, Any]], Any]
"""``dispatch(function_name, event) -> JSON-serialisable result``; raise to fail."""

_MISSING = object()
_originals: list[tuple[Any, str, Any]] = []
_lock = threading.Lock()


def _patch(owner: Any, name: str, value: Any) -> None:
    """setattr, remembering the value from before the first patch."""
    with _lock:
        if not any(o is owner and n == name for o, n, _ in _originals):
            _originals.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, value)


def uninstall() -> None:
    """Undo every patch of this module (restores moto as shipped)."""
    with _lock:
        while _originals:
            owner, name, value = _originals.pop()
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


def install_all(
    endpoint_url: str,
    dispatch: LambdaDispatch | None = None,
    retry_sleep: Callable[[float], None] | None = None,
    attach: Callable[[Any], Any] | None = None,
) -> None:
    """Install every patch; ``dispatch=None`` leaves Lambda needing Docker,
    ``retry_sleep=None`` keeps real Retry waits, ``attach`` is given each
    interpreter client (see :func:`route_interpreter_clients`)."""
    install_start_sync_execution()
    route_interpreter_clients(endpoint_url, attach)
    install_jsonpath_cache()
    install_strict_sqs_bodies()
    install_module_list_cache()
    install_asl_parse_cache()
    install_sqs_retention_check()
    install_asl_text_cache()
    install_intrinsic_parse_cache()
    install_json_state_copies()
    install_sqs_queue_lock()
    install_fifo_deduplication()
    if dispatch is not None:
        install_lambda_dispatch(dispatch)
    if retry_sleep is not None:
        install_retry_sleep(retry_sleep)


# 1. StartSyncExecution ----------------------------------------------------


class StateMachineTypeNotSupported(AWSError):
    TYPE = "StateMachineTypeNotSupported"
    STATUS = 400


def _start_sync_execution(self: StepFunctionResponse) -> ActionResult:
    backend = self.stepfunction_backend
    if not isinstance(backend, StepFunctionsParserBackend):
        raise ValidationException(
            "StartSyncExecution needs moto's ASL interpreter: set config "
            '{"stepfunctions": {"execute_state_machine": true}} before creating '
            "state machines"
        )
    state_machine = backend.describe_state_machine(self._get_param("stateMachineArn"))
    if state_machine.type != "EXPRESS":
        raise StateMachineTypeNotSupported("This operation is not supported by this type of state machine")
    execution_input = self._get_param("input") or "{}"
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise InvalidExecutionInput(str(exc)) from exc
    name = self._get_param("name") or str(uuid.uuid4())
    execution = SyncExecution(
        name=name,
        sm_type=StateMachineType(state_machine.type),
        role_arn=state_machine.roleArn,
        exec_arn=(
            f"arn:{backend.partition}:states:{self.region}:{self.current_account}"
            f":express:{state_machine.name}:{name}:{uuid.uuid4()}"
        ),
        account_id=self.current_account,
        region_name=self.region,
        # moto's own start_execution passes its StateMachine here too.
        state_machine=state_machine,  # type: ignore[arg-type]
        start_date=datetime.datetime.now(tz=datetime.UTC),
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=execution_input,
        trace_header=self._get_param("traceHeader"),
    )
    # SyncExecutionWorker evaluates on this (request) thread; the program's
    # own worker thread is joined with TimeoutSeconds, so nothing polls.
    execution.start()
    _prune_finished_threads()
    return ActionResult(execution.to_start_sync_execution_output())


def _prune_finished_threads() -> None:
    # moto appends every interpreter thread to TMP_THREADS and never reads or
    # clears it; drop finished ones so long local runs do not grow forever.
    threads = parser_utils.TMP_THREADS
    threads[:] = [t for t in list(threads) if t.is_alive()]


def install_start_sync_execution() -> None:
    """Serve ``StartSyncExecution`` (EXPRESS only), as the Pipe needs.

    Runs the execution on the HTTP request thread with moto's own
    ``SyncExecution`` and answers with the real response shape
    (executionArn, stateMachineArn, name, startDate, stopDate,
    status SUCCEEDED|FAILED|TIMED_OUT, input, output | error + cause).
    Concurrent callers each get their own server thread; executions are not
    stored (like AWS, express executions are not listed or described).

    Callers must build their client with
    ``botocore.config.Config(inject_host_prefix=False)``: the operation has
    host prefix ``sync-``, which would otherwise turn ``127.0.0.1`` into
    ``sync-127.0.0.1``. Give it a ``read_timeout`` above the workflow's
    ``TimeoutSeconds``.
    """
    _patch(StepFunctionResponse, "start_sync_execution", _start_sync_execution)


# 2. In-process Lambda ---------------------------------------------------


def _error_payload(message: str, error_type: str, stack: list[str]) -> str:
    """The body real Lambda's Python runtime returns for a function error."""
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": stack})


def install_lambda_dispatch(dispatch: LambdaDispatch) -> None:
    """Run Lambda functions in-process through ``dispatch`` instead of Docker.

    moto's Lambda backend only needs Docker in
    ``LambdaFunction._invoke_lambda``; this replaces it. Every invocation
    (Task ``arn:aws:states:::lambda:invoke`` with ``Payload``, Task with a
    plain function ARN, ``lambda.invoke``) calls
    ``dispatch(function_name, event)`` and returns its result as JSON.

    If ``dispatch`` raises, the invocation is a function error like real
    Lambda's: payload ``{"errorType": <exception class name>, "errorMessage",
    "stackTrace"}`` plus the ``X-Amz-Function-Error`` header (moto always
    says ``Handled``; AWS says ``Unhandled``). The ASL interpreter takes
    ``errorType`` as the error name, so ``Retry``/``Catch`` with
    ``ErrorEquals: ["TransientPostingError"]`` (or ``States.TaskFailed``,
    ``States.ALL``) match. A result that is not JSON-serialisable fails with
    ``Runtime.MarshalError``, as on AWS.
    """

    def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if event is None or isinstance(event, str):  # moto passes "{}" for an empty Payload
            event = json.loads(event or "{}")
        try:
            result = dispatch(self.function_name, event)
        except Exception as exc:  # noqa: BLE001 - surfaced as a function error
            tb = exc.__traceback__
            stack = traceback.format_tb(tb.tb_next if tb else None)  # skip this frame
            # A runtime-level failure (a crash, a timeout) names itself as Lambda does, with a dot.
            error_type = str(getattr(exc, "error_type", type(exc).__name__))
            return _error_payload(str(exc), error_type, stack), True, ""
        try:
            return json.dumps(result), False, ""
        except (TypeError, ValueError) as exc:
            message = f"Unable to marshal response: {exc}"
            return _error_payload(message, "Runtime.MarshalError", []), True, ""

    _patch(LambdaFunction, "_invoke_lambda", _invoke_lambda)


# 3. Where the interpreter's clients go ----------------------------------


class _InterpreterBoto3:
    """Stands in for ``boto3`` inside moto's ``asl.utils.boto_client`` module.

    ``boto_client_for`` (used by every Task: Lambda, SQS, EventBridge,
    DynamoDB, aws-sdk...) calls ``boto3.client(..., endpoint_url=
    "http://localhost:<MOTO_PORT or 5000>")``. This shim points it at our
    server instead, with the fake credentials moto passes (default account),
    and reuses one client per (service, region) - boto3 clients are
    thread-safe, and building one costs about 10 ms per Task. ``attach``, if
    given, is applied to each new client (the local stack serves the
    interpreter's calls in-process: :mod:`posting_cli.local.in_process`).
    """

    def __init__(self, endpoint_url: str, attach: Callable[[Any], Any] | None = None) -> None:
        self.endpoint_url = endpoint_url
        self._attach = attach
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service_name: str, region_name: str, **kwargs: Any) -> Any:
        key = (service_name, region_name)
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                kwargs["endpoint_url"] = self.endpoint_url
                found = boto3.client(service_name=service_name, region_name=region_name, **kwargs)
                if self._attach is not None:
                    found = self._attach(found)
                self._clients[key] = found
            return found


def route_interpreter_clients(endpoint_url: str, attach: Callable[[Any], Any] | None = None) -> None:
    """Send the ASL interpreter's AWS calls to ``endpoint_url`` (see shim)."""
    _patch(boto_client, "boto3", _InterpreterBoto3(endpoint_url, attach))


# 4. Optional: Retry waits -------------------------------------------------


def install_retry_sleep(sleep: Callable[[float], None]) -> None:
    """Make ASL ``Retry`` waits call ``sleep(seconds)`` instead of ``time.sleep``.

    ``seconds`` is the interval the interpreter computed (IntervalSeconds x
    BackoffRate^n, capped by MaxDelaySeconds, jittered). For tests, e.g.
    ``lambda s: time.sleep(s / 50)``, or record the values to check backoff.
    The interpreter's ``retrier_decl`` module uses ``time`` only for this.
    """
    _patch(retrier_decl, "time", SimpleNamespace(sleep=sleep))


# 4. JSONPath parse cache ---------------------------------------------------


def install_jsonpath_cache() -> None:
    """Memoise JSONPath parsing where moto parses the same few paths over and over.

    EventBridge imports ``jsonpath_ng.ext.parse`` inside the function that applies
    input paths (so the module attribute is patched); the ASL interpreter binds
    ``parse`` at import time in two modules (so those names are patched too).
    """
    import functools

    import jsonpath_ng
    import jsonpath_ng.ext
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    cached_ext = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)
    cached_plain = functools.lru_cache(maxsize=1024)(jsonpath_ng.parse)
    _patch(jsonpath_ng.ext, "parse", cached_ext)
    _patch(json_path, "parse", cached_ext)
    _patch(result_path, "parse", cached_plain)


# 5. SQS message bodies as SQS refuses them ----------------------------------


def install_strict_sqs_bodies() -> None:
    """Refuse the bodies SQS refuses: over ``MaximumMessageSize`` in UTF-8 bytes, or with a character
    outside XML 1.0's set.

    ``SendMessage`` answers with SQS's error (``InvalidParameterValue`` or
    ``InvalidMessageContents``). ``SendMessageBatch`` fails only the refused
    entries (``Failed`` with ``SenderFault``) and sends the others.
    """
    original_send = SQSBackend.send_message
    original_batch = SQSBackend.send_message_batch

    def send_message(self: SQSBackend, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        refused = body_problem(message_body, int(queue.maximum_message_size))  # type: ignore[attr-defined]
        if refused is not None:
            raise SQSException(refused.code, refused.message)
        return original_send(self, queue_name, message_body, *args, **kwargs)

    def send_message_batch(
        self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        queue = self.get_queue(queue_name)
        # The request-wide checks moto makes, on every entry (before refused ones are set aside),
        # with the total counted in bytes as SQS counts it.
        if len(entries) > 10:
            raise TooManyEntriesInBatchRequest(len(entries))
        if any(not re.match(r"^[\w-]{1,80}$", entry["Id"]) for entry in entries.values()):
            raise InvalidBatchEntryId()
        ids = [entry["Id"] for entry in entries.values()]
        if len(set(ids)) != len(ids):
            raise BatchEntryIdsNotDistinct(next(i for i in ids if ids.count(i) > 1))
        total = sum(body_size(entry["MessageBody"]) for entry in entries.values())
        if total > MAXIMUM_MESSAGE_LENGTH:
            raise BatchRequestTooLong(total)
        failed: list[dict[str, Any]] = []
        accepted: dict[str, dict[str, Any]] = {}
        for key, entry in entries.items():
            refused = body_problem(entry["MessageBody"], int(queue.maximum_message_size))  # type: ignore[attr-defined]
            if refused is None:
                accepted[key] = entry
            else:
                failed.append(
                    {"Id": entry["Id"], "SenderFault": True, "Code": refused.code, "Message": refused.message}
                )
        if not accepted:
            return [], failed
        messages, more_failed = original_batch(self, queue_name, accepted)
        return messages, failed + more_failed

    _patch(SQSBackend, "send_message", send_message)
    _patch(SQSBackend, "send_message_batch", send_message_batch)


# 6. moto's module list, once -------------------------------------------------


def install_module_list_cache() -> None:
    """List moto's service modules once instead of on every request (see 6. above).

    The dispatcher only asks whether a host name is one of them; the answer is a tuple, in the
    order moto lists them.
    """
    original: Callable[[], Any] = vars(moto_backends)["list_of_moto_modules"]
    for owner, name, value in _originals:  # a reinstall after uninstall: cache the original again
        if owner is moto_backends and name == "list_of_moto_modules" and value is not _MISSING:
            original = value
    modules = tuple(original())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    _patch(moto_backends, "list_of_moto_modules", list_of_moto_modules)


# 7. ASL parse trees, once per definition ------------------------------------


def install_asl_parse_cache() -> None:
    """Parse each state machine definition once (see 7. above).

    Replaces ``AmazonStateLanguageParser.parse`` (used per execution, on create and by the static
    analyser) with one that keeps the ANTLR tree per definition text (a definition that does not
    parse raises every time, as before) and runs moto's ``Preprocessor`` on it for every call, so
    each execution gets its own evaluation components. The tree is only read after parsing.
    """
    import functools

    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLLexer import ASLLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        AmazonStateLanguageParser,
        ASLParserException,
        SyntaxErrorListener,
    )
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    @functools.lru_cache(maxsize=64)
    def tree_of(definition: str) -> Any:
        # moto's own parse, up to the tree (exceptions are not cached).
        listener = SyntaxErrorListener()
        parser = ASLParser(CommonTokenStream(ASLLexer(InputStream(definition))))
        parser.removeErrorListeners()
        parser.addErrorListener(listener)
        tree = parser.state_machine()
        if listener.errors:
            raise ASLParserException(errors=listener.errors)
        return tree

    def parse(definition: str) -> tuple[Any, Any]:
        tree = tree_of(definition)
        return Preprocessor().visit(tree), tree

    _patch(AmazonStateLanguageParser, "parse", staticmethod(parse))


# 8. SQS retention check and clock -------------------------------------------


def install_sqs_retention_check() -> None:
    """Check a received message's retention without building every queue attribute (see 8. above).

    Same rule as moto's: a message is kept while ``sent_timestamp + MessageRetentionPeriod`` is in
    the future. The SQS model's clock functions are swapped for ``time.time()`` based ones, which
    return what moto's compute (seconds, or milliseconds, since the epoch, as floats).
    """
    import time

    from moto.sqs import models as sqs_models

    def is_message_valid_based_on_retention_period(self: SQSBackend, queue_name: str, message: Any) -> bool:
        # Set from the queue's attributes by name (moto: setattr of camelcase_to_underscores(name)).
        queue: Any = self.get_queue(queue_name)
        retention_seconds = int(queue.message_retention_period)
        return bool(retention_seconds + message.sent_timestamp / 1000 > time.time())

    def unix_time(dt: datetime.datetime | None = None) -> float:
        return time.time() if dt is None else _original_unix_time(dt)

    def unix_time_millis(dt: datetime.datetime | None = None) -> float:
        return time.time() * 1000.0 if dt is None else _original_unix_time(dt) * 1000.0

    _original_unix_time = vars(sqs_models)["unix_time"]
    for owner, name, value in _originals:  # a reinstall after uninstall: wrap the original again
        if owner is sqs_models and name == "unix_time" and value is not _MISSING:
            _original_unix_time = value
    _patch(SQSBackend, "is_message_valid_based_on_retention_period", is_message_valid_based_on_retention_period)
    _patch(sqs_models, "unix_time", unix_time)
    _patch(sqs_models, "unix_time_millis", unix_time_millis)


# 9. Texts of cached parse trees, once ---------------------------------------

_TEXTS_REMEMBERED = "_posting_local_texts_remembered"


def _remember_texts(tree: Any) -> None:
    """Give every node of ``tree`` its text as a constant, computed by its own ``getText``.

    Children first, so that each node's ``getText`` (which joins its children's texts) runs once
    over constants. Idempotent, and safe while another thread reads the tree: either ``getText``
    returns the same text.
    """
    if getattr(tree, _TEXTS_REMEMBERED, False):
        return
    # Post-order without recursion (deeply nested JSON would otherwise reach the recursion limit).
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, children_done = stack.pop()
        children = getattr(node, "children", None) or []
        if not children_done and children:
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        text = node.getText()
        node.getText = lambda text=text: text
    setattr(tree, _TEXTS_REMEMBERED, True)


def install_asl_text_cache() -> None:
    """Compute the texts of a cached parse tree once (see 9. above); needs 7 (trees parsed once).

    Wraps ``AmazonStateLanguageParser.parse`` as installed (7.'s): the tree it returns gets its texts
    remembered after the first parse (create_state_machine), so executions read constants. moto's
    ``from_string_literal`` (``getText``, quotes stripped, escapes decoded) depends only on the
    node's text: it is memoised by that text, in the one module that uses it.
    """
    import functools

    from moto.stepfunctions.parser.asl.parse import preprocessor
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    installed_parse: Callable[[str], tuple[Any, Any]] = AmazonStateLanguageParser.parse
    original_literal: Callable[[Any], str | None] = vars(preprocessor)["from_string_literal"]
    for owner, name, value in _originals:  # a reinstall after uninstall: wrap the originals again
        if owner is preprocessor and name == "from_string_literal" and value is not _MISSING:
            original_literal = value

    def parse(definition: str) -> tuple[Any, Any]:
        program, tree = installed_parse(definition)
        _remember_texts(tree)
        return program, tree

    @functools.lru_cache(maxsize=4096)
    def literal_of(text: str) -> str | None:
        return original_literal(SimpleNamespace(getText=lambda: text))

    def from_string_literal(parser_rule_context: Any) -> str | None:
        return literal_of(parser_rule_context.getText())

    _patch(AmazonStateLanguageParser, "parse", staticmethod(parse))
    _patch(preprocessor, "from_string_literal", from_string_literal)


# 10. Intrinsic function parse trees, once per text ---------------------------


def install_intrinsic_parse_cache() -> None:
    """Parse each intrinsic function's text once (see 10. above).

    Replaces ``IntrinsicParser.parse`` (used by the Preprocessor per execution and by the static
    analyser on create) with one that keeps the ANTLR tree per text, its texts remembered as in 9.,
    and runs moto's intrinsic ``Preprocessor`` on it for every call. A text that does not parse
    cleanly is parsed again every time (moto reports its syntax errors each time, as before).
    """
    from antlr4 import CommonTokenStream, InputStream
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicLexer import ASLIntrinsicLexer
    from moto.stepfunctions.parser.asl.antlr.runtime.ASLIntrinsicParser import ASLIntrinsicParser
    from moto.stepfunctions.parser.asl.parse.intrinsic.intrinsic_parser import IntrinsicParser
    from moto.stepfunctions.parser.asl.parse.intrinsic.preprocessor import Preprocessor

    trees: dict[str, Any] = {}

    def parse(src: str) -> tuple[Any, Any]:
        tree = trees.get(src)
        if tree is None:
            # moto's own parse, up to the tree.
            parser = ASLIntrinsicParser(CommonTokenStream(ASLIntrinsicLexer(InputStream(src))))
            tree = parser.func_decl()
            if parser.getNumberOfSyntaxErrors() == 0 and len(trees) < 4096:
                _remember_texts(tree)
                trees[src] = tree
        return Preprocessor().visit(tree), tree

    _patch(IntrinsicParser, "parse", staticmethod(parse))


# 11. JSON copies of state data -------------------------------------------------

_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON value (exact dicts and lists copied, scalars kept); anything else, and
    anything inside it, is copied by ``copy.deepcopy``."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return value
    if kind is dict:
        return {key: json_copy(item) for key, item in value.items()}
    if kind is list:
        return [json_copy(item) for item in value]
    return copy.deepcopy(value)


def install_json_state_copies() -> None:
    """Copy the interpreter's state data as JSON (see 11. above)."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.common.string import string_expression
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
    from moto.stepfunctions.parser.asl.eval import environment, states

    # Modules that use ``copy`` for nothing but ``copy.deepcopy``.
    for module in (states, environment, execute_state, result_path, string_expression, state_task_service):
        _patch(module, "copy", SimpleNamespace(deepcopy=json_copy))


# 12. SQS queues under their own lock -------------------------------------------


def install_sqs_queue_lock() -> None:
    """Serialise what changes a queue's messages (see 12. above).

    moto appends a sent message under the queue's ``_messages_lock`` (a ``Condition`` over an RLock,
    which long polling waits on). Deletes, receives and visibility changes take it too here, so each
    of them sees and leaves the message list whole. A long poll still releases it while it waits
    (``Condition.wait`` releases an RLock at every depth). A receive that moves a message to its
    dead-letter queue takes that queue's lock inside its own; nothing takes them the other way round.
    """
    original_delete = Queue.delete_message
    original_receive = SQSBackend.receive_message
    original_change = SQSBackend.change_message_visibility

    def delete_message(self: Queue, receipt_handle: str) -> None:
        with self._messages_lock:
            original_delete(self, receipt_handle)

    def receive_message(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        with self.get_queue(queue_name)._messages_lock:
            return original_receive(self, queue_name, *args, **kwargs)

    def change_message_visibility(self: SQSBackend, queue_name: str, *args: Any, **kwargs: Any) -> None:
        with self.get_queue(queue_name)._messages_lock:
            original_change(self, queue_name, *args, **kwargs)

    _patch(Queue, "delete_message", delete_message)
    _patch(SQSBackend, "receive_message", receive_message)
    _patch(SQSBackend, "change_message_visibility", change_message_visibility)


# 13. and 14. FIFO queues ------------------------------------------------------------


def install_fifo_deduplication() -> None:
    """Remember a FIFO queue's deduplication ids for 5 minutes from the send, and hand a group back in
    its order after a visibility timeout (see 13. above)."""
    _patch(SQSBackend, "send_message", moto_fifo.deduplicating(SQSBackend.send_message))
    _patch(Queue, "add_message", moto_fifo.appending(Queue.add_message))
    _patch(SQSBackend, "receive_message", moto_fifo.releasing_visible(SQSBackend.receive_message))
