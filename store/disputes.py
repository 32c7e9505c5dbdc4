"""Disputes (chargebacks) of captured payments, as the gateways report them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import disputes


@dataclass(frozen=True, slots=True)
class Dispute:
    gateway: str
    reference: str
    payment_id: int
    amount_minor: int
    currency: str
    status: str
    reason: str | None
    opened_at: datetime
    closed_at: datetime | None


def open_dispute(conn: Connection, *, gateway: str, reference: str, payment_id: int, amount_minor: int,
                 currency: str, reason: str | None) -> WriteResult:
    row = conn.execute(
        insert(disputes)
        .values(gateway=gateway, reference=reference, payment_id=payment_id, amount_minor=amount_minor,
                currency=currency, reason=reason)
        .on_conflict_do_nothing(index_elements=[disputes.c.gateway, disputes.c.reference])
        .returning(disputes.c.reference)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def close_dispute(conn: Connection, *, gateway: str, reference: str, status: str) -> WriteResult:
    """Decide an open dispute (won or lost); ALREADY_APPLIED if it was decided before, NOT_FOUND if never opened."""
    if status not in ("won", "lost"):
        raise ValueError(f"a dispute closes as won or lost (got {status!r})")
    row = conn.execute(
        update(disputes)
        .where(disputes.c.gateway == gateway, disputes.c.reference == reference, disputes.c.status == "open")
        .values(status=status, closed_at=func.now())
        .returning(disputes.c.reference)
    ).first()
    if row is not None:
        return WriteResult(True, Reason.APPLIED)
    exists = conn.execute(select(disputes.c.reference).where(disputes.c.gateway == gateway,
                                                             disputes.c.reference == reference)).first()
    return WriteResult(False, Reason.ALREADY_APPLIED if exists else Reason.NOT_FOUND)


def dispute_by_reference(conn: Connection, *, gateway: str, reference: str) -> Dispute | None:
    row = conn.execute(select(disputes).where(disputes.c.gateway == gateway, disputes.c.reference == reference)
                       ).mappings().first()
    return None if row is None else Dispute(**dict(row))


def disputes_of_payment(conn: Connection, *, payment_id: int) -> list[Dispute]:
    rows = conn.execute(select(disputes).where(disputes.c.payment_id == payment_id)
                        .order_by(disputes.c.opened_at)).mappings()
    return [Dispute(**dict(row)) for row in rows]
