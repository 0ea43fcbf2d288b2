"""The batch-fill simulation: how full the pipe's batches are at a given rate, with the Pipes semantics
AWS documents (long polls return what is there, a window starts when the previous invocation ends)."""

from __future__ import annotations

import pytest

from posting_cli.bench.batch_fill import simulate_fill


def workflow(records: int) -> float:
    return 100.0 + 10.0 * records


def test_a_trickle_travels_alone() -> None:
    result = simulate_fill(0.5, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow, messages=2_000)
    assert result.mean_fill == pytest.approx(1.0, abs=0.01)
    assert result.executions_per_second == pytest.approx(0.5, rel=0.1)
    # Nothing waits for a poller: the latency is the handover, the workflow and the delivery.
    alone = simulate_fill(
        0.5, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow, handover_ms=30, delivery_ms=250, messages=2_000
    )
    assert alone.latency_p99_ms == pytest.approx(30 + 110 + 250, abs=1)


def test_busy_pollers_fill_batches_up_to_the_batch_size() -> None:
    # Two pollers, 500/s: every poll finds a backlog.
    result = simulate_fill(500, pollers=2, batch_size=10, window_s=0, workflow_ms=workflow, messages=5_000)
    assert result.mean_fill == pytest.approx(10, abs=0.05)
    fewer = simulate_fill(7.6, pollers=2, batch_size=10, window_s=0, workflow_ms=workflow)
    more = simulate_fill(7.6, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow)
    assert 1.0 <= more.mean_fill < fewer.mean_fill < 2  # fewer pollers, more queueing, fuller batches


def test_a_batching_window_fills_batches_and_costs_latency() -> None:
    none = simulate_fill(7.6, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow)
    window = simulate_fill(7.6, pollers=5, batch_size=10, window_s=1.0, workflow_ms=workflow)
    assert window.mean_fill > 2 * none.mean_fill
    assert window.latency_p99_ms > none.latency_p99_ms + 800  # the first record waits most of the window
    # At 1,111/s a window fills batches within milliseconds: full batches for little latency.
    fast = simulate_fill(1111, pollers=40, batch_size=10, window_s=1.0, workflow_ms=workflow, messages=20_000)
    assert fast.mean_fill > 9.5
    assert fast.latency_p99_ms < 1_000


def test_send_message_batch_lands_messages_together() -> None:
    alone = simulate_fill(7.6, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow)
    batched = simulate_fill(7.6, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow, producer_flush_ms=1_000)
    assert alone.producer_calls_per_message == 1
    # A call a second of the 7.6 messages that arrived on average (two when more than 10 did), and one
    # poll takes a call's messages whole.
    assert 1 / 7.6 < batched.producer_calls_per_message < 1.2 / 7.6
    assert batched.mean_fill > 5
    assert batched.producer_wait_p99_ms == pytest.approx(990, abs=15)  # what the flush adds before enqueue
    assert alone.producer_wait_p99_ms == 0


def test_the_simulation_is_deterministic_and_checks_its_inputs() -> None:
    first = simulate_fill(7.6, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow, seed=3)
    assert first == simulate_fill(7.6, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow, seed=3)
    with pytest.raises(ValueError, match="positive"):
        simulate_fill(0, pollers=5, batch_size=10, window_s=0, workflow_ms=workflow)
