"""What is decidable from a request alone, before the ledger is read. Pure.

A request refused here is refused for its content: it is not recorded, so it consumes no
posting_id (Stripe's and TigerBeetle's rule), and the client can fix it and send it again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from posting.domain.model import MAX_FIGURE, Leg, PostingRequest, Side
from posting.domain.outcomes import PostingRejected, Reason
from posting.domain.requests import (
    EXPIRY_PREFIX,
    CaptureRequest,
    ChainRequest,
    ExpiryRequest,
    Request,
    ReversalRequest,
    VoidRequest,
    expiry_posting_id,
)


def check_balanced(legs: Sequence[Leg] | PostingRequest) -> None:
    """Per currency, the debits must equal the credits."""
    if not isinstance(legs, Sequence):
        legs = legs.legs
    net: dict[str, int] = defaultdict(int)
    for leg in legs:
        net[leg.currency] += leg.amount if leg.side == Side.DEBIT else -leg.amount
    off = {currency: amount for currency, amount in sorted(net.items()) if amount}
    if off:
        summary = ", ".join(
            f"{currency} debits exceed credits by {amount}"
            if amount > 0
            else f"{currency} credits exceed debits by {-amount}"
            for currency, amount in off.items()
        )
        raise PostingRejected(Reason.UNBALANCED, summary)


def check_content(request: Request) -> None:
    """Everything decidable from the request alone, beyond its schema: its id is its own (the
    sweeper's namespace and the id it acts on are not), its legs balance, and no account moves by
    more than a figure may hold."""
    if isinstance(request, ChainRequest):
        _check_chain(request)
        return
    _check_id(request)
    legs = getattr(request, "legs", None)
    if legs:
        check_balanced(legs)
        _check_balancing(request, legs)
        moves: dict[str, int] = defaultdict(int)
        for leg in legs:
            moves[leg.account_id] += leg.amount if leg.side == Side.DEBIT else -leg.amount
        beyond = sorted(account_id for account_id, amount in moves.items() if abs(amount) > MAX_FIGURE)
        if beyond:
            raise PostingRejected(
                Reason.BALANCE_OUT_OF_RANGE,
                f"it moves {', '.join(beyond)} by more than 2^53 - 1, the most a balance may hold",
            )


def _check_chain(chain: ChainRequest) -> None:
    """Every member is a request of its own (checked as one), under an id of its own."""
    _check_id(chain)
    seen = {chain.posting_id}
    for index, member in enumerate(chain.requests):
        if member.posting_id in seen:
            raise PostingRejected(
                Reason.INVALID_REQUEST,
                f"requests[{index}].posting_id: {member.posting_id} is the chain's or another member's",
            )
        seen.add(member.posting_id)
        try:
            check_content(member)
        except PostingRejected as refused:
            raise PostingRejected(
                refused.reason, f"requests[{index}] ({member.posting_id}): {refused.detail}"
            ) from None


def _check_balancing(request: Request, legs: Sequence[Leg]) -> None:
    balancing = [n for n, leg in enumerate(legs) if leg.balancing]
    if not balancing:
        return
    if not isinstance(request, PostingRequest) or len(legs) != 2 or len(balancing) != 1:
        raise PostingRejected(
            Reason.INVALID_REQUEST,
            f"legs[{balancing[0]}].balancing: a balancing leg is one of the two legs of a posting",
        )


def _check_id(request: Request) -> None:
    posting_id = request.posting_id
    reference = referenced_id(request)
    if reference is not None and reference == posting_id:
        field = "reverses" if isinstance(request, ReversalRequest) else "hold_id"
        raise PostingRejected(
            Reason.INVALID_REQUEST, f"posting_id: must not be {field}: a request cannot act on itself"
        )
    if posting_id.lower().startswith(EXPIRY_PREFIX):
        own = isinstance(request, ExpiryRequest) and posting_id == expiry_posting_id(request.hold_id)
        if not own:
            raise PostingRejected(
                Reason.INVALID_REQUEST,
                f"posting_id: ids that start with {EXPIRY_PREFIX!r} are the expiry sweeper's: only the expiry of "
                "the hold it names may use one",
            )


def referenced_id(request: Request) -> str | None:
    """The posting_id whose decision this request acts on: the hold, or the reversed original."""
    if isinstance(request, CaptureRequest | VoidRequest | ExpiryRequest):
        return request.hold_id
    if isinstance(request, ReversalRequest):
        return request.reverses
    return None
