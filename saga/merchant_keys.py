"""Merchant API keys: shown once when made, stored only as their sha256."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection
from ulid import ULID

from core.gateways import GATEWAY_NAMES
from core.money import MAX_AMOUNT_MINOR, is_currency
from store.merchants import Merchant, find_by_key_hash, insert_merchant, rotate_key

KEY_PREFIX = "psk_"
SHOWN_PREFIX_CHARS = 12


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(api_key: str) -> bytes:
    return hashlib.sha256(api_key.encode("utf-8")).digest()


def create_merchant(
    conn: Connection, *, name: str, currencies: list[str], gateway: str, max_amount_minor: int = 1_000_000,
    webhook_url: str | None = None,
) -> tuple[str, str]:
    """(merchant id, API key). The key is returned once and never stored in the clear. ``gateway`` is where the
    merchant's payments go (sandbox, stripe or adyen). A bad argument raises ValueError naming it (the CLI and the
    admin function show the message as it is)."""
    if not name.strip():
        raise ValueError("name must not be empty")
    if not currencies:
        raise ValueError("currencies must name at least one ISO 4217 code")
    bad = [code for code in currencies if not is_currency(code)]
    if bad:
        raise ValueError(f"currencies: {', '.join(bad)} is not a supported ISO 4217 code")
    if not 0 < max_amount_minor <= MAX_AMOUNT_MINOR:
        raise ValueError(f"max_amount_minor must be between 1 and {MAX_AMOUNT_MINOR}")
    if gateway not in GATEWAY_NAMES:
        raise ValueError(f"gateway must be one of {', '.join(GATEWAY_NAMES)} (got {gateway!r})")
    merchant_id = f"mer_{ULID()}"
    api_key = new_key()
    insert_merchant(conn, merchant_id=merchant_id, name=name, api_key_sha256=key_hash(api_key),
                    api_key_prefix=api_key[:SHOWN_PREFIX_CHARS], max_amount_minor=max_amount_minor,
                    currencies=currencies, gateway=gateway, webhook_url=webhook_url)
    return merchant_id, api_key


def rotate(conn: Connection, *, merchant_id: str) -> str | None:
    """A new key for the merchant (the old one stops working at once); None when no such merchant."""
    api_key = new_key()
    result = rotate_key(conn, merchant_id=merchant_id, api_key_sha256=key_hash(api_key),
                        api_key_prefix=api_key[:SHOWN_PREFIX_CHARS])
    return api_key if result.applied else None


def authenticate(conn: Connection, api_key: str) -> Merchant | None:
    return find_by_key_hash(conn, api_key_sha256=key_hash(api_key))
