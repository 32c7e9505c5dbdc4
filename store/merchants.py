"""Merchant records. API keys are stored only as sha256 digests, with a short prefix to recognise them in lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import merchants

MAX_LIST = 10_000


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    api_key_sha256: bytes
    api_key_prefix: str
    max_amount_minor: int
    currencies: list[str]
    webhook_url: str | None
    gateway: str
    expiring_authorization_action: str  # "capture" | "cancel": store.schema.EXPIRY_ACTIONS
    created_at: datetime
    key_rotated_at: datetime | None


def insert_merchant(
    conn: Connection,
    *,
    merchant_id: str,
    name: str,
    api_key_sha256: bytes,
    api_key_prefix: str,
    max_amount_minor: int,
    currencies: Sequence[str],
    gateway: str,
    webhook_url: str | None = None,
) -> WriteResult:
    row = conn.execute(
        insert(merchants)
        .values(
            id=merchant_id,
            name=name,
            api_key_sha256=api_key_sha256,
            api_key_prefix=api_key_prefix,
            max_amount_minor=max_amount_minor,
            currencies=list(currencies),
            webhook_url=webhook_url,
            gateway=gateway,
        )
        .on_conflict_do_nothing()
        .returning(merchants.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def _one(conn: Connection, where: ColumnElement[bool]) -> Merchant | None:
    row = conn.execute(select(merchants).where(where)).mappings().first()
    return None if row is None else Merchant(**dict(row))


def get_merchant(conn: Connection, *, merchant_id: str) -> Merchant | None:
    return _one(conn, merchants.c.id == merchant_id)


def find_by_key_hash(conn: Connection, *, api_key_sha256: bytes) -> Merchant | None:
    return _one(conn, merchants.c.api_key_sha256 == api_key_sha256)


def list_merchants(conn: Connection, *, limit: int = 1000) -> list[Merchant]:
    query = select(merchants).order_by(merchants.c.id).limit(min(max(limit, 1), MAX_LIST))
    return [Merchant(**dict(row)) for row in conn.execute(query).mappings()]


def rotate_key(conn: Connection, *, merchant_id: str, api_key_sha256: bytes, api_key_prefix: str) -> WriteResult:
    """Replace the merchant's key digest; the old key stops working in the same commit."""
    row = conn.execute(
        update(merchants)
        .where(merchants.c.id == merchant_id)
        .values(api_key_sha256=api_key_sha256, api_key_prefix=api_key_prefix, key_rotated_at=func.now())
        .returning(merchants.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.NOT_FOUND)
