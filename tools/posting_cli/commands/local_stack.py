"""The local stack that `posting local up|run|demo|invoke` start: the options those verbs share
(template parameters, the queue's type, faults to inject, DynamoDB's conflict rules), the stack they
describe, starting and stopping it, and what it reports when a verb is done."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from posting_cli.commands import terminal
from posting_cli.commands.terminal import CliError


def local_command(
    local_verbs: Any, name: str, handler: Any, help_text: str, pollers: int = 4
) -> argparse.ArgumentParser:
    """Add the verb `name` to `local_verbs`, with the options of every verb that starts a local stack."""
    command = local_verbs.add_parser(name, help=help_text, description=help_text)
    command.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a template parameter, like sam deploy --parameter-overrides",
    )
    command.add_argument("--pollers", type=int, default=pollers, help="concurrent pipe pollers")
    command.add_argument(
        "--fresh-books",
        action="store_true",
        help="start from empty books: delete the ledger table if $DYNAMODB_ENDPOINT already has one "
        "(by default an existing table is reused, as a retained table is on AWS)",
    )
    command.add_argument(
        "--stack-name", default="posting-local", help="local stack name (names the ledger table and the rest)"
    )
    command.add_argument(
        "--fifo",
        action="store_true",
        help="a FIFO posting queue (PostingQueueType=fifo): the requests of one message group are decided in "
        "the order they were sent (see --group-by)",
    )
    _add_fault_options(command)
    add_dynamodb_options(command)
    command.set_defaults(command=handler)
    return command


def _add_fault_options(command: argparse.ArgumentParser) -> None:
    faults = command.add_argument_group("fault injection (see docs/local.md, Injecting faults)")
    faults.add_argument(
        "--faults",
        metavar="SPEC",
        help="'all', or kinds with optional probabilities: post_crash_after_commit=0.1,dynamodb_throttle,...",
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the fault decisions")
    faults.add_argument("--fault-probability", type=float, default=0.05, help="probability of a kind given without one")
    faults.add_argument("--fault-log", metavar="FILE", help="append every fault that fires to this JSONL file")


def add_dynamodb_options(command: argparse.ArgumentParser) -> None:
    rules = command.add_argument_group(
        "DynamoDB conflict rules (AWS's, applied to DynamoDB Local by default; see strict_dynamodb.py)"
    )
    rules.add_argument(
        "--dynamodb-tau-ms",
        type=float,
        metavar="MS",
        help="how long past its answer a transaction keeps its items in flight (default 20, or "
        "$POSTING_DYNAMODB_TAU_MS)",
    )
    rules.add_argument(
        "--lenient-dynamodb",
        action="store_true",
        help="switch the conflict rules off, for debugging only (or POSTING_DYNAMODB_STRICT=0)",
    )


def apply_dynamodb_options(args: argparse.Namespace) -> None:
    """The flags become the environment: this process's engine and every process it starts read it."""
    import os

    tau_ms, lenient = getattr(args, "dynamodb_tau_ms", None), getattr(args, "lenient_dynamodb", False)
    if tau_ms is None and not lenient:
        return
    from posting_cli.local.strict_dynamodb import ENV_STRICT, ENV_TAU_MS, StrictRules, StrictRulesError

    if tau_ms is not None:
        try:
            StrictRules(tau_ms=tau_ms)
        except StrictRulesError as error:
            raise CliError(str(error)) from error
        os.environ[ENV_TAU_MS] = repr(tau_ms)
    if lenient:
        os.environ[ENV_STRICT] = "0"


def _parameters(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep:
            raise CliError(f"--parameter takes KEY=VALUE, got {value!r}")
        overrides[key] = setting
    return overrides


def build(args: argparse.Namespace, **options: Any) -> Any:
    """The local stack the options describe, not yet started (see `started`)."""
    from posting_cli.local.stack import LocalStack
    from posting_cli.local.template import Template, TemplateError

    overrides = _parameters(args.parameter)
    if getattr(args, "fifo", False):
        if overrides.get("PostingQueueType", "fifo") != "fifo":
            raise CliError("--fifo asks for PostingQueueType=fifo; drop the --parameter that says otherwise")
        overrides["PostingQueueType"] = "fifo"
    try:
        template = Template.load(stack_name=getattr(args, "stack_name", None) or "posting-local", overrides=overrides)
    except TemplateError as error:
        raise CliError(str(error)) from error
    return LocalStack(template, fresh_books=getattr(args, "fresh_books", False), faults=_faults(args), **options)


def _faults(args: argparse.Namespace) -> Any:
    """The fault injector that --faults asks for, or None (no faults: the default)."""
    from posting_cli.local.faults import FaultInjector, FaultPlan, FaultSpecError

    spec = getattr(args, "faults", None)
    if not spec:
        return None
    try:
        plan = FaultPlan.parse(spec, seed=args.fault_seed, probability=args.fault_probability)
    except (FaultSpecError, ValueError) as error:
        raise CliError(str(error)) from error
    if not plan.probabilities:
        return None
    log_path = Path(args.fault_log) if args.fault_log else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    return FaultInjector(plan, log_path=log_path)


class started:
    """Start a local stack with a spinner, and always stop it."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack

    def __enter__(self) -> Any:
        from posting_cli.local.dynamodb_local import DynamoDBLocalError
        from posting_cli.local.template import TemplateError

        with terminal.console.status("starting the local stack (DynamoDB Local, moto, the template's resources)..."):
            try:
                self.stack.start()
            except (DynamoDBLocalError, TemplateError) as error:
                raise CliError(str(error)) from error
        return self.stack

    def __exit__(self, *exc_info: object) -> None:
        self.stack.stop()


def progress(label: str) -> Any:
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    @contextmanager
    def progress_bar() -> Any:
        with Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=terminal.console,
            transient=False,
        ) as progress:
            yield progress, progress.add_task(label, total=None)

    return progress_bar()


def open_accounts(target: Any, accounts: Any) -> tuple[int, list[str]]:
    from posting_cli import operations

    try:
        return operations.open_accounts(target, accounts)
    except operations.AccountTermsDiffer as error:
        raise CliError(f"{error}. Fix the accounts file, or start from empty books with --fresh-books") from error


def dynamodb_stats(stack: Any) -> dict[str, Any] | None:
    from posting_cli.local.strict_dynamodb import strict_stats

    return strict_stats(stack.dynamodb.endpoint_url)


def print_faults(stack: Any) -> None:
    if stack.faults is not None:
        fired = ", ".join(f"{kind} {n}" for kind, n in sorted(stack.faults.counts.items())) or "none"
        terminal.console.print(f"faults fired (seed {stack.faults.plan.seed}): {fired}")


def print_dynamodb_conflicts(endpoint_url: str, before: dict[str, Any] | None) -> None:
    """What the conflict rules refused during this command, from the engine's own counters."""
    from posting_cli.local.strict_dynamodb import strict_stats

    after = strict_stats(endpoint_url)
    if after is None or before is None:
        terminal.console.print("DynamoDB conflict rules: off (transactions never conflict here, unlike on AWS)")
        return
    delta = {name: after[name] - before.get(name, 0) for name in after if isinstance(after[name], int)}
    terminal.console.print(
        f"DynamoDB conflict rules (τ {after['tau_ms']:g} ms): {delta['transactions']} transactions, "
        f"{delta['transactions_cancelled']} cancelled; {delta['single_writes_refused']} single writes refused"
    )
