"""The smoke test's verdicts: every mismatch it can meet is named, and a healthy run passes."""

from __future__ import annotations

from posting_cli.smoke import AMOUNT, Observed, accounts_for, check_balances, check_outcomes, probes_for

PAYER, PAYEE = accounts_for("smoke-test")
PROBES = {probe.name: probe for probe in probes_for("smoke-test", PAYER, PAYEE)}


def healthy() -> dict[str, Observed]:
    return {
        "posting": Observed("Posting Posted", {"event_id": "e1", "status": "POSTED", "reason": None}, 1),
        "duplicate": Observed("Posting Posted", {"event_id": "e1", "status": "DUPLICATE", "reason": None}, 2),
        "malformed": Observed(
            "Posting Rejected", {"event_id": "e2", "status": "REJECTED", "reason": "INVALID_REQUEST"}, 3
        ),
    }


def test_a_healthy_run_has_no_problems():
    assert check_outcomes(PROBES, healthy()) == []
    balances = {PAYER.account_id: (-AMOUNT, 1), PAYEE.account_id: (AMOUNT, 1)}
    assert check_balances(balances, PAYER.account_id, PAYEE.account_id) == []


def test_a_missing_event_is_named():
    observed = healthy()
    del observed["malformed"]
    assert check_outcomes(PROBES, observed) == ["malformed: no result event"]


def test_a_wrong_outcome_is_named_with_what_came_instead():
    observed = healthy()
    observed["duplicate"] = Observed("Posting Posted", {"event_id": "e1", "status": "POSTED", "reason": None}, 2)
    [problem] = check_outcomes(PROBES, observed)
    assert problem.startswith("duplicate: expected 'Posting Posted' status DUPLICATE") and "got" in problem


def test_a_duplicate_announced_under_a_new_event_id_is_a_problem():
    observed = healthy()
    observed["duplicate"].detail["event_id"] = "e3"
    assert check_outcomes(PROBES, observed) == ["duplicate: event_id e3 differs from the posting's e1"]


def test_a_posting_applied_twice_or_not_at_all_is_a_problem():
    twice = {PAYER.account_id: (-2 * AMOUNT, 2), PAYEE.account_id: (2 * AMOUNT, 2)}
    assert len(check_balances(twice, PAYER.account_id, PAYEE.account_id)) == 2
    missing = {PAYER.account_id: (-AMOUNT, 1), PAYEE.account_id: None}
    assert check_balances(missing, PAYER.account_id, PAYEE.account_id) == [
        f"{PAYEE.account_id}: expected balance {AMOUNT} after 1 entry, got no account"
    ]


def test_the_duplicate_repeats_the_posting_byte_for_byte_and_the_malformed_one_is_not_a_request():
    from pydantic import ValidationError

    from posting.domain.model import parse_posting_request

    assert PROBES["duplicate"].body == PROBES["posting"].body
    parse_posting_request(PROBES["posting"].body)
    try:
        parse_posting_request(PROBES["malformed"].body)
    except ValidationError:
        pass
    else:
        raise AssertionError("the malformed probe parsed as a valid request")


REFUSAL = "TransactionConflictException: Transaction is ongoing for the item"


def test_closing_an_account_a_posting_still_holds_is_tried_again(monkeypatch):
    from posting.domain.model import AccountStatus
    from posting.domain.outcomes import TransientPostingError
    from posting_cli import smoke

    class Ledger:
        def __init__(self, refusals: int) -> None:
            self.refusals, self.closed = refusals, []

        def read_accounts(self, account_ids):
            return {account_id: object() for account_id in account_ids}

        def set_account_status(self, account_id, status):
            if self.refusals:
                self.refusals -= 1
                raise TransientPostingError(REFUSAL)
            self.closed.append((account_id, status))

    ledger = Ledger(refusals=3)
    monkeypatch.setattr(smoke.operations, "ledger", lambda target: ledger)
    report = smoke.SmokeReport(run_id="r", accounts=["a", "b"])
    waits: list[float] = []
    smoke._close(None, report, sleep=waits.append)  # type: ignore[arg-type]
    assert report.problems == []
    assert ledger.closed == [("a", AccountStatus.CLOSED), ("b", AccountStatus.CLOSED)]
    assert waits == [0.05, 0.1, 0.2]

    stuck = Ledger(refusals=100)
    monkeypatch.setattr(smoke.operations, "ledger", lambda target: stuck)
    report = smoke.SmokeReport(run_id="r", accounts=["a"])
    smoke._close(None, report, sleep=lambda _: None)  # type: ignore[arg-type]
    assert report.problems == [f"a: could not be closed: {REFUSAL}"]
