"""Importing a settlement source: its lines stored once, their batches, and the settlement posted to the ledger, all
in the caller's one database transaction (a source is imported whole or not at all).

Idempotent: the same content again (by hash) changes nothing; a line imported before (by its key) from another source
is skipped when it says the same, and refuses the whole import when it says something else (a gateway restating a
line is for finance to look at, not to overwrite). Imports of one gateway are serialized by an advisory lock, so two
at once cannot both add the same line.

Posting: per batch and currency, the NEW lines' sums go to the ledger in one settlement transaction (ledger.posting.
post_settlement): a batch whose lines arrive over several imports (Stripe's balance transactions of a day) gets one
transaction per import, and the batch's clearing still nets over all of them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert

from ledger.posting import post_settlement
from ledger.reconciliation.lines import LineType, SettlementLine, SettlementSource
from ledger.reconciliation.schema import settlement_batches, settlement_imports, settlement_lines

__all__ = ["ImportResult", "SettlementConflict", "import_settlement", "resolve_references"]

_COMPARED = ("batch_reference", "type", "currency", "gross_minor", "fee_minor", "net_minor")


class SettlementConflict(ValueError):
    """A line the source holds was imported before with other content: nothing of the source is imported."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    gateway: str
    source_name: str
    import_id: int | None  # None when this content was imported before
    imported_before: bool
    line_count: int
    new_line_count: int
    batches: tuple[str, ...]
    settlement_transaction_ids: tuple[int, ...]


def _keyed(lines: tuple[SettlementLine, ...]) -> list[tuple[str, SettlementLine]]:
    """Each line with its key; a key repeated within one source (the same movement listed twice) gets '#2', '#3', ...
    so that every copy is kept and the matcher sees the duplicate, and importing the source again finds the same."""
    seen: Counter[str] = Counter()
    keyed = []
    for line in lines:
        seen[line.line_key] += 1
        n = seen[line.line_key]
        keyed.append((line.line_key if n == 1 else f"{line.line_key}#{n}", line))
    return keyed


def _conflicts(conn: Connection, gateway: str, keyed: list[tuple[str, SettlementLine]]) -> set[str]:
    """The keys imported before (and the first that differs raises SettlementConflict)."""
    keys = [k for k, _ in keyed]
    known: dict[str, Any] = {}
    for start in range(0, len(keys), 5_000):
        rows = conn.execute(
            select(settlement_lines.c.line_key, settlement_batches.c.reference.label("batch_reference"),
                   settlement_lines.c.type, settlement_lines.c.currency, settlement_lines.c.gross_minor,
                   settlement_lines.c.fee_minor, settlement_lines.c.net_minor)
            .join(settlement_batches, settlement_batches.c.id == settlement_lines.c.batch_id)
            .where(settlement_lines.c.gateway == gateway, settlement_lines.c.line_key.in_(keys[start:start + 5_000]))
        ).mappings().all()
        known.update({r["line_key"]: r for r in rows})
    for key, line in keyed:
        row = known.get(key)
        if row is None:
            continue
        mine = (line.batch_reference, str(line.type), line.currency, line.gross_minor, line.fee_minor, line.net_minor)
        theirs = tuple(row[c] for c in _COMPARED)
        if mine != theirs:
            differs = [c for c, a, b in zip(_COMPARED, mine, theirs, strict=True) if a != b]
            raise SettlementConflict(
                f"line {line.line_number} ({key}) was imported before with other {', '.join(differs)}: "
                f"{dict(zip(differs, (row[c] for c in differs), strict=True))} then, "
                f"{dict(zip(differs, (getattr(line, c) for c in differs), strict=True))} now; nothing imported")
    return set(known)


def _batch_ids(conn: Connection, gateway: str, lines: list[SettlementLine]) -> dict[str, int]:
    """Get or make each batch the lines name; its settlement date moves to the latest booking date seen."""
    latest: dict[str, date] = {}
    for line in lines:
        day = line.booked_at.date()
        latest[line.batch_reference] = max(latest.get(line.batch_reference, day), day)
    ids = {}
    for reference, day in sorted(latest.items()):
        stmt = insert(settlement_batches).values(gateway=gateway, reference=reference, settlement_date=day)
        stmt = stmt.on_conflict_do_update(
            constraint="uq_settlement_batches_gateway_reference",
            set_={"settlement_date": func.greatest(settlement_batches.c.settlement_date,
                                                   stmt.excluded.settlement_date)},
        )
        ids[reference] = int(conn.execute(stmt.returning(settlement_batches.c.id)).scalar_one())
    return ids


# Lines name our payment by its id as the gateway echoed it, or by the gateway's own reference of the payment; a
# refund by our refund id or the gateway's id of it. Filled once, when known: a line imported before the ledger knew
# (a webhook applied late) is named by a later call.
_RESOLVE_SQL = (
    """
UPDATE settlement_lines AS l SET payment_id = p.id
  FROM payments AS p
 WHERE l.payment_id IS NULL {scope} AND p.gateway = l.gateway
   AND p.id = CASE WHEN l.payment_reference ~ '^[0-9]{{1,19}}$'
                    AND l.payment_reference::numeric <= 9223372036854775807
                   THEN l.payment_reference::bigint END
""",
    """
UPDATE settlement_lines AS l SET payment_id = p.id
  FROM payments AS p
 WHERE l.payment_id IS NULL {scope} AND p.gateway = l.gateway AND l.gateway_reference IS NOT NULL
   AND p.gateway_reference = l.gateway_reference
""",
    """
UPDATE settlement_lines AS l SET operation_id = o.id, payment_id = coalesce(l.payment_id, o.payment_id)
  FROM payment_operations AS o
 WHERE l.operation_id IS NULL {scope} AND l.type = 'refund' AND o.kind = 'refund'
   AND (o.id = CASE WHEN l.operation_reference ~ '^[0-9]{{1,19}}$'
                     AND l.operation_reference::numeric <= 9223372036854775807
                    THEN l.operation_reference::bigint END
        OR (l.modification_reference IS NOT NULL AND o.gateway_reference = l.modification_reference))
   AND (l.payment_id IS NULL OR l.payment_id = o.payment_id)
""",
)


def resolve_references(conn: Connection, *, import_id: int | None = None) -> int:
    """Name the payment and refund of lines that do not name them yet (of one import, or all); how many changed."""
    scope = "AND l.import_id = :import_id" if import_id is not None else ""
    changed = 0
    for sql in _RESOLVE_SQL:
        changed += conn.execute(text(sql.format(scope=scope)), {"import_id": import_id}).rowcount
    return changed


def import_settlement(conn: Connection, source: SettlementSource) -> ImportResult:
    """Store the source's new lines, name their payments and refunds, post them; see the module docstring."""
    gateway = source.gateway
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('settlement_import:' || :g))"), {"g": gateway})
    before = conn.execute(select(settlement_imports.c.id).where(
        settlement_imports.c.gateway == gateway, settlement_imports.c.content_sha256 == source.content_sha256)).first()
    batches = tuple(sorted({line.batch_reference for line in source.lines}))
    if before is not None:
        return ImportResult(gateway, source.name, None, True, len(source.lines), 0, batches, ())
    keyed = _keyed(source.lines)
    known = _conflicts(conn, gateway, keyed)
    new = [(key, line) for key, line in keyed if key not in known]
    import_id = int(conn.execute(
        insert(settlement_imports).values(gateway=gateway, source_name=source.name,
                                          content_sha256=source.content_sha256, line_count=len(source.lines),
                                          new_line_count=len(new)).returning(settlement_imports.c.id)
    ).scalar_one())
    if not new:
        return ImportResult(gateway, source.name, import_id, False, len(source.lines), 0, batches, ())
    batch_ids = _batch_ids(conn, gateway, [line for _, line in new])
    conn.execute(insert(settlement_lines), [
        {"import_id": import_id, "batch_id": batch_ids[line.batch_reference], "gateway": gateway, "line_key": key,
         "line_number": line.line_number, "type": str(line.type), "currency": line.currency,
         "gross_minor": line.gross_minor, "fee_minor": line.fee_minor, "net_minor": line.net_minor,
         "booked_at": line.booked_at, "payment_reference": line.payment_reference,
         "gateway_reference": line.gateway_reference, "modification_reference": line.modification_reference,
         "operation_reference": line.operation_reference, "raw": dict(line.raw)}
        for key, line in new
    ])
    resolve_references(conn, import_id=import_id)
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for _, line in new:
        total = sums[(line.batch_reference, line.currency)]
        if line.type == LineType.PAYOUT:
            total[2] -= line.gross_minor
        else:
            total[0] += line.gross_minor
            total[1] += line.fee_minor
    posted = []
    for (reference, currency), (gross, fee, payout) in sorted(sums.items()):
        tx = post_settlement(conn, import_id=import_id, batch_id=batch_ids[reference], gateway=gateway,
                             currency=currency, gross_minor=gross, fee_minor=fee, payout_minor=payout,
                             description=f"{gateway} settlement {reference} from {source.name}")
        if tx is not None:
            posted.append(tx)
    return ImportResult(gateway, source.name, import_id, False, len(source.lines), len(new), batches, tuple(posted))
