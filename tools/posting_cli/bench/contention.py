"""4. Contention under DynamoDB's conflict rule: hot and busy accounts, measured on the strict engine
through the whole local pipeline, and what they carry on AWS.

Three shapes, each in one run, each reporting postings/s, conflicts per posting and p50/p99
enqueue -> result event:

1. hot settlement: every posting is customer -> one settlement account with no limit and no special
   terms, against spread traffic (customer -> merchant pairs) of the same size, in the same stack;
2. funding bursts: postings from one funding account opened as a new user would, after the spread
   run's rate, and whether any record had to wait out a visibility timeout;
3. a busy limited account: 8 writers posting to one merchant with a limit at once (post_item
   threads, no pipeline), its rate and conflicts.

Every figure is measured with the local DynamoDB's conflict rules on (a transaction holds its items
for its real duration plus tau); figures measured without them would say nothing about AWS. The
capacity model then states, on paper, what one settlement account and one limited account carry
on AWS.
"""

from __future__ import annotations

import math
import random
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from posting.adapters.ledger_keys import (
    ENTRY_PREFIX,
    KEY_NAMES,
    account_key,
    account_partition,
    lane_partition,
    posting_key,
)
from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import DEFAULT_LANES, Account, Side
from posting.handlers.config import AWS_CLIENT_CONFIG
from posting_cli.bench.cost_model import read_units, write_units
from posting_cli.bench.item_sizes import item_size
from posting_cli.bench.section import Section, fmt_table, percentile, progress
from posting_cli.bench.workload import SEED, create_ledger_table, two_leg_body
from posting_cli.contention import ContentionCounter
from posting_cli.local.strict_dynamodb import strict_stats
from posting_cli.local.template import Template

CUSTOMERS = 200
MERCHANTS = 200
POSTINGS = 600  # per pipeline shape
FUNDING_POSTINGS = 500
IN_FLIGHT = 40  # enough to keep the pipe's 4 pollers and Post's 8 workers busy
POLLERS = 4
# Long enough that a record which had to wait out the visibility timeout shows in the latencies.
VISIBILITY_TIMEOUT_S = 60
OVERRIDES: dict[str, Any] = {"VisibilityTimeoutSeconds": VISIBILITY_TIMEOUT_S, "LogLevel": "WARNING"}
BUSY_WRITERS = 8
BUSY_POSTINGS_PER_WRITER = 40
HOT_RATIO_TARGET = 0.8
CONFLICTS_TARGET = 0.05
FUNDING_RATIO_TARGET = 0.7
# DynamoDB: one partition takes at most 1,000 write units a second; a transactional item costs
# 2 units per KB. The target: one settlement account at 2,500 postings/s.
PARTITION_WRITE_UNITS = 1000
TARGET_POSTINGS_PER_S = 2500
LANE_COUNTS = (1, 2, 4, 8, 16, 32, 64)
WRITE_PRICE = 0.625  # us-east-1 on-demand, per million write request units (cost_model.Prices)
READ_PRICE = 0.125


def _accounts() -> list[Account]:
    def limited(account_id: str, limit: int = 0) -> Account:
        return Account(account_id=account_id, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=limit)

    def unlimited(account_id: str, normal: Side) -> Account:
        return Account(account_id=account_id, currency="EUR", normal_balance=normal, overdraft_limit=None)

    return [
        unlimited("bench-funding", Side.DEBIT),
        unlimited("bench-settlement", Side.CREDIT),
        *(limited(f"bench-customer-{n:03d}") for n in range(CUSTOMERS)),
        *(limited(f"bench-merchant-{n:03d}") for n in range(MERCHANTS)),
    ]


def _bodies(rng: random.Random, prefix: str, count: int, payer: Any, payee: Any) -> list[str]:
    return [two_leg_body(f"{prefix}-{n:05d}", payer(n), payee(n), amount=rng.randint(100, 900)) for n in range(count)]


def _engine(endpoint_url: str) -> dict[str, Any]:
    return strict_stats(endpoint_url) or {}


def _shape(
    stack: Any, collector: Any, counter: ContentionCounter, name: str, bodies: list[str], *, line: int
) -> dict[str, Any]:
    from posting_cli.bench.pipeline import run_phase

    progress(f"contention: {name}, {len(bodies)} postings, {IN_FLIGHT} in flight")
    engine_before = _engine(stack.dynamodb.endpoint_url)
    transactions_before, replans_before = counter.snapshot()
    phase = run_phase(stack, collector, bodies, IN_FLIGHT, line)
    engine_after = _engine(stack.dynamodb.endpoint_url)
    transactions_after, replans_after = counter.snapshot()
    decided = sum(phase["statuses"].values())
    posted = phase["statuses"].get("POSTED", 0)
    cancelled = engine_after.get("transactions_cancelled", 0) - engine_before.get("transactions_cancelled", 0)
    refused = engine_after.get("single_writes_refused", 0) - engine_before.get("single_writes_refused", 0)
    return {
        "shape": name,
        "postings": len(bodies),
        "posted": posted,
        "postings_per_s": round(decided / phase["wall_s"], 1) if phase["wall_s"] else None,
        "conflicts_per_posting": round((cancelled + refused) / decided, 3) if decided else None,
        "transaction_conflicts": cancelled + refused,
        "ledger_transactions": transactions_after - transactions_before,
        "replanned_per_posting": round((replans_after - replans_before) / decided, 3) if decided else None,
        "latency_ms": phase["latency_ms"],
        "returned_to_queue": phase["pipe"]["records_returned_to_queue"],
        "statuses": phase["statuses"],
        "phase": phase,
    }


def _pipeline_shapes(endpoint: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from posting.handlers.bootstrap import aws_client
    from posting_cli import operations
    from posting_cli.local.stack import LocalStack
    from posting_cli.results import ResultCollector

    rng = random.Random(SEED)
    customers = [f"bench-customer-{n:03d}" for n in range(CUSTOMERS)]
    merchants = [f"bench-merchant-{n:03d}" for n in range(MERCHANTS)]
    template = Template.load(stack_name="posting-bench-contention", overrides=OVERRIDES)
    shapes: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="posting-bench-contention-") as state_dir,
        LocalStack(template, pollers=POLLERS, state_dir=Path(state_dir), dynamodb=endpoint) as stack,
    ):
        assert stack.target is not None
        operations.open_accounts(stack.target, _accounts())
        counter = ContentionCounter().attach(aws_client("dynamodb"))
        with ResultCollector(stack.target) as collector:
            line = 1
            fund = _bodies(rng, "fund", CUSTOMERS, lambda n: "bench-funding", lambda n: customers[n])
            funded = _shape(stack, collector, counter, "warm-up: fund the customers", fund, line=line)
            line += len(fund)
            # Spread: each posting between a customer and a merchant, pairs drawn at random.
            spread = _bodies(rng, "spread", POSTINGS, lambda n: rng.choice(customers), lambda n: rng.choice(merchants))
            shapes.append(_shape(stack, collector, counter, "spread", spread, line=line))
            line += len(spread)
            hot = _bodies(rng, "hot", POSTINGS, lambda n: rng.choice(customers), lambda n: "bench-settlement")
            shapes.append(_shape(stack, collector, counter, "hot settlement", hot, line=line))
            line += len(hot)
            burst = _bodies(
                rng, "burst", FUNDING_POSTINGS, lambda n: "bench-funding", lambda n: customers[n % CUSTOMERS]
            )
            shapes.append(_shape(stack, collector, counter, "funding burst", burst, line=line))
        books = operations.reconcile(stack.target)
    sizes = _stored_sizes(endpoint, "posting-bench-contention-LedgerTable")
    return shapes, {"warm_up": funded, "reconciliation_ok": books.ok, "problems": books.problems, "sizes": sizes}


def _stored_sizes(endpoint: Any, table: str) -> dict[str, int]:
    """Bytes of a settlement line, a customer's balance item and line, and a decision, as stored."""
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    books = LedgerTable(client, table).books

    def first_line(partition: str) -> dict[str, Any]:
        response = client.query(
            TableName=table,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :prefix)",
            ExpressionAttributeNames=dict(zip(("#pk", "#sk"), KEY_NAMES, strict=True)),
            ExpressionAttributeValues={":pk": {"S": partition}, ":prefix": {"S": ENTRY_PREFIX}},
            Limit=1,
        )
        return response["Items"][0]

    _, lines = books.statement("bench-settlement")
    customer_lines = books.statement("bench-customer-000")[1]
    return {
        "hot_entry": item_size(first_line(lane_partition("bench-settlement", lines[-1].lane or 0))),
        "account_item": item_size(client.get_item(TableName=table, Key=account_key("bench-customer-000"))["Item"]),
        "entry": item_size(first_line(account_partition("bench-customer-000"))),
        "decision": item_size(client.get_item(TableName=table, Key=posting_key(customer_lines[-1].posting_id))["Item"]),
    }


def _busy_limited_account(endpoint: Any) -> dict[str, Any]:
    """8 writers, each posting from its own customers to one merchant with a limit, at once."""
    from posting.steps.post import post_item
    from posting.steps.validate import validate_record
    from posting_cli.bench.workload import sqs_record

    progress(f"contention: one limited account, {BUSY_WRITERS} writers")
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    table = create_ledger_table(client)
    try:
        ledger = LedgerTable(client, table)
        counter = ContentionCounter().attach(client)
        ledger.open_account(
            Account(account_id="busy-merchant", currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=0),
            "2026-11-27T09:00:00.000Z",
        )
        for writer in range(BUSY_WRITERS):
            ledger.open_account(
                Account(
                    account_id=f"busy-payer-{writer}", currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None
                ),
                "2026-11-27T09:00:00.000Z",
            )
        work = [
            [
                validate_record(sqs_record(two_leg_body(f"busy-{w}-{n}", f"busy-payer-{w}", "busy-merchant", 100)))
                for n in range(BUSY_POSTINGS_PER_WRITER)
            ]
            for w in range(BUSY_WRITERS)
        ]
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        guard = threading.Lock()
        start = threading.Barrier(BUSY_WRITERS + 1)

        def write(items: list[Any]) -> None:
            start.wait()
            for item in items:
                began = time.perf_counter()
                result = post_item(item, ledger)
                with guard:
                    latencies.append((time.perf_counter() - began) * 1000)
                    statuses[str(result.outcome.status) if result.outcome else "undecided"] += 1

        engine_before = _engine(endpoint.endpoint_url)
        with ThreadPoolExecutor(max_workers=BUSY_WRITERS) as pool:
            futures = [pool.submit(write, items) for items in work]
            start.wait()
            began = time.perf_counter()
            for future in futures:
                future.result()
            wall = time.perf_counter() - began
        engine_after = _engine(endpoint.endpoint_url)
        merchant = ledger.books.get_account("busy-merchant")
        transactions, replans = counter.snapshot()
    finally:
        client.delete_table(TableName=table)
    postings = BUSY_WRITERS * BUSY_POSTINGS_PER_WRITER
    cancelled = engine_after.get("transactions_cancelled", 0) - engine_before.get("transactions_cancelled", 0)
    return {
        "shape": "busy limited account",
        "writers": BUSY_WRITERS,
        "postings": postings,
        "postings_per_s": round(statuses["POSTED"] / wall, 1),
        "conflicts_per_posting": round(cancelled / postings, 3),
        "transaction_conflicts": cancelled,
        "ledger_transactions": transactions,
        "replanned_per_posting": round(replans / postings, 3),
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1),
        },
        "statuses": dict(statuses),
        "merchant_balance": merchant.balance if merchant else None,
        "merchant_version": merchant.version if merchant else None,
    }


def capacity_model(sizes: dict[str, int], tau_ms: float) -> dict[str, Any]:
    """What one settlement account and one limited account carry on AWS, on paper.

    An unlimited account shares no item between postings: each posting writes its own line in one of
    the account's lanes, a partition key each. So only write units bound it. An account with a limit
    is one item that every posting's transaction touches: DynamoDB cancels a transaction that meets
    another on it, so it is a loss system with one server. At rate lambda and hold tau, the share of
    transactions that conflict is (lambda tau) / (1 + lambda tau) (Erlang's loss formula, one server).
    """
    tau_s = tau_ms / 1000
    per_lane_units = write_units(sizes["hot_entry"], transactional=True)
    per_lane_rate = PARTITION_WRITE_UNITS / per_lane_units
    account = write_units(sizes["account_item"], transactional=True)
    entry = write_units(sizes["entry"], transactional=True)
    decision = write_units(sizes["decision"], transactional=True)
    read = read_units(sizes["account_item"], consistent=True)
    # A card payment: the decision, the customer's balance item and line, the settlement's line.
    hot = {"items": 4, "write_units": decision + account + entry + per_lane_units, "read_units": read}
    spread = {"items": 5, "write_units": decision + 2 * (account + entry), "read_units": 2 * read}
    for shape in (hot, spread):
        shape["dynamodb_usd_per_million"] = round(
            shape["write_units"] * WRITE_PRICE + shape["read_units"] * READ_PRICE, 2
        )
    at_5_percent = CONFLICTS_TARGET / (1 - CONFLICTS_TARGET) / tau_s
    return {
        "tau_ms": tau_ms,
        "settlement": {
            "write_units_per_posting_on_its_lane": per_lane_units,
            "conflicts": 0.0,
            "postings_per_s_per_lane": round(per_lane_rate),
            "postings_per_s_by_lanes": {n: round(n * per_lane_rate) for n in LANE_COUNTS},
            "default_lanes": DEFAULT_LANES,
            "postings_per_s_default": round(DEFAULT_LANES * per_lane_rate),
            "lanes_for_target": math.ceil(TARGET_POSTINGS_PER_S / per_lane_rate),
            "target_postings_per_s": TARGET_POSTINGS_PER_S,
        },
        "limited_account": {
            "postings_per_s_at_5_percent_conflicts": round(at_5_percent, 1),
            "postings_per_s_ceiling": round(1 / tau_s),
        },
        "card_payment": hot,
        "spread_payment": spread,
    }


def bench_contention(endpoint: Any) -> Section:
    shapes, extra = _pipeline_shapes(endpoint)
    busy = _busy_limited_account(endpoint)
    tau_ms = float(_engine(endpoint.endpoint_url).get("tau_ms", 0.0))
    spread, hot, burst = shapes
    hot_ratio = hot["postings_per_s"] / spread["postings_per_s"]
    burst_ratio = burst["postings_per_s"] / spread["postings_per_s"]
    model = capacity_model(extra["sizes"], tau_ms)
    rows = [
        [
            s["shape"],
            s["postings"],
            f"{s['postings_per_s']:,.1f}",
            f"{s['conflicts_per_posting']:.3f}",
            f"{s['replanned_per_posting']:.3f}",
            f"{s['latency_ms']['p50']:,}",
            f"{s['latency_ms']['p99']:,}",
            s.get("returned_to_queue", "-"),
        ]
        for s in (*shapes, busy)
    ]
    settlement, limited = model["settlement"], model["limited_account"]
    verdict = "met" if hot_ratio >= HOT_RATIO_TARGET and hot["conflicts_per_posting"] <= CONFLICTS_TARGET else "missed"
    burst_waits = burst["latency_ms"]["max"] >= VISIBILITY_TIMEOUT_S * 1000
    waited = (
        "a record waited out the visibility timeout" if burst_waits else "no record waited out the visibility timeout"
    )
    books = "yes" if extra["reconciliation_ok"] else "NO: " + "; ".join(extra["problems"][:3])
    header = ["shape", "postings", "postings/s", "conflicts/posting", "re-planned/posting", "p50 ms", "p99 ms"]
    lines = [
        *fmt_table([*header, "returned"], rows),
        f"hot settlement / spread: {hot_ratio:.2f}x (target >= {HOT_RATIO_TARGET}x), conflicts per posting "
        f"{hot['conflicts_per_posting']:.3f} (target <= {CONFLICTS_TARGET}): {verdict}",
        f"funding burst / spread: {burst_ratio:.2f}x (target >= {FUNDING_RATIO_TARGET}x); longest wait "
        f"{burst['latency_ms']['max']:,} ms: {waited}",
        f"busy limited account, {BUSY_WRITERS} writers: {busy['postings_per_s']:.1f} postings/s, "
        f"{busy['conflicts_per_posting']:.3f} conflicts per posting, p99 {busy['latency_ms']['p99']:,.0f} ms",
        f"on AWS (tau {tau_ms:g} ms): one settlement account writes "
        f"{settlement['write_units_per_posting_on_its_lane']} units per posting on one lane and shares no item: "
        "0 conflicts at any rate, "
        f"{settlement['postings_per_s_per_lane']:,}/s per lane, {settlement['postings_per_s_default']:,}/s with its "
        f"default {settlement['default_lanes']} lanes; {TARGET_POSTINGS_PER_S:,}/s needs "
        f"{settlement['lanes_for_target']} lanes",
        f"  one account with a limit: about {limited['postings_per_s_at_5_percent_conflicts']:,.1f} postings/s at 5% "
        f"conflicts, at most about {limited['postings_per_s_ceiling']:,}/s (1/tau), whatever the writers do",
        f"  a card payment (customer -> settlement): {model['card_payment']['items']} items, "
        f"{model['card_payment']['write_units']} write units, ${model['card_payment']['dynamodb_usd_per_million']:.2f} "
        f"of DynamoDB per million; between two limited accounts: {model['spread_payment']['items']} items, "
        f"{model['spread_payment']['write_units']} write units",
        f"books reconciled after the run: {books}",
    ]
    return Section(
        key="hot_accounts",
        title="4. Contention under DynamoDB's conflict rule: hot settlement, funding bursts, a busy limited account",
        method=(
            f"The local stack (template.yaml on DynamoDB Local behind the strict conflict rules, tau {tau_ms:g} ms; "
            f"moto; {POLLERS} pipe pollers; the handlers in process), {IN_FLIGHT} requests in flight. Spread: "
            f"{POSTINGS} postings between {CUSTOMERS} customers and {MERCHANTS} merchants (all with a limit) drawn at "
            f"random; hot settlement: {POSTINGS} customer -> one settlement account with no limit, opened with no "
            f"special terms; funding burst: {FUNDING_POSTINGS} postings from one funding account opened the same way. "
            "postings/s = decided / the shape's wall time; conflicts = what the engine's rules refused "
            "(transactions cancelled, single writes refused) per decided posting; re-planned = transactions "
            "cancelled for any reason but an existing decision (conflicts, a missed pin, a refused condition), "
            "counted on the handlers' client; latency from SendMessage to the result event. Busy limited account: "
            f"post_item from {BUSY_WRITERS} threads, {BUSY_POSTINGS_PER_WRITER} postings each, all to one merchant "
            "with a limit. Capacity from 1,000 write units/s per partition, 2 units per KB transactional, "
            "and Erlang's loss formula for one item under the conflict rule."
        ),
        data={
            "shapes": shapes,
            "busy_limited_account": busy,
            "hot_vs_spread": round(hot_ratio, 3),
            "burst_vs_spread": round(burst_ratio, 3),
            "capacity_model": model,
            "hot": hot,
            **extra,
        },
        lines=lines,
    )
