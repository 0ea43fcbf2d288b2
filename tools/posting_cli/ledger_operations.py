"""Operators' acts on a pipeline's ledger (local or deployed): an account's lifecycle, the period
close, and the books by value date. Each act goes through posting.steps.ledger_acts, as recorded
revisions with the events they owe (the stack's sweeper publishes them).
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

from posting.domain.accounts import AccountAct
from posting.domain.books import Figures
from posting.domain.outcomes import Decision
from posting.domain.periods import Period
from posting.steps import ledger_acts
from posting_cli.target import Target


def operator_identity(target: Target) -> str:
    """Who the act is recorded as done by: the caller's ARN on AWS, the local user's name locally."""
    if target.is_local:
        return f"local:{getpass.getuser()}"
    return str(target.client("sts").get_caller_identity()["Arn"])


def act_on_account(
    target: Target, account_id: str, act: str, *, note: str = "", limit: int | None = None
) -> AccountAct:
    """Freeze, unfreeze, close or change the limit of an account (raises AccountActRefused with why)."""
    return ledger_acts.act_on_account(
        target.ledger().acts, account_id, act, operator_identity(target), note=note, limit=limit
    )


def account_history(target: Target, account_id: str) -> list[AccountAct]:
    """Every act on an account, oldest first."""
    return target.ledger().acts.account_revisions(account_id)


def close_period(target: Target, through: str, *, note: str = "") -> Period:
    """Close the books through `through` (raises PeriodCloseRefused with why)."""
    return ledger_acts.close_period(
        target.ledger().acts, through, datetime.now(UTC), operator_identity(target), note=note
    )


def period(target: Target) -> tuple[Period, list[Period]]:
    """The close in force (or coming in force) and every close recorded."""
    acts = target.ledger().acts
    return acts.read_period(), acts.period_closes()


def figures_as_of(target: Target, account_id: str, moment: str) -> Figures:
    return target.ledger().books.figures_as_of(account_id, moment)


def figures_by_value_date(target: Target, account_id: str, moment: str) -> Figures:
    return target.ledger().books.figures_by_value_date(account_id, moment)


def find_by_ref(target: Target, external_ref: str) -> list[Decision]:
    """Every decision whose request carried `external_ref`, oldest first (one Query)."""
    return target.ledger().books.find_by_ref(external_ref)


def posting_state(decision: Decision) -> dict[str, Any]:
    """What `posting find` prints of a decision: the posting and where it stands."""
    state = {
        "posting_id": decision.posting_id,
        "external_ref": decision.external_ref,
        "kind": decision.kind or "posting",
        "status": str(decision.status),
        "reason": str(decision.reason) if decision.reason else None,
        "decided_at": decision.decided_at,
        "hold_id": decision.hold_id,
        "hold_state": decision.hold_state,
        "settled_by": decision.settled_by,
        "reverses": decision.reverses,
        "reversed_by": decision.reversed_by,
        "chain_id": decision.chain_id,
        "legs": decision.posted_legs or decision.pending_legs or (decision.request or {}).get("legs"),
    }
    return {name: value for name, value in state.items() if value is not None}
