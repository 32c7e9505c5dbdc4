"""The execution lease: one saga execution per payment at a time (DESIGN 3).

The start path and replay take the lease before they start an execution and give its token to the execution; every
step's write carries the token (`payments.lease_token = :token`), so once a newer execution took the payment over, a
stale execution's late write matches no row. Expiry is judged by the database's clock alone, so a client whose clock
jumps cannot shorten or stretch a lease. Migration 0003's trigger refuses a new token while an unexpired lease is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

__all__ = ["Lease", "LeaseHeld", "holder_of", "release_lease", "take_lease"]


@dataclass(frozen=True, slots=True)
class Lease:
    payment_id: int
    token: int
    holder: str


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """Another execution holds the payment: who, and until when (the database's clock)."""

    payment_id: int
    holder: str
    expires_at: datetime


_TAKE = text(
    "UPDATE payments SET lease_token = lease_token + 1, lease_holder = :holder,"
    "       lease_expires_at = clock_timestamp() + make_interval(secs => :lease_ms / 1000.0)"
    " WHERE id = :id AND (lease_holder IS NULL OR lease_expires_at <= clock_timestamp())"
    " RETURNING lease_token"
)
_HOLDER = text("SELECT lease_holder, lease_expires_at FROM payments WHERE id = :id")
_RELEASE = text(
    "UPDATE payments SET lease_holder = NULL, lease_expires_at = NULL"
    " WHERE id = :id AND lease_token = :token AND lease_holder IS NOT NULL RETURNING id"
)


def take_lease(conn: Connection, *, payment_id: int, holder: str, lease_ms: int) -> Lease | LeaseHeld:
    """The lease with a new fencing token, or who holds it now. The payment must exist."""
    assert lease_ms > 0, lease_ms
    while True:
        token = conn.execute(_TAKE, {"id": payment_id, "holder": holder, "lease_ms": lease_ms}).scalar()
        if token is not None:
            return Lease(payment_id, int(token), holder)
        held = holder_of(conn, payment_id=payment_id)
        if held is not None:
            return held
        # Released between the two statements: free now, so the next UPDATE takes it (or meets a new holder).


def holder_of(conn: Connection, *, payment_id: int) -> LeaseHeld | None:
    row = conn.execute(_HOLDER, {"id": payment_id}).first()
    if row is None:
        raise LookupError(f"payment {payment_id} does not exist")
    if row.lease_holder is None:
        return None
    return LeaseHeld(payment_id, str(row.lease_holder), row.lease_expires_at)


def release_lease(conn: Connection, *, lease: Lease) -> bool:
    """Give the lease back, if it is still ours (a newer token means it was taken over after it expired)."""
    return conn.execute(_RELEASE, {"id": lease.payment_id, "token": lease.token}).first() is not None
