"""The payment lifecycle and the execution lease, enforced by the database.

- `payment_transitions` holds every allowed status move (a frozen copy of `store.lifecycle.TRANSITIONS`, which a test
  keeps equal to this table); a trigger refuses any other move, so `succeeded -> failed` is impossible even for a
  buggy step, and a CHECK refuses a failed-like status on a row that records a captured amount.
- The lease: one execution per payment at a time. `lease_token` is a fencing token that only goes up; taking it anew
  while an unexpired lease is held is refused; the steps' writes carry the token they were given, so a stale
  execution's late write matches no row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 09:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FAIL = ("rejected", "failed")
_PARK = ("needs_attention",)
_ALL = ("created", "validated", "reserved", "authorized", "captured", "capture_submitted", "capture_failed",
        "committed", "succeeded", "rejected", "released", "voided", "refunded", "failed", "needs_attention", "review")
# Frozen at this revision; a later change of the lifecycle rewrites the table in a migration of its own.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "created": ("validated", *_FAIL, *_PARK),
    "validated": ("reserved", "released", *_FAIL, *_PARK),
    "reserved": ("authorized", "voided", "released", *_PARK),
    "authorized": ("capture_submitted", "captured", "capture_failed", "voided", "released", *_PARK),
    "capture_submitted": ("captured", "capture_failed", "needs_attention"),
    "capture_failed": ("voided", "released", "needs_attention"),
    "captured": ("committed", "refunded", "needs_attention"),
    "committed": ("succeeded", "refunded", "needs_attention"),
    "voided": ("review", "released", *_FAIL, *_PARK),
    "released": (*_FAIL, *_PARK),
    "needs_attention": tuple(s for s in _ALL if s not in ("created", "needs_attention")),
}
HOLDS_CAPTURE = ("captured", "committed", "succeeded", "refunded", "needs_attention")

GUARD = """
CREATE FUNCTION payments_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM payment_transitions WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'payment %: % -> % is not a move of the payment lifecycle', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.lease_token < OLD.lease_token THEN
        RAISE EXCEPTION 'payment %: the lease token goes only up (% -> %)', OLD.id, OLD.lease_token, NEW.lease_token
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.lease_token > OLD.lease_token AND OLD.lease_holder IS NOT NULL
       AND OLD.lease_expires_at > clock_timestamp() THEN
        RAISE EXCEPTION 'payment % is leased to % until %', OLD.id, OLD.lease_holder, OLD.lease_expires_at
            USING ERRCODE = 'lock_not_available';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER payments_guard BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION payments_guard();
"""


def upgrade() -> None:
    op.add_column("payments", sa.Column("lease_token", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.add_column("payments", sa.Column("lease_holder", sa.Text(), nullable=True))
    op.add_column("payments", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint("lease_token_non_negative", "payments", "lease_token >= 0")
    op.create_check_constraint("lease_held_until", "payments", "(lease_holder IS NULL) = (lease_expires_at IS NULL)")
    holds = ", ".join(f"'{s}'" for s in HOLDS_CAPTURE)
    op.create_check_constraint("captured_never_failed", "payments",
                               f"captured_amount_minor IS NULL OR status IN ({holds})")
    table = op.create_table(
        "payment_transitions",
        sa.Column("from_status", sa.Text(), nullable=False),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("from_status", "to_status", name=op.f("pk_payment_transitions")),
    )
    op.bulk_insert(table, [{"from_status": a, "to_status": b} for a, targets in TRANSITIONS.items() for b in targets])
    op.execute(GUARD)


def downgrade() -> None:
    op.execute("DROP TRIGGER payments_guard ON payments")
    op.execute("DROP FUNCTION payments_guard()")
    op.drop_table("payment_transitions")
    for name in ("captured_never_failed", "lease_held_until", "lease_token_non_negative"):
        op.drop_constraint(op.f(f"ck_payments_{name}"), "payments", type_="check")
    for column in ("lease_expires_at", "lease_holder", "lease_token"):
        op.drop_column("payments", column)
