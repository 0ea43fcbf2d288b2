"""This host's clock against DynamoDB's (posting.adapters.clock): bounds from Date headers, and the
ledger writing nothing while the clock is known to be off."""

from __future__ import annotations

from email.utils import formatdate
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posting.adapters.clock import ClockWatch
from posting.adapters.ledger_table import LedgerTable
from posting.domain.books import Checkpoint, Figures
from posting.domain.outcomes import TransientPostingError


def watch_at(monotonic: list[float]) -> ClockWatch:
    return ClockWatch(clock=lambda: 0.0, monotonic=lambda: monotonic[0])


@given(
    offset=st.floats(-30, 30),
    server_times=st.lists(st.floats(1_700_000_000, 1_700_000_100), min_size=1, max_size=20),
    latency=st.floats(0.001, 0.2),
)
def test_the_bounds_always_hold_the_true_offset(offset, server_times, latency):
    now = [0.0]
    watch = watch_at(now)
    for server in server_times:  # the server answers at `server`, its Date header is the whole second
        sent = server + offset - latency / 2
        watch.observe(sent, sent + latency, float(int(server)))
    low, high = watch.bounds()
    assert low <= offset <= high
    assert high - low <= 1.0 + latency + 1e-6  # epoch seconds as floats: microsecond precision


def test_answers_spread_over_a_second_narrow_the_bounds():
    now = [0.0]
    watch = watch_at(now)
    offset = 0.3  # this host is 300 ms ahead
    for tenth in range(10):
        server = 1_700_000_000 + tenth / 10
        watch.observe(server + offset - 0.001, server + offset + 0.001, float(int(server)))
    low, high = watch.bounds()
    assert low <= offset <= high and high - low < 0.2
    assert abs(watch.offset_ms() - 300) < 100


def test_a_clock_known_to_be_off_is_refused_either_way_and_unknown_is_not():
    now = [0.0]
    watch = watch_at(now)
    watch.check()  # nothing known: not refused
    watch.observe(sent=1_700_000_010.0, answered=1_700_000_010.05, server_date=1_700_000_000.0)  # 9-10 s ahead
    with pytest.raises(TransientPostingError, match="ahead of DynamoDB's"):
        watch.check()
    slow = watch_at(now)
    slow.observe(sent=1_699_999_995.0, answered=1_699_999_995.05, server_date=1_700_000_000.0)  # 4-5 s behind
    with pytest.raises(TransientPostingError, match="behind DynamoDB's"):
        slow.check()
    slow.check(bound=6.0)


def test_a_stepped_clock_is_trusted_from_its_latest_answers_and_old_ones_are_forgotten():
    now = [0.0]
    watch = watch_at(now)
    watch.observe(1_700_000_010.0, 1_700_000_010.01, 1_700_000_000.0)  # 10 s ahead
    now[0] = 10.0
    watch.observe(1_700_000_100.2, 1_700_000_100.21, 1_700_000_100.0)  # NTP stepped it right
    low, high = watch.bounds()
    assert -1.0 < low <= high <= 0.3
    watch.check()
    now[0] = 10_000.0  # everything is older than the window
    assert watch.bounds() is None


def test_it_measures_a_botocore_clients_calls_from_their_date_header():
    handlers: dict[str, Any] = {}
    client = SimpleNamespace(meta=SimpleNamespace(events=SimpleNamespace(register=handlers.__setitem__)))
    moments = iter([1_700_000_000.1, 1_700_000_000.2])
    watch = ClockWatch(clock=lambda: next(moments)).attach(client)
    context: dict[str, Any] = {}
    handlers["before-call.dynamodb"](context=context)
    response = SimpleNamespace(headers={"Date": formatdate(1_700_000_000.0, usegmt=True)})
    handlers["after-call.dynamodb"](http_response=response, context=context)
    low, high = watch.bounds()
    assert low <= 0.15 <= high


class _NoCalls:
    """A client the test forbids to be called: the ledger must refuse before it writes."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} called while the clock is off")


def test_the_ledger_writes_no_line_nor_checkpoint_while_its_clock_is_off():
    now = [0.0]
    watch = watch_at(now)
    watch.observe(1_700_000_010.0, 1_700_000_010.05, 1_700_000_000.0)
    ledger = LedgerTable(_NoCalls(), "ledger", clock=watch)
    with pytest.raises(TransientPostingError, match="clock"):
        ledger.record_posting(plan=None, request_hash="0" * 64, message_id="m-1")  # type: ignore[arg-type]
    with pytest.raises(TransientPostingError, match="clock"):
        ledger.write_checkpoint(Checkpoint("acc", 0, "2026-01-01T00:00:00.000Z", Figures()))
