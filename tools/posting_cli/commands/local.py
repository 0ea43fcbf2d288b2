"""posting local install|up|run|demo|soak|invoke: the pipeline on embedded local engines (no AWS
account, no Docker); the stack these verbs start, and the options they share, are in `local_stack`."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

from posting_cli.commands import local_stack, options, terminal
from posting_cli.commands.terminal import CliError


def register(verbs: Any) -> None:
    local = verbs.add_parser("local", help="the pipeline on embedded local engines (no AWS account, no Docker)")
    local_verbs = local.add_subparsers(title="local commands")

    install = local_verbs.add_parser("install", help="install DynamoDB Local into the cache")
    install.set_defaults(command=cmd_local_install)

    local_stack.local_command(
        local_verbs, "up", cmd_local_up, "run the local stack until Ctrl-C, for the operator verbs"
    )

    run = local_stack.local_command(
        local_verbs, "run", cmd_local_run, "send request files through the pipeline, write results and balances"
    )
    run.add_argument("--accounts", required=True, help="JSON array of accounts to open first")
    run.add_argument(
        "--requests", required=True, action="append", help="JSONL file; repeat to process several in order"
    )
    run.add_argument("--results", required=True, help="where to write one JSON result per input line")
    run.add_argument("--balances", required=True, help="where to write the final balances")
    run.add_argument("--timeout", type=float, default=1800, help="overall bound on the wait, in seconds")
    run.add_argument("--events", metavar="FILE", help="append every result event seen to this JSONL file")
    options.add_group_by(run)
    run.add_argument(
        "--stall-timeout",
        type=float,
        default=None,
        help="give up after this long without a new outcome (default: 2 x visibility timeout + 30 s)",
    )

    demo = local_stack.local_command(
        local_verbs, "demo", cmd_local_demo, "seed a realistic book, post realistic traffic, print a summary"
    )
    demo.add_argument("--postings", type=int, default=2000, help="number of posting requests to send")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the traffic")

    help_text = "demo-like traffic under injected faults, then check every money and delivery invariant"
    soak = local_verbs.add_parser("soak", help=help_text, description=help_text)
    soak.add_argument("--postings", type=int, default=3000, help="number of posting requests to send")
    soak.add_argument("--seed", type=int, default=1, help="seed of the traffic and of the fault decisions")
    soak.add_argument("--faults", default="all", metavar="SPEC", help="as for `posting local run --faults`")
    soak.add_argument("--fault-probability", type=float, default=0.05, help="probability of a kind given without one")
    soak.add_argument("--workdir", default=".posting-local/soak", help="request files, logs and results go here")
    soak.add_argument("--visibility-timeout", type=int, default=6, help="the queue's VisibilityTimeout, seconds")
    soak.add_argument("--max-receive-count", type=int, default=5, help="deliveries before a message is dead-lettered")
    soak.add_argument("--pollers", type=int, default=4, help="concurrent pipe pollers")
    local_stack.add_dynamodb_options(soak)
    soak.set_defaults(command=cmd_local_soak)

    invoke = local_stack.local_command(
        local_verbs, "invoke", cmd_local_invoke, "run one handler on one event file (like sam local invoke)", 0
    )
    invoke.add_argument("function", help="validate, post or emit (or the template's logical id)")
    invoke.add_argument("--event", required=True, help="event JSON file, e.g. events/post.json")
    invoke.add_argument(
        "--accounts",
        help="JSON array of accounts to open first (default: events/accounts.json)",
        default="events/accounts.json",
    )


def cmd_local_install(args: argparse.Namespace) -> int:
    from posting_cli.local.dynamodb_local import DynamoDBLocalError, ensure_installed

    try:
        home = ensure_installed()
    except DynamoDBLocalError as error:
        raise CliError(str(error)) from error
    terminal.console.print(f"DynamoDB Local is installed in {home}")
    return 0


def cmd_local_up(args: argparse.Namespace) -> int:
    """Run the local stack until Ctrl-C; the operator verbs find it through .posting-local/stack.json."""
    from posting_cli.target import LOCAL_STATE_FILE

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with local_stack.started(local_stack.build(args, pollers=args.pollers)) as stack:
        stack.target.to_file(LOCAL_STATE_FILE)
        terminal.console.print(
            "[green]local stack up[/green]: " + ", ".join(f"{k}={v}" for k, v in stack.target.endpoints.items())
        )
        terminal.console.print(f"queue: {stack.target.queue_url}")
        terminal.console.print(
            "try: posting accounts open events/accounts.json; posting submit events/requests.jsonl; "
            "posting statement acc-bob. Ctrl-C stops the stack."
        )
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            LOCAL_STATE_FILE.unlink(missing_ok=True)
    return 0


def cmd_local_run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from posting_cli import operations
    from posting_cli.local.run import RunIncomplete, run, write_balances, write_results

    try:
        accounts = operations.parse_accounts(Path(args.accounts).read_text())
    except (OSError, ValidationError) as error:
        raise CliError(f"cannot read accounts from {args.accounts}: {error}") from error
    for path in args.requests:
        if not Path(path).is_file():
            raise CliError(f"no such requests file: {path}")
    with local_stack.started(local_stack.build(args, pollers=args.pollers)) as stack:
        target = stack.target
        conflicts_before = local_stack.dynamodb_stats(stack)
        local_stack.open_accounts(target, accounts)
        visibility = int(stack.template.parameters["VisibilityTimeoutSeconds"])
        event_log = Path(args.events).open("a", buffering=1) if args.events else None  # noqa: SIM115
        with local_stack.progress("posting") as (progress, task):
            try:
                outcomes = run(
                    target,
                    [Path(p) for p in args.requests],
                    stall_seconds=args.stall_timeout or max(60, 2 * visibility + 30),
                    deadline_seconds=args.timeout,
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                    event_log=event_log,
                    group_by=options.group_by(args, target),
                )
            except RunIncomplete as error:
                raise CliError(str(error)) from error
            finally:
                if event_log is not None:
                    event_log.close()
        local_stack.print_faults(stack)
        local_stack.print_dynamodb_conflicts(stack.dynamodb.endpoint_url, conflicts_before)
        write_results(Path(args.results), outcomes)
        write_balances(target, [a.account_id for a in accounts], Path(args.balances))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    terminal.console.print(
        f"{len(outcomes)} lines: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    )
    terminal.console.print(f"results in {args.results}, balances in {args.balances}")
    return 0


def cmd_local_demo(args: argparse.Namespace) -> int:
    from posting_cli.demo import DEMO_PARAMETERS, run_demo

    args.parameter = [f"{key}={value}" for key, value in DEMO_PARAMETERS.items()] + args.parameter
    with local_stack.started(local_stack.build(args, pollers=args.pollers)) as stack:
        visibility = int(stack.template.parameters["VisibilityTimeoutSeconds"])
        conflicts_before = local_stack.dynamodb_stats(stack)
        report = run_demo(
            stack.target,
            postings=args.postings,
            seed=args.seed,
            console=terminal.console,
            stall_seconds=2 * visibility + 30,
        )
        local_stack.print_dynamodb_conflicts(stack.dynamodb.endpoint_url, conflicts_before)
    return 0 if report.ok else 1


def cmd_local_soak(args: argparse.Namespace) -> int:
    """Demo-like traffic under injected faults (and a killed process), then proof of every invariant."""
    from posting_cli.local.faults import FaultPlan, FaultSpecError
    from posting_cli.soak import SoakSettings, run_soak

    try:
        FaultPlan.parse(args.faults, seed=args.seed, probability=args.fault_probability)
    except (FaultSpecError, ValueError) as error:
        raise CliError(str(error)) from error
    settings = SoakSettings(
        postings=args.postings,
        seed=args.seed,
        faults=args.faults,
        probability=args.fault_probability,
        workdir=Path(args.workdir),
        visibility_timeout=args.visibility_timeout,
        max_receive_count=args.max_receive_count,
        pollers=args.pollers,
    )
    return 0 if run_soak(settings, terminal.console).ok else 1


def cmd_local_invoke(args: argparse.Namespace) -> int:
    """Run one handler on one event file against the local engines, like `sam local invoke`."""
    from posting_cli import operations

    event = json.loads(Path(args.event).read_text())
    with local_stack.started(local_stack.build(args, pollers=0)) as stack:
        if args.accounts:
            local_stack.open_accounts(stack.target, operations.parse_accounts(Path(args.accounts).read_text()))
        wanted = args.function.lower()
        matches = [
            f
            for f in stack.functions
            if wanted in {f.logical_id.lower(), f.logical_id.lower().removesuffix("function")}
        ]
        if not matches:
            names = ", ".join(f.logical_id.removesuffix("Function").lower() for f in stack.functions)
            raise CliError(f"no function {args.function!r} in template.yaml; choose one of {names}")
        result = stack.runtime.invoke(matches[0].function_name, event)
    terminal.console.print_json(json.dumps(result))
    return 0
