"""`posting`: run the pipeline locally, and operate a local or deployed one.

posting local demo|run|up|invoke|install     the pipeline on embedded engines (no AWS, no Docker)
posting submit|balance|statement|reconcile   operator verbs, against `posting local up` or --stack NAME
posting smoke                                an end-to-end check of a local or deployed stack
posting accounts open | dlq list|redrive | schema
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from posting_cli import ledger_commands

# The terminal, captured before the local stack sends the Lambda functions' stdout to a log file.
console = Console(file=sys.stdout, highlight=False)
errors = Console(file=sys.stderr, highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    try:
        _apply_dynamodb_options(args)
        return int(args.command(args) or 0)
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    except CliError as error:
        errors.print(f"[red]error:[/red] {error}")
        return 1


class CliError(Exception):
    """A failure with a message meant for the user (no traceback)."""


# -- local ------------------------------------------------------------------------------------------


def _parameters(values: list[str]) -> dict[str, str]:
    overrides = {}
    for value in values:
        key, sep, setting = value.partition("=")
        if not sep:
            raise CliError(f"--parameter takes KEY=VALUE, got {value!r}")
        overrides[key] = setting
    return overrides


def _stack(args: argparse.Namespace, **options: Any) -> Any:
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


def _print_faults(stack: Any) -> None:
    if stack.faults is not None:
        fired = ", ".join(f"{kind} {n}" for kind, n in sorted(stack.faults.counts.items())) or "none"
        console.print(f"faults fired (seed {stack.faults.plan.seed}): {fired}")


def _dynamodb_stats(stack: Any) -> dict[str, Any] | None:
    from posting_cli.local.strict_dynamodb import strict_stats

    return strict_stats(stack.dynamodb.endpoint_url)


def _open_accounts(target: Any, accounts: Any) -> tuple[int, list[str]]:
    from posting_cli import operations

    try:
        return operations.open_accounts(target, accounts)
    except operations.AccountTermsDiffer as error:
        raise CliError(f"{error}. Fix the accounts file, or start from empty books with --fresh-books") from error


def cmd_local_install(args: argparse.Namespace) -> int:
    from posting_cli.local.dynamodb_local import DynamoDBLocalError, ensure_installed

    try:
        home = ensure_installed()
    except DynamoDBLocalError as error:
        raise CliError(str(error)) from error
    console.print(f"DynamoDB Local is installed in {home}")
    return 0


def cmd_local_up(args: argparse.Namespace) -> int:
    """Run the local stack until Ctrl-C; the operator verbs find it through .posting-local/stack.json."""
    from posting_cli.target import LOCAL_STATE_FILE

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with _started(_stack(args, pollers=args.pollers)) as stack:
        stack.target.to_file(LOCAL_STATE_FILE)
        console.print(
            "[green]local stack up[/green]: " + ", ".join(f"{k}={v}" for k, v in stack.target.endpoints.items())
        )
        console.print(f"queue: {stack.target.queue_url}")
        console.print(
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
    with _started(_stack(args, pollers=args.pollers)) as stack:
        target = stack.target
        conflicts_before = _dynamodb_stats(stack)
        _open_accounts(target, accounts)
        visibility = int(stack.template.parameters["VisibilityTimeoutSeconds"])
        event_log = Path(args.events).open("a", buffering=1) if args.events else None  # noqa: SIM115
        with _progress("posting") as (progress, task):
            try:
                outcomes = run(
                    target,
                    [Path(p) for p in args.requests],
                    stall_seconds=args.stall_timeout or max(60, 2 * visibility + 30),
                    deadline_seconds=args.timeout,
                    on_progress=lambda done, total: progress.update(task, completed=done, total=total),
                    event_log=event_log,
                    group_by=_group_by(args, target),
                )
            except RunIncomplete as error:
                raise CliError(str(error)) from error
            finally:
                if event_log is not None:
                    event_log.close()
        _print_faults(stack)
        _print_dynamodb_conflicts(stack.dynamodb.endpoint_url, conflicts_before)
        write_results(Path(args.results), outcomes)
        write_balances(target, [a.account_id for a in accounts], Path(args.balances))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    console.print(f"{len(outcomes)} lines: " + ", ".join(f"{status} {n}" for status, n in sorted(counts.items())))
    console.print(f"results in {args.results}, balances in {args.balances}")
    return 0


def cmd_local_demo(args: argparse.Namespace) -> int:
    from posting_cli.demo import DEMO_PARAMETERS, run_demo

    args.parameter = [f"{key}={value}" for key, value in DEMO_PARAMETERS.items()] + args.parameter
    with _started(_stack(args, pollers=args.pollers)) as stack:
        visibility = int(stack.template.parameters["VisibilityTimeoutSeconds"])
        conflicts_before = _dynamodb_stats(stack)
        report = run_demo(
            stack.target, postings=args.postings, seed=args.seed, console=console, stall_seconds=2 * visibility + 30
        )
        _print_dynamodb_conflicts(stack.dynamodb.endpoint_url, conflicts_before)
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
    return 0 if run_soak(settings, console).ok else 1


def cmd_local_invoke(args: argparse.Namespace) -> int:
    """Run one handler on one event file against the local engines, like `sam local invoke`."""
    from posting_cli import operations

    event = json.loads(Path(args.event).read_text())
    with _started(_stack(args, pollers=0)) as stack:
        if args.accounts:
            _open_accounts(stack.target, operations.parse_accounts(Path(args.accounts).read_text()))
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
    console.print_json(json.dumps(result))
    return 0


class _started:
    """Start a local stack with a spinner, and always stop it."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack

    def __enter__(self) -> Any:
        from posting_cli.local.dynamodb_local import DynamoDBLocalError
        from posting_cli.local.template import TemplateError

        with console.status("starting the local stack (DynamoDB Local, moto, the template's resources)..."):
            try:
                self.stack.start()
            except (DynamoDBLocalError, TemplateError) as error:
                raise CliError(str(error)) from error
        return self.stack

    def __exit__(self, *exc_info: object) -> None:
        self.stack.stop()


def _progress(label: str) -> Any:
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    @contextmanager
    def progress_bar() -> Any:
        with Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False
        ) as progress:
            yield progress, progress.add_task(label, total=None)

    return progress_bar()


# -- operator verbs ---------------------------------------------------------------------------------


def _target(args: argparse.Namespace) -> Any:
    from posting_cli.target import Target, TargetError

    try:
        return Target.from_stack(args.stack, args.region) if args.stack else Target.from_file()
    except TargetError as error:
        raise CliError(str(error)) from error


def _group_by(args: argparse.Namespace, target: Any) -> str:
    """The grouping --group-by asks for (posting_cli.groups); only a FIFO queue orders by group."""
    from posting_cli.groups import GroupingError, check_grouping

    if args.group_by is not None and not target.is_fifo:
        raise CliError(
            "--group-by orders requests on a FIFO posting queue only, and this one is standard: deploy with "
            "PostingQueueType=fifo (locally: --fifo)"
        )
    try:
        return check_grouping(args.group_by or "linked")
    except GroupingError as error:
        raise CliError(str(error)) from error


def cmd_submit(args: argparse.Namespace) -> int:
    from posting_cli import operations
    from posting_cli.groups import group_ids

    stream = sys.stdin if args.file == "-" else open(args.file)  # noqa: SIM115 - closed below
    with stream:
        bodies = [line.rstrip("\n") for line in stream if line.strip()]
    target = _target(args)
    grouping = _group_by(args, target)
    answers = operations.submit(target, bodies, group_ids(bodies, grouping) if target.is_fifo else None)
    refused = [a for a in answers if a.error]
    console.print(f"sent {len(answers) - len(refused)} message(s)" + (f", {len(refused)} refused" if refused else ""))
    for answer in refused:
        errors.print(f"refused: {answer.error}")
    return 1 if refused else 0


def cmd_accounts_open(args: argparse.Namespace) -> int:
    from posting_cli import operations

    try:
        opened, existing = operations.open_accounts(
            _target(args), operations.parse_accounts(Path(args.file).read_text())
        )
    except operations.AccountTermsDiffer as error:
        raise CliError(str(error)) from error
    console.print(f"opened {opened} account(s)" + (f"; already open: {', '.join(existing)}" if existing else ""))
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    from posting_cli import operations

    state = operations.balance(_target(args), args.account)
    if state is None:
        raise CliError(f"no such account: {args.account}")
    account = state.account
    figures: dict[str, Any] = {
        "account_id": account.account_id,
        "currency": account.currency,
        "balance": state.balance,
        "posted": state.balance,
        "pending_debits": state.pending_debits,
        "pending_credits": state.pending_credits,
        "available": state.available,
        "normal_balance": str(account.normal_balance),
        "overdraft_limit": account.overdraft_limit,
        "status": str(account.status),
        "entries": state.version,
        "balance_shards": account.balance_shards,
    }
    if args.as_of and args.effective:
        raise CliError("--as-of and --effective ask different questions: give one")
    if args.as_of or args.effective:
        from posting.domain.model import available_balance
        from posting_cli import ledger_operations

        moment = _instant(args.as_of or args.effective)
        if args.as_of:
            found = ledger_operations.figures_as_of(_target(args), args.account, moment)
        else:
            found = ledger_operations.figures_by_value_date(_target(args), args.account, moment)
        figures = {
            "account_id": account.account_id,
            "currency": account.currency,
            **({"as_of": moment} if args.as_of else {"effective": moment}),
            "posted": found.posted,
            "pending_debits": found.pending_debits,
            "pending_credits": found.pending_credits,
            "available": available_balance(
                account.normal_balance, found.posted, found.pending_debits, found.pending_credits
            ),
            "entries": found.entries,
        }
    console.print_json(json.dumps(figures))
    return 0


def _instant(text: str) -> str:
    """An instant the user typed (ISO 8601, a zone or UTC assumed) as the ledger's sortable UTC text."""
    from datetime import UTC, datetime

    from posting.domain.model import utc_timestamp

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise CliError(f"not an ISO 8601 instant: {text}") from error
    return utc_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def cmd_statement(args: argparse.Namespace) -> int:
    from posting_cli import operations

    paged = args.since or args.until or args.limit or args.cursor or args.by_value_date
    state, entries = operations.statement(_target(args), args.account)
    if state is None:
        raise CliError(f"no such account: {args.account}")
    cursor = None
    if paged:
        entries, cursor = operations.statement_page(
            _target(args),
            args.account,
            since=_instant(args.since) if args.since else None,
            until=_instant(args.until) if args.until else None,
            limit=args.limit or (10**9 if args.by_value_date and not args.cursor else 100),
            cursor=args.cursor,
            by_value_date=args.by_value_date,
        )
    table = Table(title=f"{args.account} ({state.account.currency}, {state.account.normal_balance}-normal)")
    columns = ["#", "effective_at" if args.by_value_date else "recorded_at", "kind", "posting_id", "side", "amount"]
    for column in [*columns, "balance after"]:
        table.add_column(column, justify="right" if column in {"#", "amount", "balance after"} else "left")
    for entry in entries[-args.last :] if args.last else entries:
        table.add_row(
            str(entry.sequence or "-"),
            entry.effective_at if args.by_value_date else entry.recorded_at,
            entry.kind,
            entry.posting_id,
            str(entry.side),
            str(entry.amount),
            str(entry.balance_after),
        )
    console.print(table)
    console.print(
        f"balance: {state.balance} {state.account.currency} after {state.version} entries "
        f"(pending debits {state.pending_debits}, pending credits {state.pending_credits}, "
        f"available {state.available})"
    )
    if cursor:
        console.print(f"more: --cursor {cursor}")
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from posting_cli import operations

    report = operations.reconcile(_target(args))
    print_reconciliation(report)
    return 0 if report.ok else 1


def print_reconciliation(report: Any) -> None:
    console.print(
        f"accounts {report.accounts}, entries {report.entries}, postings posted {report.postings_posted}, "
        f"rejected {report.postings_rejected}"
    )
    console.print("trial balance (debits - credits): " + ", ".join(f"{c} {n}" for c, n in report.trial_balance.items()))
    if report.ok:
        console.print("reconciliation: [bold green]OK[/bold green]")
    else:
        console.print("reconciliation: [bold red]FAILED[/bold red]")
        for problem in report.problems:
            console.print(f"  - {problem}")


def cmd_dlq_list(args: argparse.Namespace) -> int:
    from posting_cli import operations
    from posting_cli.results import posting_id_of

    letters = operations.dead_letters(_target(args))
    table = Table(title=f"dead letters: {len(letters)}")
    for column in ("message", "posting_id", "error", "reason", "producer"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            letter.source_message_id, posting_id_of(letter.body) or "-", letter.error, letter.message, letter.producer
        )
    console.print(table)
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    """Move dead letters back (all, or those selected), each only if its producer can be vouched for."""
    from posting_cli import operations
    from posting_cli.results import posting_id_of

    report = operations.redrive(
        _target(args),
        message_ids=args.message_id,
        reasons=args.reason,
        allow=args.allow_producer,
        dry_run=args.dry_run,
    )
    for unresolved in report.unresolved:
        errors.print(f"[yellow]cannot vouch for[/yellow] {unresolved}")
    rows = [
        (letter, f"would move (for {producer})" if args.dry_run else f"moved (for {producer})")
        for letter, producer in report.plan.moves
    ]
    rows += [(letter, f"stays: {why}") for letter, why in report.plan.refusals]
    if args.dry_run or report.plan.refusals:
        table = Table(title=f"dead letters selected: {len(rows)}")
        for column in ("message", "posting_id", "error", "producer", "redrive"):
            table.add_column(column)
        for letter, verdict in rows:
            table.add_row(
                letter.source_message_id, posting_id_of(letter.body) or "-", letter.error, letter.producer, verdict
            )
        console.print(table)
    refused = len(report.plan.refusals)
    stays = f"; {refused} refused, left in the DLQ" if refused else ""
    if args.dry_run:
        console.print(f"dry run: would move {report.moved} message(s) back to the posting queue{stays}")
    else:
        console.print(f"moved {report.moved} message(s) back to the posting queue{stays}")
    return 1 if refused else 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from posting_cli.smoke import run_smoke

    target = _target(args)
    report = run_smoke(target, timeout_seconds=args.timeout, say=console.print)
    for name, latency in report.latencies_ms.items():
        console.print(f"  {name}: enqueue -> result event in the log group {latency} ms")
    closed = ", ".join(report.accounts)
    if report.ok:
        console.print(f"smoke test [bold green]OK[/bold green] (accounts closed: {closed})")
        return 0
    errors.print(f"[bold red]smoke test FAILED[/bold red] (run {report.run_id}; accounts closed: {closed}):")
    for problem in report.problems:
        errors.print(f"  - {problem}")
    return 1


def cmd_schema(args: argparse.Namespace) -> int:
    from posting_cli.schema import schemas, write_registry_template

    documents = schemas()
    if not args.write and not args.template:
        console.print_json(json.dumps(documents))
        return 0
    if args.write:
        folder = Path(args.write)
        folder.mkdir(parents=True, exist_ok=True)
        for name, document in documents.items():
            (folder / name).write_text(json.dumps(document, indent=2) + "\n")
            console.print(f"wrote {folder / name}")
    if args.template:
        path, changed = write_registry_template(Path(args.template))
        console.print(f"{'updated' if changed else 'unchanged'}: {path} (the schema registry {args.template} nests)")
    return 0


# -- parser -----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one flat list of verbs reads best
    parser = argparse.ArgumentParser(
        prog="posting", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    verbs = parser.add_subparsers(title="commands")

    local = verbs.add_parser("local", help="the pipeline on embedded local engines (no AWS account, no Docker)")
    local_verbs = local.add_subparsers(title="local commands")

    def local_command(name: str, handler: Any, help_text: str, pollers: int = 4) -> argparse.ArgumentParser:
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
        _add_dynamodb_options(command)
        command.set_defaults(command=handler)
        return command

    install = local_verbs.add_parser("install", help="install DynamoDB Local into the cache")
    install.set_defaults(command=cmd_local_install)

    local_command("up", cmd_local_up, "run the local stack until Ctrl-C, for the operator verbs")

    run = local_command("run", cmd_local_run, "send request files through the pipeline, write results and balances")
    run.add_argument("--accounts", required=True, help="JSON array of accounts to open first")
    run.add_argument(
        "--requests", required=True, action="append", help="JSONL file; repeat to process several in order"
    )
    run.add_argument("--results", required=True, help="where to write one JSON result per input line")
    run.add_argument("--balances", required=True, help="where to write the final balances")
    run.add_argument("--timeout", type=float, default=1800, help="overall bound on the wait, in seconds")
    run.add_argument("--events", metavar="FILE", help="append every result event seen to this JSONL file")
    _add_group_by(run)
    run.add_argument(
        "--stall-timeout",
        type=float,
        default=None,
        help="give up after this long without a new outcome (default: 2 x visibility timeout + 30 s)",
    )

    demo = local_command("demo", cmd_local_demo, "seed a realistic book, post realistic traffic, print a summary")
    demo.add_argument("--postings", type=int, default=2000, help="number of posting requests to send")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the traffic")

    _add_soak(local_verbs)

    _add_invoke(
        local_command("invoke", cmd_local_invoke, "run one handler on one event file (like sam local invoke)", 0)
    )

    def operator(name: str, handler: Any, help_text: str, into: Any = verbs) -> argparse.ArgumentParser:
        command = into.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--stack", help="a deployed stack's name (default: the running `posting local up`)")
        command.add_argument("--region", help="AWS region of --stack")
        command.set_defaults(command=handler)
        return command

    submit = operator("submit", cmd_submit, "send posting requests (one JSON per line) to the posting queue")
    submit.add_argument("file", help="JSONL file, or - for stdin")
    _add_group_by(submit)
    accounts = verbs.add_parser("accounts", help="open accounts and act on them").add_subparsers(
        title="accounts commands"
    )
    operator("open", cmd_accounts_open, "open the accounts in a JSON array file", accounts).add_argument("file")
    ledger_commands.add_verbs(verbs, accounts, operator)
    balance = operator("balance", cmd_balance, "an account's posted, pending and available balance (one read)")
    balance.add_argument("account")
    balance.add_argument(
        "--as-of", dest="as_of", help="the figures as the ledger recorded them by then (its lines recorded by then)"
    )
    balance.add_argument(
        "--effective",
        help="the figures as of this value date: every line dated at or before it, back-valued ones included",
    )
    statement = operator("statement", cmd_statement, "an account's entries with the balance after each (one query)")
    statement.add_argument("account")
    statement.add_argument("--last", type=int, default=0, help="only the last N entries")
    statement.add_argument("--from", dest="since", help="entries recorded at or after this instant (ISO 8601)")
    statement.add_argument("--to", dest="until", help="entries recorded at or before this instant (ISO 8601)")
    statement.add_argument("--limit", type=int, default=0, help="a page of at most N entries (see --cursor)")
    statement.add_argument("--cursor", help="the next page, as printed after the previous one")
    statement.add_argument(
        "--by-value-date",
        action="store_true",
        help="order by value date (effective_at): --from/--to select value dates, balances are by value date",
    )
    operator("reconcile", cmd_reconcile, "check trial balance, entries and postings against every balance")
    dlq = verbs.add_parser("dlq", help="dead-lettered requests").add_subparsers(title="dlq commands")
    operator("list", cmd_dlq_list, "list dead letters with their failure reasons", dlq)
    _add_redrive(
        operator(
            "redrive",
            cmd_dlq_redrive,
            "move dead letters back to the posting queue: all of them, or those selected; only those whose "
            "producer is allowed (the stack's ProducerPrincipalArns, its sweeper, --allow-producer); "
            "the others stay in the DLQ, reported (exit 1)",
            dlq,
        )
    )

    smoke = operator(
        "smoke",
        cmd_smoke,
        "end-to-end check of a stack: two new accounts, a posting, its duplicate and a malformed request; "
        "waits for their result events in the results log group, checks outcomes and balances, closes the accounts",
    )
    smoke.add_argument("--timeout", type=float, default=120, help="seconds to wait for the result events")

    schema = verbs.add_parser("schema", help="print or write the JSON Schemas of the contract")
    schema.add_argument("--write", metavar="DIR", help="write one file per schema into DIR")
    schema.add_argument(
        "--template",
        metavar="FILE",
        help="write the event schema registry of this SAM template (the nested template its EventSchemas names)",
    )
    schema.set_defaults(command=cmd_schema)
    return parser


def _add_group_by(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--group-by",
        metavar="HOW",
        help="on a FIFO posting queue, the message group of each line, decided in order within a group: linked "
        "(the default: lines that share an account or name each other's posting_id), file (one group), "
        "account (the first account a line names), or field:PATH (a field of the request, e.g. "
        "field:metadata.customer)",
    )


def _add_redrive(redrive: argparse.ArgumentParser) -> None:
    redrive.add_argument(
        "--message-id",
        action="append",
        default=[],
        metavar="ID",
        help="only this dead letter (its id in the DLQ or in the posting queue, as `dlq list` shows); repeatable",
    )
    redrive.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="CODE",
        help="only dead letters with this failure_error (e.g. TransientPostingError; MaxReceiveCountExceeded "
        "for those the queue's redrive policy moved); repeatable; with --message-id, both must match",
    )
    redrive.add_argument(
        "--allow-producer",
        action="append",
        default=[],
        metavar="ID_OR_ARN",
        help="also vouch for this producer: an IAM role or user ARN in the stack's account, or a principal id "
        "as SQS records it (AROA...[:session], AIDA..., an account id); repeatable",
    )
    redrive.add_argument(
        "--dry-run", action="store_true", help="list what would move and what would stay; move nothing"
    )


def _add_invoke(invoke: argparse.ArgumentParser) -> None:
    invoke.add_argument("function", help="validate, post or emit (or the template's logical id)")
    invoke.add_argument("--event", required=True, help="event JSON file, e.g. events/post.json")
    invoke.add_argument(
        "--accounts",
        help="JSON array of accounts to open first (default: events/accounts.json)",
        default="events/accounts.json",
    )


def _add_soak(local_verbs: Any) -> None:
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
    _add_dynamodb_options(soak)
    soak.set_defaults(command=cmd_local_soak)


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


def _add_dynamodb_options(command: argparse.ArgumentParser) -> None:
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


def _apply_dynamodb_options(args: argparse.Namespace) -> None:
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


def _print_dynamodb_conflicts(endpoint_url: str, before: dict[str, Any] | None) -> None:
    """What the conflict rules refused during this command, from the engine's own counters."""
    from posting_cli.local.strict_dynamodb import strict_stats

    after = strict_stats(endpoint_url)
    if after is None or before is None:
        console.print("DynamoDB conflict rules: off (transactions never conflict here, unlike on AWS)")
        return
    delta = {name: after[name] - before.get(name, 0) for name in after if isinstance(after[name], int)}
    console.print(
        f"DynamoDB conflict rules (τ {after['tau_ms']:g} ms): {delta['transactions']} transactions, "
        f"{delta['transactions_cancelled']} cancelled; {delta['single_writes_refused']} single writes refused"
    )


if __name__ == "__main__":
    sys.exit(main())
