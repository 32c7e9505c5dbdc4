"""What a ledger operation returns: whether it applied and, if not, why."""

from __future__ import annotations

from dataclasses import dataclass

from store.results import Reason


@dataclass(frozen=True, slots=True)
class LedgerResult:
    """Outcome of reserve/post/void/reverse. `transaction_id` names the ledger transaction that holds the effect
    (the new one, or the earlier one when the operation had already been applied)."""

    applied: bool
    reason: Reason
    payment_id: int
    kind: str
    transaction_id: int | None = None
    amount_minor: int | None = None
    fee_minor: int = 0

    @property
    def in_effect(self) -> bool:
        """True when the ledger now holds this operation's effect: applied now or by an earlier run."""
        return self.applied or self.reason is Reason.ALREADY_APPLIED
