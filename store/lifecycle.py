"""The payment lifecycle, written once: every status, every move between two of them, and the sets the saga, the
start path and the checks read. PostgreSQL enforces the same moves (migration 0003 loads `TRANSITIONS` into the
`payment_transitions` table and a trigger refuses any other; a test keeps the two equal).

The pivot is the capture: a payment that may have been captured at the gateway never moves to a failed status, so
the database refuses `succeeded -> failed` even for a buggy step, and refuses `failed` for any row that records a
captured amount.
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "CAPTURE_RESOLVED",
    "CAPTURE_STANDS",
    "COMPENSATED",
    "EXECUTION_TERMINAL",
    "FAILED",
    "FINAL",
    "HOLDS_CAPTURE",
    "PAST_PIVOT",
    "PAYMENT_STATUSES",
    "REJECTABLE",
    "RELEASABLE",
    "TRANSITIONS",
    "PaymentStatus",
    "allowed",
    "awaiting_capture",
]

class PaymentStatus(enum.StrEnum):
    """Every status a payment can be in; a str, so it is what the database stores and the API shows."""

    CREATED = "created"
    VALIDATED = "validated"
    RESERVED = "reserved"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    CAPTURE_SUBMITTED = "capture_submitted"
    CAPTURE_FAILED = "capture_failed"
    COMMITTED = "committed"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    RELEASED = "released"
    VOIDED = "voided"
    REFUNDED = "refunded"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"
    REVIEW = "review"
    CANCELED = "canceled"  # a manual-capture authorization the merchant (or its expiry policy) cancelled


PAYMENT_STATUSES: Final[tuple[str, ...]] = tuple(PaymentStatus)

# The business outcomes of a payment that ended without money moving: the merchant is answered 402.
FAILED: Final = frozenset({"rejected", "failed", "refunded"})
# Where a payment's story has ended: no execution moves it again.
FINAL: Final = frozenset({"succeeded", "review", "canceled"}) | FAILED
# The saga's own "compensated" outcomes (refunded: captured, then given back in full).
COMPENSATED: Final = FAILED
# Where one execution leaves a payment when it ends: final, or parked for replay.
EXECUTION_TERMINAL: Final = FINAL | {"needs_attention"}
# The capture may have happened at the gateway: compensations never move such a payment backwards.
PAST_PIVOT: Final = frozenset({"capture_submitted", "captured", "committed", "succeeded", "review", "refunded"})
# Past the pivot with the capture standing: VoidAuthorization has nothing it may void (refunded it may: the money went
# back and the void of what is left is how the saga ends that path).
CAPTURE_STANDS: Final = PAST_PIVOT - {"refunded"}
# Every compensation that ran before RejectPayment has left nothing live (no reservation held, no open
# authorization) only in these: RejectPayment records the failure from here, and from nowhere else.
REJECTABLE: Final = frozenset({"created", "validated", "released", "voided", "needs_attention"})
# The only statuses a row that records a captured amount may be in (a CHECK constraint of the payments table).
HOLDS_CAPTURE: Final = frozenset({"captured", "committed", "succeeded", "refunded", "needs_attention"})
# Where ReleaseReservation's release of the ledger's reservation also moves the payment to `released`.
RELEASABLE: Final = frozenset({"validated", "reserved", "authorized", "voided", "capture_failed", "needs_attention"})
# The capture's outcome is known at the gateway (the async model's `capture_submitted` is not).
CAPTURE_RESOLVED: Final = frozenset({"captured", "capture_failed"})

_BEFORE_PIVOT_RECOVERY: Final = frozenset({"needs_attention"})
_FAIL: Final = frozenset({"rejected", "failed"})

# from -> the statuses it may move to. Staying in a status (a field recorded, the version bumped) is always allowed.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "created": frozenset({"validated"}) | _FAIL | _BEFORE_PIVOT_RECOVERY,
    "validated": frozenset({"reserved", "released"}) | _FAIL | _BEFORE_PIVOT_RECOVERY,
    "reserved": frozenset({"authorized", "voided", "released"}) | _BEFORE_PIVOT_RECOVERY,
    # canceled: the cancel operation of a manual-capture payment (the authorization voided, the reservation released).
    "authorized": frozenset({"capture_submitted", "captured", "capture_failed", "voided", "released", "canceled"})
    | _BEFORE_PIVOT_RECOVERY,
    "capture_submitted": frozenset({"captured", "capture_failed", "needs_attention"}),
    # canceled: a refused manual capture ends the authorization (voided at the gateway, the reservation released).
    "capture_failed": frozenset({"voided", "released", "needs_attention", "canceled"}),
    "captured": frozenset({"committed", "refunded", "needs_attention"}),
    "committed": frozenset({"succeeded", "refunded", "needs_attention"}),  # refunded: ReverseLedger + RefundCapture
    "voided": frozenset({"review", "released"}) | _FAIL | _BEFORE_PIVOT_RECOVERY,
    "released": _FAIL | _BEFORE_PIVOT_RECOVERY,
    # Parked: a replay takes the payment on from wherever its recorded facts say it stood.
    "needs_attention": frozenset(PAYMENT_STATUSES) - {"created", "needs_attention"},
    "refunded": frozenset(),
    "succeeded": frozenset(),
    "review": frozenset(),
    "canceled": frozenset(),
    "rejected": frozenset(),
    "failed": frozenset(),
}


def allowed(from_status: str, to_status: str) -> bool:
    return from_status == to_status or to_status in TRANSITIONS[from_status]


def awaiting_capture(status: str, capture_mode: str) -> bool:
    """A manual-capture payment the saga has authorized: the saga's work is done (its answer is 201), and the payment
    waits for the merchant's capture or cancel (or its expiry policy: saga.sync)."""
    return capture_mode == "manual" and status == PaymentStatus.AUTHORIZED


assert set(TRANSITIONS) == set(PAYMENT_STATUSES), "every status has its row of moves"
assert all(targets <= set(PAYMENT_STATUSES) for targets in TRANSITIONS.values())
assert all(not TRANSITIONS[s] for s in FINAL), "a final payment never moves"
assert not any(TRANSITIONS[s] & _FAIL for s in PAST_PIVOT), "past the pivot nothing moves to a failed status"
assert REJECTABLE.isdisjoint(PAST_PIVOT)
assert HOLDS_CAPTURE.isdisjoint(FAILED - {"refunded"}), "a captured amount is never answered as failed"
