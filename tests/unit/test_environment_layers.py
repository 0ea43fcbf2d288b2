"""Local stacks in one process set the handlers' environment in os.environ and take it back when they
stop, in whatever order they stop."""

from __future__ import annotations

import os

from posting_cli.local.lambdas import _EnvironmentLayers


def test_stacks_stopping_in_any_order_leave_what_the_running_ones_set_then_what_was_there(monkeypatch):
    monkeypatch.setenv("LEVEL", "original")
    monkeypatch.delenv("ENDPOINT", raising=False)
    layers, first, second = _EnvironmentLayers(), object(), object()

    layers.push(first, {"LEVEL": "INFO", "ENDPOINT": "http://127.0.0.1:1"})
    layers.push(second, {"LEVEL": "WARNING", "ENDPOINT": "http://127.0.0.1:2"})
    assert (os.environ["LEVEL"], os.environ["ENDPOINT"]) == ("WARNING", "http://127.0.0.1:2")

    layers.pop(first)  # the first stops while the second runs: the second's values stay
    assert (os.environ["LEVEL"], os.environ["ENDPOINT"]) == ("WARNING", "http://127.0.0.1:2")

    layers.pop(second)
    assert os.environ["LEVEL"] == "original"
    assert "ENDPOINT" not in os.environ


def test_the_last_stack_to_start_wins_until_it_stops(monkeypatch):
    monkeypatch.delenv("LEVEL", raising=False)
    layers, first, second = _EnvironmentLayers(), object(), object()
    layers.push(first, {"LEVEL": "INFO"})
    layers.push(second, {"LEVEL": "WARNING"})

    layers.pop(second)

    assert os.environ["LEVEL"] == "INFO"
    layers.pop(first)
    assert "LEVEL" not in os.environ


def test_a_value_changed_between_two_stacks_comes_back_when_both_have_stopped(monkeypatch):
    monkeypatch.delenv("REGION", raising=False)
    layers, session, own = _EnvironmentLayers(), object(), object()
    layers.push(session, {"REGION": "us-east-1"})
    monkeypatch.setenv("REGION", "eu-west-3")  # a test's own setting, while the session's stack runs
    layers.push(own, {"REGION": "us-east-1"})

    layers.pop(own)

    assert os.environ["REGION"] == "eu-west-3"
