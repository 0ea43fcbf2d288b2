"""Run the template's Lambda functions in this process, as the Lambda runtime would run them.

Each function is described by the template (Handler, Timeout, MemorySize, Environment with Globals).
The handler module is imported by its dotted path exactly as Lambda does, called with the event and a
Lambda-like context, and its return value goes back to the caller (moto's Step Functions Task).

All functions share one process, hence one `os.environ`: the union of their environments is installed
once, and a variable two functions set differently is refused, because it could not be honoured.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from posting_cli.local.template import ACCOUNT_ID, REGION


class LambdaTimeout(Exception):
    """The handler ran longer than the function's Timeout: its result is discarded, as Lambda would."""


@dataclass(frozen=True)
class LocalFunction:
    logical_id: str
    function_name: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: Mapping[str, str]

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"


class LambdaContext:
    """The attributes and method of the Lambda context object that handlers and Powertools use."""

    def __init__(self, function: LocalFunction) -> None:
        self.function_name = function.function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + function.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalLambdaRuntime:
    """Dispatches invocations by function name (or ARN) to the real handlers."""

    def __init__(self, functions: list[LocalFunction]) -> None:
        self.functions = {function.function_name: function for function in functions}
        self._handlers: dict[str, Callable[[Any, LambdaContext], Any]] = {}
        # function name -> [invocations, seconds spent in the handler], for benchmarks
        self.durations: dict[str, list[float]] = {name: [0, 0.0] for name in self.functions}

    def merged_environment(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        owners: dict[str, str] = {}
        for function in self.functions.values():
            for name, value in function.environment.items():
                if name in merged and merged[name] != value:
                    raise ValueError(
                        f"{function.logical_id} and {owners[name]} set {name} differently; in-process functions "
                        "share one environment, so give the variable one value or distinct names"
                    )
                merged[name], owners[name] = value, function.logical_id
        return merged

    def install_environment(self, extra: Mapping[str, str]) -> None:
        """Set the functions' environment (and the local endpoints in `extra`) in os.environ, until
        restore_environment()."""
        _ENVIRONMENT.push(self, {**self.merged_environment(), **extra})

    def restore_environment(self) -> None:
        """Take back what install_environment set: once the stack stops, clients built after it are
        not sent to its endpoints, and a stack still running keeps its own values."""
        _ENVIRONMENT.pop(self)

    def load_handlers(self) -> None:
        """Import every handler now (a cold start), so that configuration errors show up at start-up.

        Each runtime is a new deployment, so its functions start in fresh execution environments even
        when an earlier runtime of this process imported the same modules: what the handlers cached
        per environment (clients bound to the earlier endpoints, configuration read from its
        environment) is dropped, and their log handler writes to this process's stdout of now.
        """
        fresh_execution_environments()
        for function in self.functions.values():
            self._handler(function)

    def invoke(self, function_name_or_arn: str, event: Any) -> Any:
        function = self.functions[function_name_or_arn.rsplit(":", 1)[-1]]
        context = LambdaContext(function)
        started = time.monotonic()
        result = self._handler(function)(event, context)
        elapsed = time.monotonic() - started
        totals = self.durations[function.function_name]
        totals[0] += 1
        totals[1] += elapsed
        if elapsed > function.timeout_seconds:
            raise LambdaTimeout(f"{function.function_name} timed out after {function.timeout_seconds} seconds")
        return result

    def _handler(self, function: LocalFunction) -> Callable[[Any, LambdaContext], Any]:
        if function.function_name not in self._handlers:
            module_name, _, attribute = function.handler.replace("/", ".").rpartition(".")
            self._handlers[function.function_name] = getattr(importlib.import_module(module_name), attribute)
        return self._handlers[function.function_name]


HANDLER_PACKAGE = "posting.handlers"


class _EnvironmentLayers:
    """The process environment as layers, one per running stack, each keeping what it replaced:
    stacks in one process (a test's own beside the session's) may stop in any order, and each stop
    leaves os.environ as the stacks still running set it, or as it was before them."""

    def __init__(self) -> None:
        # owner, the values it set, and what each of those names held before it set them
        self._layers: list[tuple[object, dict[str, str], dict[str, str | None]]] = []
        self._lock = threading.Lock()

    def push(self, owner: object, values: Mapping[str, str]) -> None:
        with self._lock:
            self._layers.append((owner, dict(values), {name: os.environ.get(name) for name in values}))
            os.environ.update(values)

    def pop(self, owner: object) -> None:
        with self._lock:
            index = next((i for i, layer in enumerate(self._layers) if layer[0] is owner), None)
            if index is None:
                return
            replaced = self._layers[index][2]
            above = self._layers[index + 1 :]
            for name, before in replaced.items():
                setter = next((layer for layer in above if name in layer[1]), None)
                if setter is not None:  # a later stack set it too: it restores what was there before this one
                    setter[2][name] = before
                elif before is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = before
            del self._layers[index]


_ENVIRONMENT = _EnvironmentLayers()


def fresh_execution_environments() -> None:
    """Forget what the imported handler modules cached (their functools caches), and set the
    Powertools loggers up as a cold start would: the level from the environment, the stream the
    current sys.stdout."""
    for name, module in list(sys.modules.items()):
        if name != HANDLER_PACKAGE and not name.startswith(HANDLER_PACKAGE + "."):
            continue
        for value in vars(module).values():
            if getattr(value, "__module__", None) == name and callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
            if isinstance(value, Logger):
                value.setLevel(None)  # from this environment's POWERTOOLS_LOG_LEVEL, as at a cold start
                if isinstance(value.registered_handler, logging.StreamHandler):
                    _point_at_stdout(value.registered_handler)


def _point_at_stdout(handler: logging.StreamHandler[Any]) -> None:
    # Not setStream: it flushes the old stream first, and an earlier stack's log file is closed.
    handler.acquire()
    try:
        handler.stream = sys.stdout
    finally:
        handler.release()
