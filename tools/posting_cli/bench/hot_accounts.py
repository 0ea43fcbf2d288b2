"""4. Hot accounts: 8 writers through one unlimited settlement account vs on distinct accounts, in
the same run, and the capacity model of one hot account on AWS from per-partition limits and item sizes.

It reuses the ledger section's runner and counters, and the cost model's unit rules.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

from posting.adapters.ledger_keys import account_key, account_partition, lane_partition, posting_key
from posting.adapters.ledger_table import LedgerTable
from posting.domain.model import DEFAULT_LANES, Account, Side
from posting.handlers.config import AWS_CLIENT_CONFIG
from posting_cli.bench.cost_model import read_units, write_units
from posting_cli.bench.item_sizes import item_size
from posting_cli.bench.ledger import CountingLedger, run_postings, thread_accounts
from posting_cli.bench.section import Section, fmt_table, percentile, progress
from posting_cli.bench.workload import create_ledger_table, open_unlimited_accounts, posting_id, two_leg_body

WRITERS = 8
POSTINGS_PER_WRITER = 40
REPEATS = 3
WARMUP_PER_WRITER = 5
HOT_ACCOUNT = "acc-hot-settlement"
# DynamoDB: one partition takes at most 1,000 write units/s; a transactional write costs 2 units per KB.
PARTITION_WRITE_UNITS = 1000
LANE_COUNTS = (1, 2, 4, 8, 16, 32, 64)
TARGET_POSTINGS_PER_S = 2500
# us-east-1 on-demand, as researched in 2026 (cost_model.Prices): per million request units.
WRITE_PRICE = 0.625
READ_PRICE = 0.125
DEMO_HOT_SHARE = 0.6  # about the share of the demo's requests that touch a hot account


def _bodies(hot: bool) -> list[list[str]]:
    work = []
    for writer in range(WRITERS):
        own = thread_accounts(writer)
        work.append(
            [
                two_leg_body(posting_id(), own[n % len(own)], HOT_ACCOUNT if hot else own[(n + 1) % len(own)])
                for n in range(POSTINGS_PER_WRITER)
            ]
        )
    return work


def _scenario(client: Any, hot: bool) -> dict[str, Any]:
    table = create_ledger_table(client)
    try:
        ledger = CountingLedger(client, table)
        open_unlimited_accounts(ledger, [a for w in range(WRITERS) for a in thread_accounts(w)])
        settlement = Account(account_id=HOT_ACCOUNT, currency="EUR", normal_balance=Side.CREDIT, overdraft_limit=None)
        ledger.open_account(settlement, "2026-11-27T09:00:00.000Z")
        run_postings(ledger, [b[:WARMUP_PER_WRITER] for b in _bodies(hot)])
        ledger.reset_counts()
        runs = [run_postings(ledger, _bodies(hot)) for _ in range(REPEATS)]
        sizes = _stored_sizes(client, table) if hot else {}
    finally:
        client.delete_table(TableName=table)
    statuses: Counter[str] = sum((run["statuses"] for run in runs), Counter())
    posted = statuses["POSTED"]
    rates = [run["statuses"]["POSTED"] / run["wall_s"] for run in runs]
    latencies = [latency for run in runs for latency in run["latencies_ms"]]
    cancelled = sum(n for outcome, n in ledger.outcomes.items() if outcome != "committed")
    return {
        "scenario": "one hot account" if hot else "distinct accounts",
        "writers": WRITERS,
        "postings_per_repeat": WRITERS * POSTINGS_PER_WRITER,
        "postings_per_s_median": round(statistics.median(rates), 1),
        "postings_per_s_repeats": [round(rate, 1) for rate in rates],
        "latency_ms_p50": round(percentile(latencies, 0.50), 1),
        "latency_ms_p99": round(percentile(latencies, 0.99), 1),
        "conflicts_per_posting": round(cancelled / posted, 3) if posted else None,
        "record_posting_outcomes": dict(ledger.outcomes),
        "statuses": dict(statuses),
        "dynamodb_calls_per_posted": round(sum(ledger.counting_client.calls.values()) / posted, 2) if posted else None,
        "sizes": sizes,
    }


def _stored_sizes(client: Any, table: str) -> dict[str, int]:
    """Bytes of a hot account's line, a customer's account item and line, and a decision."""

    def first(partition: str) -> dict[str, Any]:
        response = client.query(
            TableName=table,
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": {"S": partition}, ":prefix": {"S": "ENTRY#"}},
            Limit=1,
        )
        return response["Items"][0]

    books = LedgerTable(client, table).books
    _, lines = books.statement(HOT_ACCOUNT)
    customer = thread_accounts(0)[0]
    customer_lines = books.statement(customer)[1]
    return {
        "hot_entry": item_size(first(lane_partition(HOT_ACCOUNT, lines[-1].lane or 0))),
        "account_item": item_size(client.get_item(TableName=table, Key=account_key(customer))["Item"]),
        # The writers' own accounts are opened without a limit too: their lines are in lanes as well.
        "entry": item_size(
            first(
                account_partition(customer)
                if customer_lines[-1].lane is None
                else lane_partition(customer, customer_lines[-1].lane)
            )
        ),
        "decision": item_size(client.get_item(TableName=table, Key=posting_key(customer_lines[-1].posting_id))["Item"]),
    }


def capacity_model(sizes: dict[str, int]) -> dict[str, Any]:
    """Postings/s through one hot account on AWS, and units and DynamoDB cost per posting.

    An unlimited account has no item in a posting's transaction but the posting's own line, in one of
    its lanes; each lane is its own partition key. Under DynamoDB's conflict rule no two postings
    share an item on it, so only write units bound it: a lane takes one partition's units, N lanes N.
    """
    per_lane_units = write_units(sizes["hot_entry"], transactional=True)
    per_lane_rate = PARTITION_WRITE_UNITS / per_lane_units
    by_lanes = {n: round(n * per_lane_rate) for n in LANE_COUNTS}
    needed = math.ceil(TARGET_POSTINGS_PER_S / per_lane_rate)
    account = write_units(sizes["account_item"], transactional=True)
    entry = write_units(sizes["entry"], transactional=True)
    decision = write_units(sizes["decision"], transactional=True)
    read = read_units(sizes["account_item"], consistent=True)
    spread = {"write_units": decision + 2 * (account + entry), "read_units": 2 * read}
    hot = {"write_units": decision + account + entry + per_lane_units, "read_units": 2 * read}
    mixed = {
        key: round(DEMO_HOT_SHARE * hot[key] + (1 - DEMO_HOT_SHARE) * spread[key], 2)
        for key in ("write_units", "read_units")
    }
    shapes = {"spread": spread, "hot": hot, "mixed (demo-like)": mixed}
    for shape in shapes.values():
        shape["dynamodb_usd_per_million"] = round(
            shape["write_units"] * WRITE_PRICE + shape["read_units"] * READ_PRICE, 2
        )
    return {
        "write_units_per_hot_posting_on_the_lane": per_lane_units,
        "postings_per_s_per_lane": round(per_lane_rate),
        "postings_per_s_by_lanes": by_lanes,
        "lanes_needed_for_target": needed,
        "default_lanes": DEFAULT_LANES,
        "target_postings_per_s": TARGET_POSTINGS_PER_S,
        "shapes": shapes,
    }


def dynamodb_rules() -> dict[str, Any]:
    """The transaction conflict rules the endpoint applies (from the environment, as attach_or_start reads it)."""
    from posting_cli.local.strict_dynamodb import StrictRules

    rules = StrictRules.from_environ()
    return {"enabled": rules.enabled, "tau_ms": rules.tau_ms}


def bench_hot_accounts(endpoint: Any) -> Section:
    client = endpoint.client(config=AWS_CLIENT_CONFIG)
    progress(f"hot accounts: {WRITERS} writers, distinct accounts")
    distinct = _scenario(client, hot=False)
    progress(f"hot accounts: {WRITERS} writers through one unlimited account")
    hot = _scenario(client, hot=True)
    ratio = hot["postings_per_s_median"] / distinct["postings_per_s_median"]
    model = capacity_model(hot["sizes"])
    rows = [
        [
            s["scenario"],
            s["writers"],
            f"{s['postings_per_s_median']:,.0f} ({min(s['postings_per_s_repeats']):,.0f}-"
            f"{max(s['postings_per_s_repeats']):,.0f})",
            f"{s['latency_ms_p50']:.1f}",
            f"{s['latency_ms_p99']:.1f}",
            f"{s['conflicts_per_posting']:.3f}",
            f"{s['dynamodb_calls_per_posted']:.2f}",
        ]
        for s in (distinct, hot)
    ]
    shapes = model["shapes"]
    lines = [
        *fmt_table(
            ["scenario", "writers", "postings/s (min-max)", "p50 ms", "p99 ms", "conflicts/posting", "calls"], rows
        ),
        f"hot / distinct: {ratio:.2f}x (target >= 0.8x); conflicts per posting through the hot account: "
        f"{hot['conflicts_per_posting']:.3f} (target <= 0.05)",
        f"capacity on AWS: a hot posting writes {model['write_units_per_hot_posting_on_the_lane']} units on one "
        f"lane's partition (its line, {hot['sizes']['hot_entry']} B, transactional) and shares no item with any "
        f"other posting, so {model['postings_per_s_per_lane']:,}/s per lane at {PARTITION_WRITE_UNITS:,} units/s "
        "per partition:",
        "  " + ", ".join(f"{n} lane(s) {rate:,}/s" for n, rate in model["postings_per_s_by_lanes"].items()),
        f"  {model['lanes_needed_for_target']} lanes carry {TARGET_POSTINGS_PER_S:,}/s through one account "
        f"(an unlimited account has {DEFAULT_LANES} unless opened with balance_shards)",
        "DynamoDB units and cost per million 2-leg postings: "
        + "; ".join(
            f"{name}: {s['write_units']} WCU + {s['read_units']} RCU = ${s['dynamodb_usd_per_million']:.2f}"
            for name, s in shapes.items()
        ),
    ]
    return Section(
        key="hot_accounts",
        title=f"4. Hot accounts: {WRITERS} writers, one unlimited account vs distinct accounts",
        method=(
            f"post_item from {WRITERS} threads at once against DynamoDB Local, {POSTINGS_PER_WRITER} postings each, "
            f"median of {REPEATS} repeats after a warm-up; in the hot scenario every posting credits one account "
            "without a limit, opened with no special terms (its line in one of its lanes); in the distinct one, each "
            "writer "
            "posts between its own 20 accounts. Conflicts = transactions cancelled (version, TransactionConflict) "
            "per posting, counted around record_posting. Item sizes read back from the table and sized by "
            "DynamoDB's rules; capacity from 1,000 write units/s per partition, 2 units per KB transactional."
        ),
        data={
            "distinct": distinct,
            "hot": hot,
            "ratio": round(ratio, 3),
            "capacity_model": model,
            "dynamodb_rules": dynamodb_rules(),
        },
        lines=lines,
    )
