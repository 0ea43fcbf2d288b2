"""Chains: several requests decided in order, as one transaction, all or nothing. Pure.

Each member is planned as if it came alone, right after the members before it: on the figures they
left, and on their decisions (a capture may settle a hold an earlier member placed). If a member is
refused, the chain is refused with that member's reason, naming it. The members' changes to each
account with a limit are merged into one change (a transaction may write an item once); DynamoDB
then checks the deepest point the account reaches within the chain against its limit, so no
member's moment goes beyond it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from posting.domain.content import referenced_id
from posting.domain.ledger import accounts_touched, check_expectations, plan_request
from posting.domain.model import AccountState, utc_timestamp
from posting.domain.outcomes import Decision, PostingRejected, Reason
from posting.domain.plan import AccountChange, PostingPlan, decision_for, transaction_items
from posting.domain.requests import MAX_TRANSACTION_ITEMS, ChainRequest, Member


def chain_references(chain: ChainRequest) -> list[str]:
    """The holds and originals its members act on that are not placed by an earlier member."""
    placed: set[str] = set()
    found: list[str] = []
    for member in chain.requests:
        reference = referenced_id(member)
        if reference is not None and reference not in placed and reference not in found:
            found.append(reference)
        placed.add(member.posting_id)
    return found


def chain_accounts(chain: ChainRequest, references: Mapping[str, Decision | None]) -> list[str]:
    """The accounts its members may change, in order (a settlement's from its hold's decision)."""
    accounts: list[str] = []
    for member in chain.requests:
        reference = referenced_id(member)
        accounts += accounts_touched(member, references.get(reference) if reference else None)
    return list(dict.fromkeys(accounts))


def plan_chain(
    chain: ChainRequest,
    accounts: Mapping[str, AccountState],
    references: Mapping[str, Decision | None],
    decided_at: datetime,
) -> PostingPlan:
    """Plan every member in turn at decided_at, + 1 ms each, and merge them into one plan; then check
    the chain's own expectations against the figures before its first member."""
    states = dict(accounts)
    decisions: dict[str, Decision | None] = dict(references)
    members: list[PostingPlan] = []
    for index, member in enumerate(chain.requests):
        moment = decided_at + timedelta(milliseconds=index)
        reference = referenced_id(member)
        try:
            plan = plan_request(member, states, decisions.get(reference) if reference else None, moment)
        except PostingRejected as refused:
            detail = f"requests[{index}] ({member.posting_id}): {refused.detail}"
            raise PostingRejected(refused.reason, detail) from None
        members.append(plan)
        states |= _after(plan, states)
        decisions |= _decided(plan, member, decisions)
    merged = PostingPlan(
        request=chain,
        decided_at=utc_timestamp(decided_at),
        changes=_merged(members, accounts),
        entries=tuple(entry for plan in members for entry in plan.entries),
        members=tuple(members),
    )
    items = transaction_items(merged)
    if items > MAX_TRANSACTION_ITEMS:
        raise PostingRejected(
            Reason.CHAIN_TOO_LARGE,
            f"the chain needs {items} items in its transaction; one transaction holds {MAX_TRANSACTION_ITEMS}",
        )
    # The chain's own expectations: of the accounts its members change, as they were before it.
    check_expectations(chain, accounts, merged)
    return merged


def _after(plan: PostingPlan, states: Mapping[str, AccountState]) -> dict[str, AccountState]:
    """The figures a member leaves on the accounts it was planned from a read of, for the next one.
    Accounts planned without a read stay so; the merged change carries what DynamoDB must check."""
    found = {}
    for change in plan.changes:
        after = change.after()
        state = states[change.account_id]
        if after is not None:
            found[change.account_id] = after.model_copy(update={"last_recorded_at": plan.decided_at})
        else:
            found[change.account_id] = state.model_copy(update={"last_recorded_at": plan.decided_at})
    return found


def _decided(plan: PostingPlan, member: Member, decisions: Mapping[str, Decision | None]) -> dict[str, Decision]:
    """The decisions a member leaves for the next ones: its own, and the hold or original it acts on."""
    found = {member.posting_id: decision_for(plan, member.content_hash(), None)}
    if plan.settlement is not None and (hold := decisions.get(plan.settlement.hold_id)) is not None:
        found[hold.posting_id] = hold.model_copy(
            update={"hold_state": plan.settlement.state, "settled_by": plan.settlement.by}
        )
    if plan.reversal is not None and (original := decisions.get(plan.reversal.original_id)) is not None:
        found[original.posting_id] = original.model_copy(
            update={
                "reversed": plan.reversal.reversed,
                "version": (original.version or 0) + 1,
                "reversed_by": [*(original.reversed_by or []), *plan.reversal.by],
            }
        )
    return found


def _merged(members: Sequence[PostingPlan], accounts: Mapping[str, AccountState]) -> tuple[AccountChange, ...]:
    """One change per account with a limit: the members' figures added up, open if any member needs
    it open, and headroom for the deepest the account goes within the chain."""
    by_account: dict[str, list[tuple[PostingPlan, AccountChange]]] = {}
    for plan in members:
        for change in plan.changes:
            by_account.setdefault(change.account_id, []).append((plan, change))
    merged = []
    for account_id, changes in by_account.items():
        running, deepest = 0, 0
        for _, change in changes:
            running += change.available
            if change.available < 0:
                deepest = max(deepest, -running)
        first = changes[0][1]
        merged.append(
            AccountChange(
                account_id=account_id,
                currency=first.currency,
                posted=sum(c.posted for _, c in changes),
                pending_debits=sum(c.pending_debits for _, c in changes),
                pending_credits=sum(c.pending_credits for _, c in changes),
                available=running,
                entries=sum(c.entries for _, c in changes),
                require_open=any(c.require_open for _, c in changes),
                min_headroom=deepest or None,
                pinned=accounts[account_id] if accounts[account_id].known else None,
                last_recorded_at=changes[-1][0].decided_at,
            )
        )
    return tuple(merged)
