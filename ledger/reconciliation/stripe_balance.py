"""Stripe's settlement data: balance transactions, fetched through the official SDK or read from a JSON file, turned
into `SettlementLine`s.

One balance transaction is one line. Stripe's signs already are the balance's point of view (a charge > 0, a refund,
a dispute or a payout < 0), and `net = amount - fee` is Stripe's own rule, checked rather than trusted. The payout a
transaction belongs to is its batch: given when the listing was made per payout (``payout=po_...``), otherwise the
day its funds become available, per currency.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import stripe
from stripe.params import BalanceTransactionListParams, BalanceTransactionListParamsCreated

from core.money import MINOR_UNIT_EXPONENT
from ledger.reconciliation.lines import LineType, SettlementFormatError, SettlementLine, SettlementSource

__all__ = ["fetch_balance_transactions", "lines_from_balance_transactions", "read_balance_transactions_file"]

_PAGE_LIMIT = 100  # Stripe's largest page

# Stripe's `type` -> the line's type; `adjustment` is decided by its reporting_category (a dispute's or another's).
_TYPES: Mapping[str, LineType] = {
    "charge": LineType.CAPTURE,
    "payment": LineType.CAPTURE,
    "refund": LineType.REFUND,
    "payment_refund": LineType.REFUND,
    "stripe_fee": LineType.FEE,
    "payout": LineType.PAYOUT,
}
_ADJUSTMENTS: Mapping[str, LineType] = {
    "dispute": LineType.CHARGEBACK,
    "dispute_reversal": LineType.CHARGEBACK_REVERSAL,
}


def _canonical_sha256(objects: Sequence[Mapping[str, Any]]) -> str:
    canonical = json.dumps(list(objects), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _int_field(obj: Mapping[str, Any], field: str, name: str, line: int) -> int:
    value = obj.get(field)
    if not isinstance(value, int) or isinstance(value, bool):  # bool is an int to Python, never to Stripe
        raise SettlementFormatError(name, line, field, f"not an integer amount: {value!r}")
    return value


def _str_field(obj: Mapping[str, Any], field: str, name: str, line: int) -> str:
    value = obj.get(field)
    if not isinstance(value, str) or not value:
        raise SettlementFormatError(name, line, field, f"missing or not a string: {value!r}")
    return value


def _line_type(obj: Mapping[str, Any], name: str, line: int) -> LineType:
    kind = obj.get("type")
    found = _TYPES.get(kind) if isinstance(kind, str) else None
    if kind == "adjustment":
        found = _ADJUSTMENTS.get(str(obj.get("reporting_category")))
    if found is None:
        category = obj.get("reporting_category")
        raise SettlementFormatError(name, line, "type", f"not a settlement line: {kind!r} ({category!r})")
    return found


def _utc(obj: Mapping[str, Any], field: str, name: str, line: int) -> datetime:
    seconds = _int_field(obj, field, name, line)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise SettlementFormatError(name, line, field, f"not a time in unix seconds: {seconds}") from None


def _metadata(obj: Mapping[str, Any], key: str) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get(key) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _references(source: object) -> dict[str, str | None]:
    """What the transaction's source tells: the PaymentIntent, this movement's id, our ids from its metadata."""
    if isinstance(source, str):
        return {"modification_reference": _text(source)}
    if not isinstance(source, Mapping):
        return {}
    kind, source_id = source.get("object"), _text(source.get("id"))
    if kind == "charge":
        return {
            "gateway_reference": _text(source.get("payment_intent")),
            "modification_reference": source_id,
            "payment_reference": _metadata(source, "payment_id"),
        }
    if kind == "refund":
        return {
            # A refund made by charge may name no PaymentIntent: then the payment is not known from it.
            "gateway_reference": _text(source.get("payment_intent")),
            "modification_reference": source_id,
            "operation_reference": _metadata(source, "refund_id"),
        }
    return {"modification_reference": source_id}


def _line(obj: Mapping[str, Any], name: str, line: int, payout: str | None) -> SettlementLine:
    if not isinstance(obj, Mapping):
        raise SettlementFormatError(name, line, None, f"not a balance transaction object: {type(obj).__name__}")
    line_type = _line_type(obj, name, line)
    txn_id = _str_field(obj, "id", name, line)
    currency = _str_field(obj, "currency", name, line).upper()
    if currency not in MINOR_UNIT_EXPONENT:
        raise SettlementFormatError(name, line, "currency", f"unknown currency {obj.get('currency')!r}")
    amount = _int_field(obj, "amount", name, line)
    fee = _int_field(obj, "fee", name, line)
    net = _int_field(obj, "net", name, line)
    if net != amount - fee:
        raise SettlementFormatError(name, line, "net", f"net {net} != amount {amount} - fee {fee}")
    booked_at = _utc(obj, "created", name, line)
    if line_type is LineType.FEE:
        # Stripe books its own fee as a negative amount with fee 0; the line calls it what it is: a fee.
        if fee != 0:
            raise SettlementFormatError(name, line, "fee", f"a stripe_fee with a fee of its own: {fee}")
        amount, fee = 0, -amount
    if line_type is LineType.PAYOUT and amount > 0:
        raise SettlementFormatError(name, line, "amount", f"a payout takes money out: amount {amount} > 0")
    if payout is not None:
        batch = payout
    else:
        batch = f"available:{currency}:{_utc(obj, 'available_on', name, line).date().isoformat()}"
    return SettlementLine(
        line_number=line,
        line_key=txn_id,
        batch_reference=batch,
        type=line_type,
        currency=currency,
        gross_minor=amount,
        fee_minor=fee,
        net_minor=net,
        booked_at=booked_at,
        raw=dict(obj),
        **_references(obj.get("source")),
    )


def lines_from_balance_transactions(
    objects: Sequence[Mapping[str, Any]], name: str, *, payout: str | None = None
) -> SettlementSource:
    """Stripe balance transactions (plain dicts, as the API answers them) as one source; the first bad one refuses
    them all, naming its position (1-based) and the field. ``payout``: the listing was that payout's."""
    lines = tuple(_line(obj, name, index + 1, payout) for index, obj in enumerate(objects))
    return SettlementSource(gateway="stripe", name=name, content_sha256=_canonical_sha256(objects), lines=lines)


def read_balance_transactions_file(data: bytes, name: str) -> list[dict[str, Any]]:
    """A JSON file of balance transactions: a list object (``{"object": "list", "data": [...]}``), a bare array, or
    one balance transaction."""
    try:
        parsed: Any = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as bad:
        raise SettlementFormatError(name, 1, None, f"not UTF-8: {bad.reason}") from None
    except json.JSONDecodeError as bad:
        raise SettlementFormatError(name, bad.lineno, None, f"not JSON: {bad.msg} (column {bad.colno})") from None
    if isinstance(parsed, dict) and parsed.get("object") == "list":
        items = parsed.get("data")
        if not isinstance(items, list):
            raise SettlementFormatError(name, 1, "data", "a list object without a data array")
    elif isinstance(parsed, dict) and parsed.get("object") == "balance_transaction":
        items = [parsed]
    elif isinstance(parsed, list):
        items = parsed
    else:
        raise SettlementFormatError(
            name, 1, "object", "expected a list object, an array or one balance_transaction object"
        )
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("object", "balance_transaction") != "balance_transaction":
            raise SettlementFormatError(name, index + 1, "object", "not a balance_transaction object")
    return items


def fetch_balance_transactions(
    client: stripe.StripeClient, *, since: datetime, until: datetime | None = None, payout: str | None = None
) -> list[dict[str, Any]]:
    """The balance transactions created in [since, until) (or of one payout), their sources expanded, newest first
    as Stripe lists them, every page read; plain dicts."""
    created: BalanceTransactionListParamsCreated = {"gte": _unix_seconds(since)}
    if until is not None:
        created["lt"] = _unix_seconds(until)
    params: BalanceTransactionListParams = {"created": created, "expand": ["data.source"], "limit": _PAGE_LIMIT}
    if payout is not None:
        params["payout"] = payout
    listed = client.v1.balance_transactions.list(params=params)
    return [txn.to_dict() for txn in listed.auto_paging_iter()]


def _unix_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("since/until must be timezone-aware")
    return math.ceil(moment.timestamp())  # Stripe's `created` is whole seconds: >= since and < until stay exact
