"""Fault plans and decisions (pure: no engine)."""

from __future__ import annotations

import pytest

from posting_cli.local.faults import FAULT_KINDS, FaultInjector, FaultPlan, FaultSpecError, LambdaCrash


def test_all_switches_every_kind_on_and_kinds_take_their_own_probability():
    plan = FaultPlan.parse("all,dynamodb_throttle=0.5,poller_dies=0", seed=3, probability=0.1)
    assert set(plan.probabilities) == set(FAULT_KINDS) - {"poller_dies"}
    assert plan.probabilities["dynamodb_throttle"] == 0.5
    assert plan.probabilities["task_timeout"] == 0.1
    assert FaultPlan.parse("none").probabilities == {}


@pytest.mark.parametrize("spec", ["everything", "task_timeout=2", "post_crash=0.1"])
def test_a_bad_spec_is_refused(spec):
    with pytest.raises(FaultSpecError):
        FaultPlan.parse(spec)


def test_decisions_are_fixed_by_seed_kind_key_and_occurrence():
    def decisions(seed: int) -> list[bool]:
        injector = FaultInjector(FaultPlan.parse("dynamodb_throttle=0.3", seed=seed))
        return [injector.fires("dynamodb_throttle", f"key-{n % 7}") for n in range(200)]

    assert decisions(1) == decisions(1)
    assert decisions(1) != decisions(2)
    assert 30 < sum(decisions(1)) < 90  # about 0.3 of 200


def test_a_crash_after_commit_fires_only_once_something_was_decided():
    injector = FaultInjector(FaultPlan.parse("post_crash_after_commit=1"))
    undecided = {"items": [{"posting_id": "p", "outcome": None, "receive_count": 1}]}
    assert injector.around_invoke("PostFunction", undecided, lambda: undecided) == undecided
    decided = {"items": [{"posting_id": "p", "outcome": {"status": "POSTED"}, "receive_count": 1}]}
    with pytest.raises(LambdaCrash) as crash:
        injector.around_invoke("PostFunction", decided, lambda: decided)
    assert crash.value.error_type == "Runtime.ExitError"
    assert injector.counts == {"post_crash_after_commit": 1}
