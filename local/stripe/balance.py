"""Stripe's balance-transaction API on the local Stripe server, and the payouts that group its transactions.

localstripe makes balance transactions for captured charges and refunds only, with fee 0, and lists them with no
filters (``limit``/``starting_after`` only; its ``/v1/balance/history`` route fails with a 500), and none for payouts
(its Payout names a made-up ``balance_transaction``). The front serves them as Stripe does, built from localstripe's
list plus the payouts' own transactions recorded here:

- ``GET /v1/balance_transactions``: Stripe's list object, newest first, with ``created[gt|gte|lt|lte]`` (or
  ``created``), ``payout``, ``type``, ``currency``, ``source``, ``limit`` (1-100, 10), ``starting_after``,
  ``ending_before`` and ``expand[]=data.source``; any other parameter is Stripe's 400 ``parameter_unknown``;
- ``GET /v1/balance_transactions/{id}`` (``expand[]=source``);
- each transaction completed: ``fee`` per the contract terms (ledger/reconciliation/terms.py) with its
  ``fee_details``, ``net``, ``balance_type``, ``exchange_rate`` null (no conversion); a partial capture is one charge
  of the captured amount (localstripe books the whole charge, then refunds the released part); an expanded charge
  carries its PaymentIntent's metadata, as Stripe copies it;
- ``POST /v1/payouts`` (recorded by ``record_payout`` once localstripe made it): every available transaction of the
  payout's currency not yet paid out belongs to it, as Stripe's automatic payouts group them, and a ``payout``
  transaction (-amount, fee 0, source the payout) is added; ``payout=po_...`` lists them all, its own included.

The payouts live in the front's SQLite file (their own tables), so they survive a restart as the front's other state.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.money import MINOR_UNIT_EXPONENT
from ledger.reconciliation.lines import LineType
from ledger.reconciliation.terms import expected_fee_minor
from local.server_db import JsonDict, ServerDb

__all__ = ["BALANCE_TRANSACTIONS_URL", "BalanceBook", "Fetch", "PayoutStore", "Reply"]

BALANCE_TRANSACTIONS_URL = "/v1/balance_transactions"
_HISTORY_PAGE = 100  # localstripe's list is read through, page by page

Reply = tuple[int, JsonDict]  # HTTP status and Stripe's JSON body
Fetch = Callable[[str], Awaitable[Reply]]  # a GET on localstripe through the front (objects completed)

_FEE_LINE = {"charge": LineType.CAPTURE, "refund": LineType.REFUND}
_CREATED_OPS = ("gt", "gte", "lt", "lte")
_FILTERS = ("payout", "type", "currency", "source")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payouts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payout_id TEXT NOT NULL UNIQUE,
    txn_id TEXT NOT NULL UNIQUE,
    upstream_count INTEGER NOT NULL,  -- localstripe's transactions when it was made: its place among them
    txn TEXT NOT NULL                 -- the payout's own balance transaction (JSON)
);
CREATE TABLE IF NOT EXISTS payout_members (
    txn_id TEXT PRIMARY KEY,          -- a localstripe balance transaction, paid out once
    payout_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payout_members_by_payout ON payout_members (payout_id);
"""


@dataclass(frozen=True)
class PayoutTxn:
    seq: int
    payout_id: str
    upstream_count: int
    txn: JsonDict


class PayoutStore(ServerDb):
    """The payouts the front recorded, in the front's SQLite file (``:memory:``: for the life of the process)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)

    def reset(self) -> None:
        with self._write() as db:
            db.execute("DELETE FROM payouts")
            db.execute("DELETE FROM payout_members")

    def record(self, payout_id: str, txn: JsonDict, upstream_count: int, members: Sequence[str]) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO payouts (payout_id, txn_id, upstream_count, txn) VALUES (?, ?, ?, ?)",
                (payout_id, txn["id"], upstream_count, json.dumps(txn)),
            )
            db.executemany(
                "INSERT OR IGNORE INTO payout_members (txn_id, payout_id) VALUES (?, ?)",
                [(member, payout_id) for member in members],
            )

    def payouts(self) -> list[PayoutTxn]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM payouts ORDER BY seq").fetchall()
        return [PayoutTxn(int(r["seq"]), r["payout_id"], int(r["upstream_count"]), json.loads(r["txn"])) for r in rows]

    def txn_of(self, payout_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT txn_id FROM payouts WHERE payout_id = ?", (payout_id,)).fetchone()
        return None if row is None else str(row["txn_id"])

    def members(self) -> dict[str, str]:
        """Every paid-out localstripe transaction -> its payout."""
        with self._lock:
            rows = self._db.execute("SELECT txn_id, payout_id FROM payout_members").fetchall()
        return {str(r["txn_id"]): str(r["payout_id"]) for r in rows}


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Reply:
    error: JsonDict = {"type": "invalid_request_error", "message": message}
    if param is not None:
        error["param"] = param
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    return status, {"error": error}


@dataclass(frozen=True)
class _Query:
    created: tuple[tuple[str, int], ...]  # (op, unix seconds); op "eq" for a bare created=
    filters: tuple[tuple[str, str], ...]  # payout, type, currency, source
    limit: int
    starting_after: str | None
    ending_before: str | None
    expand_source: bool


@dataclass(frozen=True)
class _Page:
    data: list[JsonDict]
    has_more: bool


def _parse_int(text: str) -> int | None:
    stripped = text.strip()
    body = stripped[1:] if stripped.startswith("-") else stripped
    return int(stripped) if body.isdigit() and body.isascii() and len(body) <= 18 else None


def _is_expand(name: str) -> bool:
    return name == "expand[]" or (name.startswith("expand[") and name.endswith("]") and name[7:-1].isdigit())


def _parse_query(pairs: Sequence[tuple[str, str]], *, listing: bool) -> _Query | Reply:
    """Stripe's parameters of the list (``listing``) or of one retrieve; the first bad one is refused by name."""
    created: list[tuple[str, int]] = []
    filters: list[tuple[str, str]] = []
    limit, starting_after, ending_before, expand = 10, None, None, False
    expandable = "data.source" if listing else "source"
    for name, value in pairs:
        if _is_expand(name):
            if value != expandable:
                return _error(400, f"This property cannot be expanded ({value}).", param="expand")
            expand = True
        elif not listing:
            return _error(400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
        elif name == "created" or (name.startswith("created[") and name[8:-1] in _CREATED_OPS and name[-1] == "]"):
            seconds = _parse_int(value)
            if seconds is None:
                return _error(400, f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
            created.append(("eq" if name == "created" else name[8:-1], seconds))
        elif name in _FILTERS:
            filters.append((name, value))
        elif name == "limit":
            parsed = _parse_int(value)
            if parsed is None:
                return _error(400, f"Invalid integer: {value}", param=name, code="parameter_invalid_integer")
            if not 1 <= parsed <= 100:
                return _error(400, "Invalid limit: must be between 1 and 100", param=name)
            limit = parsed
        elif name == "starting_after":
            starting_after = value
        elif name == "ending_before":
            ending_before = value
        else:
            return _error(400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown")
    return _Query(tuple(created), tuple(filters), limit, starting_after, ending_before, expand)


def _created_ok(created: int, conditions: Sequence[tuple[str, int]]) -> bool:
    checks: dict[str, Callable[[int], bool]] = {
        "eq": lambda bound: created == bound,
        "gt": lambda bound: created > bound,
        "gte": lambda bound: created >= bound,
        "lt": lambda bound: created < bound,
        "lte": lambda bound: created <= bound,
    }
    return all(checks[op](bound) for op, bound in conditions)


def _fee(line_type: LineType | None, amount: int, currency: str) -> int:
    code = currency.upper()
    if line_type is None or code not in MINOR_UNIT_EXPONENT:
        return 0
    return expected_fee_minor("stripe", line_type, amount, code)


def _source_id(txn: JsonDict) -> str:
    source = txn.get("source")
    return str(source.get("id")) if isinstance(source, dict) else str(source)


class BalanceBook:
    """The balance transactions as Stripe lists them: localstripe's, completed, and the payouts'."""

    def __init__(self, store: PayoutStore) -> None:
        self.store = store

    def reset(self) -> None:
        self.store.reset()

    def close(self) -> None:
        self.store.close()

    def complete_payout(self, payout: JsonDict) -> None:
        """A payout's ``balance_transaction``: its own transaction's id, not localstripe's made-up one."""
        txn_id = self.store.txn_of(str(payout.get("id")))
        if txn_id is not None:
            payout["balance_transaction"] = txn_id

    # --- the routes' work -------------------------------------------------------------------------------------------

    async def list_transactions(self, pairs: Sequence[tuple[str, str]], fetch: Fetch) -> Reply:
        query = _parse_query(pairs, listing=True)
        if isinstance(query, tuple):
            return query
        payout = dict(query.filters).get("payout")
        if payout is not None and self.store.txn_of(payout) is None:
            return _error(404, f"No such payout: '{payout}'", param="payout", code="resource_missing")
        everything = await self._all(fetch)
        if isinstance(everything, tuple):
            return everything
        members = self.store.members() | {str(p.txn["id"]): p.payout_id for p in self.store.payouts()}
        sources: dict[str, JsonDict] = {}
        chosen = [txn for txn in everything if self._wanted(txn, query, members)]
        released = await self._released(chosen, fetch, sources)
        if isinstance(released, tuple):
            return released
        page = self._page([txn for txn in chosen if txn.get("source") not in released], query)
        if isinstance(page, tuple):
            return page
        completed = [await self._completed(txn, fetch, sources, expand=query.expand_source) for txn in page.data]
        failed = next((item for item in completed if isinstance(item, tuple)), None)
        if failed is not None:
            return failed
        body = {"object": "list", "data": completed, "has_more": page.has_more, "url": BALANCE_TRANSACTIONS_URL}
        return 200, body

    async def retrieve(self, txn_id: str, pairs: Sequence[tuple[str, str]], fetch: Fetch) -> Reply:
        query = _parse_query(pairs, listing=False)
        if isinstance(query, tuple):
            return query
        everything = await self._all(fetch)
        if isinstance(everything, tuple):
            return everything
        found = next((txn for txn in everything if txn.get("id") == txn_id), None)
        sources: dict[str, JsonDict] = {}
        released = await self._released([] if found is None else [found], fetch, sources)
        if isinstance(released, tuple):
            return released
        if found is None or found.get("source") in released:
            return _error(404, f"No such balance transaction: '{txn_id}'", param="id", code="resource_missing")
        completed = await self._completed(found, fetch, sources, expand=query.expand_source)
        return completed if isinstance(completed, tuple) else (200, completed)

    async def record_payout(self, payout: JsonDict, fetch: Fetch) -> Reply | None:
        """A payout localstripe just made: its transactions and its own (the payout answered names it)."""
        upstream = await self._upstream(fetch)
        if isinstance(upstream, tuple):
            return upstream
        currency = str(payout.get("currency"))
        paid = self.store.members()
        members = [
            str(txn["id"])
            for txn in upstream
            if txn.get("currency") == currency and txn.get("status") == "available" and str(txn["id"]) not in paid
        ]
        amount = int(payout.get("amount") or 0)
        created = int(payout.get("created") or 0)
        txn: JsonDict = {
            "id": f"txn_{secrets.token_hex(12)}",
            "object": "balance_transaction",
            "amount": -amount,
            "available_on": created,
            "balance_type": "payments",
            "created": created,
            "currency": currency,
            "description": str(payout.get("description") or "STRIPE PAYOUT"),
            "exchange_rate": None,
            "fee": 0,
            "fee_details": [],
            "net": -amount,
            "reporting_category": "payout",
            "source": str(payout.get("id")),
            "status": "available",
            "type": "payout",
        }
        self.store.record(str(payout.get("id")), txn, len(upstream), members)
        payout["balance_transaction"] = txn["id"]
        return None

    # --- building the list ------------------------------------------------------------------------------------------

    async def _upstream(self, fetch: Fetch) -> list[JsonDict] | Reply:
        """localstripe's transactions in the order it made them (it lists by ``created`` descending, and within one
        second in the order it made them)."""
        listed: list[JsonDict] = []
        after: str | None = None
        while True:
            path = f"{BALANCE_TRANSACTIONS_URL}?limit={_HISTORY_PAGE}" + (f"&starting_after={after}" if after else "")
            status, body = await fetch(path)
            if status != 200:
                return status, body
            data = [item for item in body.get("data") or [] if isinstance(item, dict)]
            listed.extend(data)
            if not body.get("has_more") or not data:
                break
            after = str(data[-1]["id"])
        listed.sort(key=lambda txn: int(txn.get("created") or 0))  # stable: the order made within a second stays
        return listed

    async def _all(self, fetch: Fetch) -> list[JsonDict] | Reply:
        """Every transaction, newest first. A payout's comes after the transactions localstripe had made when it
        was recorded and before the next one."""
        upstream = await self._upstream(fetch)
        if isinstance(upstream, tuple):
            return upstream
        keyed: list[tuple[tuple[int, int, int], JsonDict]] = [
            ((int(txn.get("created") or 0), 2 * index + 1, 0), txn) for index, txn in enumerate(upstream)
        ]
        keyed += [((int(p.txn["created"]), 2 * p.upstream_count, p.seq), p.txn) for p in self.store.payouts()]
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        return [txn for _, txn in keyed]

    @staticmethod
    def _wanted(txn: JsonDict, query: _Query, members: dict[str, str]) -> bool:
        if not _created_ok(int(txn.get("created") or 0), query.created):
            return False
        for name, value in query.filters:
            actual = (
                members.get(str(txn.get("id")))
                if name == "payout"
                else (_source_id(txn) if name == "source" else txn.get(name))
            )
            if actual != value:
                return False
        return True

    @staticmethod
    def _page(chosen: list[JsonDict], query: _Query) -> _Page | Reply:
        ids = [str(txn.get("id")) for txn in chosen]
        if query.starting_after is not None:
            if query.starting_after not in ids:
                message = f"No such balance transaction: '{query.starting_after}'"
                return _error(400, message, param="starting_after", code="resource_missing")
            rest = chosen[ids.index(query.starting_after) + 1 :]
            return _Page(rest[: query.limit], len(rest) > query.limit)
        if query.ending_before is not None:
            if query.ending_before not in ids:
                message = f"No such balance transaction: '{query.ending_before}'"
                return _error(400, message, param="ending_before", code="resource_missing")
            before = chosen[: ids.index(query.ending_before)]
            return _Page(before[-query.limit :], len(before) > query.limit)
        return _Page(chosen[: query.limit], len(chosen) > query.limit)

    async def _completed(
        self, txn: JsonDict, fetch: Fetch, sources: dict[str, JsonDict], *, expand: bool
    ) -> JsonDict | Reply:
        """What localstripe leaves out, and the source object when expanded."""
        done = dict(txn)
        source: JsonDict | None = None
        if done.get("type") != "payout" or expand:  # a charge's captured amount is the charge's
            fetched = await self._source(_source_id(done), fetch, sources)
            if isinstance(fetched, tuple):
                return fetched
            source = fetched
        if done.get("type") == "charge" and source is not None and source.get("captured"):
            done["amount"] = int(source.get("amount_captured") or done["amount"])  # a partial capture books that
        amount, currency = int(done["amount"]), str(done["currency"])
        fee = _fee(_FEE_LINE.get(str(done.get("type"))), amount, currency)
        done["fee"] = fee
        done["fee_details"] = (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": currency,
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        )
        done["net"] = amount - fee
        done["balance_type"] = "payments"
        done["exchange_rate"] = None  # no conversion: Stripe says null, localstripe 1.0
        done.setdefault("reporting_category", done.get("type"))
        if expand and source is not None:
            done["source"] = source
        return done

    async def _released(self, txns: Sequence[JsonDict], fetch: Fetch, sources: dict[str, JsonDict]) -> set[str] | Reply:
        """The refunds localstripe makes to release what a partial capture left (Stripe books none): made by the
        capture itself (no PaymentIntent, no metadata), the charge's first refund, of exactly the uncaptured part."""
        released: set[str] = set()
        for txn in txns:
            if txn.get("type") != "refund":
                continue
            refund = await self._source(_source_id(txn), fetch, sources)
            if isinstance(refund, tuple):
                return refund
            if refund.get("payment_intent") is not None or refund.get("metadata"):
                continue
            charge = await self._source(str(refund.get("charge")), fetch, sources)
            if isinstance(charge, tuple):
                return charge
            amount, captured = int(charge.get("amount") or 0), int(charge.get("amount_captured") or 0)
            refunds = charge.get("refunds")
            data: Any = refunds.get("data") if isinstance(refunds, dict) else None
            first = data[-1] if isinstance(data, list) and data else None  # the front lists them newest first
            if (
                charge.get("captured")
                and captured < amount
                and isinstance(first, dict)
                and first.get("id") == refund.get("id")
                and refund.get("amount") == amount - captured
            ):
                released.add(str(refund.get("id")))
        return released

    @staticmethod
    async def _source(source_id: str, fetch: Fetch, sources: dict[str, JsonDict]) -> JsonDict | Reply:
        if source_id in sources:
            return sources[source_id]
        collection = {"ch_": "charges", "re_": "refunds", "po_": "payouts"}.get(source_id[:3])
        if collection is None:
            return _error(500, f"a balance transaction of an unknown source {source_id!r}", code=None)
        status, body = await fetch(f"/v1/{collection}/{source_id}")
        if status != 200:
            return status, body
        intent_id = body.get("payment_intent")
        if collection == "charges" and not body.get("metadata") and isinstance(intent_id, str):
            # Stripe copies the PaymentIntent's metadata onto the charge it creates; localstripe does not.
            status, intent = await fetch(f"/v1/payment_intents/{intent_id}")
            if status != 200:
                return status, intent
            body = {**body, "metadata": dict(intent.get("metadata") or {})}
        sources[source_id] = body
        return body
