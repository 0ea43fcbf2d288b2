"""1. Domain: the pure functions per posting, timeit."""

from __future__ import annotations

import statistics
import timeit
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from posting.domain.ledger import plan_posting
from posting.domain.model import Account, AccountState, Side, parse_posting_request
from posting.steps.validate import validate_record
from posting_cli.bench.section import Section, fmt_table
from posting_cli.bench.workload import posting_id, sqs_record, ten_leg_body, two_leg_body

DOMAIN_REPEATS = 9
DOMAIN_SECONDS_PER_REPEAT = 0.05


def microseconds_per_call(function: Callable[[], object]) -> dict[str, float]:
    """timeit: calibrate a loop of about 50 ms, run it DOMAIN_REPEATS times; median and min per call."""
    timer = timeit.Timer(function)
    once = timer.timeit(number=10) / 10
    number = max(10, int(DOMAIN_SECONDS_PER_REPEAT / max(once, 1e-9)))
    per_call = [total / number * 1e6 for total in timer.repeat(repeat=DOMAIN_REPEATS, number=number)]
    return {"median_us": round(statistics.median(per_call), 2), "min_us": round(min(per_call), 2), "loops": number}


def bench_domain() -> Section:
    def open_book(ids: Sequence[str]) -> dict[str, AccountState]:
        return {
            account_id: AccountState(
                account=Account(
                    account_id=account_id, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None
                ),
                balance=10_000,
                version=3,
            )
            for account_id in ids
        }

    ids = [f"acc-{n:08d}" for n in range(10)]
    cases = {"2-leg": two_leg_body(posting_id(), ids[0], ids[1]), "10-leg": ten_leg_body(posting_id(), ids)}
    results: dict[str, dict[str, Any]] = {}
    for case, body in cases.items():
        request = parse_posting_request(body)
        accounts = open_book(ids)
        record = sqs_record(body)

        def all_three(body: str = body, accounts: dict[str, AccountState] = accounts) -> object:
            parsed = parse_posting_request(body)
            parsed.content_hash()
            return plan_posting(parsed, accounts)

        operations: dict[str, Callable[[], object]] = {
            "parse_posting_request": partial(parse_posting_request, body),
            "content_hash": request.content_hash,
            "plan_posting": partial(plan_posting, request, accounts),
            "parse + hash + plan": all_three,
            "validate_record (validate step)": partial(validate_record, record),
        }
        results[case] = {"body_bytes": len(body.encode())} | {
            name: microseconds_per_call(operation) for name, operation in operations.items()
        }

    names = [name for name in results["2-leg"] if name != "body_bytes"]
    rows = [
        [name] + [f"{results[case][name]['median_us']:,.1f} ({results[case][name]['min_us']:,.1f})" for case in cases]
        for name in names
    ]
    parse_2 = results["2-leg"]["parse_posting_request"]["median_us"]
    lines = [
        *fmt_table(["µs per call, median (min)", *[f"{case} request" for case in cases]], rows),
        f"request bodies: {results['2-leg']['body_bytes']} and {results['10-leg']['body_bytes']} bytes of JSON",
        "note: the pipeline parses each body twice (the validate step; the post step, which hands the parsed",
        f"      request on to post_item), so parsing costs about {2 * parse_2:,.0f} µs per 2-leg posting in all, still"
        " far below one DynamoDB call.",
    ]
    return Section(
        key="domain",
        title=f"1. Domain, pure Python (timeit, median of {DOMAIN_REPEATS} repeats of about 50 ms each)",
        method=(
            "timeit.Timer per operation; loop count calibrated to ~50 ms; "
            f"{DOMAIN_REPEATS} repeats; median and min of the per-call time. Accounts are in memory."
        ),
        data={"results": results},
        lines=lines,
    )
