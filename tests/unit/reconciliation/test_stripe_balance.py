"""Stripe balance transactions as settlement lines: Stripe's own fixture, every type, currencies of 0 and 3 decimals,
the refusals (position and field named), the JSON file's shapes, and a stable identity of the same objects."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ledger.reconciliation.lines import LineType, SettlementFormatError
from ledger.reconciliation.stripe_balance import lines_from_balance_transactions, read_balance_transactions_file

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "oracles" / "stripe" / "fixtures3.json"
CREATED = 1_796_300_000  # 2026-12-03T12:13:20Z
AVAILABLE = 1_796_428_800  # 2026-12-05T00:00:00Z


def txn(txn_id: str, type_: str, amount: int, fee: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": AVAILABLE,
        "created": CREATED,
        "currency": "eur",
        "fee": fee,
        "net": amount - fee,
        "reporting_category": type_,
        "source": None,
        "status": "available",
        "type": type_,
        **fields,
    }


def charge(charge_id: str, intent_id: str | None, payment_id: str | None) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "payment_intent": intent_id,
        "metadata": {} if payment_id is None else {"payment_id": payment_id},
    }


def refund(refund_id: str, intent_id: str | None, refund_ref: str | None) -> dict[str, Any]:
    return {
        "id": refund_id,
        "object": "refund",
        "payment_intent": intent_id,
        "charge": "ch_1",
        "metadata": {} if refund_ref is None else {"payment_id": "pay_1", "refund_id": refund_ref},
    }


def test_stripe_s_fixture_parses() -> None:
    fixture = json.loads(FIXTURES.read_text())["resources"]["balance_transaction"]
    objects = read_balance_transactions_file(json.dumps(fixture).encode(), "fixture.json")
    source = lines_from_balance_transactions(objects, "fixture.json")
    (line,) = source.lines
    assert source.gateway == "stripe"
    assert line.line_key == fixture["id"]
    assert line.type is LineType.CAPTURE
    assert (line.currency, line.gross_minor, line.fee_minor, line.net_minor) == ("USD", 100, 0, 100)
    assert line.booked_at == datetime.fromtimestamp(fixture["created"], UTC)
    assert line.batch_reference == "available:USD:2009-02-13"
    assert line.modification_reference == fixture["source"]  # a bare source id
    assert line.gateway_reference is None
    assert line.raw == fixture


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"type": "charge"}, LineType.CAPTURE),
        ({"type": "payment"}, LineType.CAPTURE),
        ({"type": "refund", "amount": -500}, LineType.REFUND),
        ({"type": "payment_refund", "amount": -500}, LineType.REFUND),
        ({"type": "adjustment", "reporting_category": "dispute", "amount": -500}, LineType.CHARGEBACK),
        ({"type": "adjustment", "reporting_category": "dispute_reversal"}, LineType.CHARGEBACK_REVERSAL),
        ({"type": "payout", "reporting_category": "payout", "amount": -500}, LineType.PAYOUT),
    ],
)
def test_each_type_maps(fields: dict[str, Any], expected: LineType) -> None:
    obj = txn("txn_1", "charge", 500) | fields
    obj["net"] = obj["amount"] - obj["fee"]
    (line,) = lines_from_balance_transactions([obj], "api").lines
    assert line.type is expected
    assert (line.gross_minor, line.fee_minor, line.net_minor) == (obj["amount"], 0, obj["amount"])


def test_stripe_fee_is_a_fee_line() -> None:
    obj = txn("txn_fee", "stripe_fee", -1500, reporting_category="fee")
    (line,) = lines_from_balance_transactions([obj], "api").lines
    assert line.type is LineType.FEE
    assert (line.gross_minor, line.fee_minor, line.net_minor) == (0, 1500, -1500)


def test_amounts_fees_dates_and_batch() -> None:
    obj = txn("txn_c", "charge", 10_000, fee=175)
    (line,) = lines_from_balance_transactions([obj], "api").lines
    assert (line.currency, line.gross_minor, line.fee_minor, line.net_minor) == ("EUR", 10_000, 175, 9_825)
    assert line.booked_at == datetime(2026, 12, 3, 12, 13, 20, tzinfo=UTC)
    assert line.batch_reference == "available:EUR:2026-12-05"
    (paid,) = lines_from_balance_transactions([obj], "api", payout="po_1").lines
    assert paid.batch_reference == "po_1"


@pytest.mark.parametrize(("currency", "amount", "fee"), [("jpy", 5_000, 75), ("kwd", 12_345, 435)])
def test_currencies_of_zero_and_three_decimals(currency: str, amount: int, fee: int) -> None:
    obj = txn("txn_x", "charge", amount, fee=fee, currency=currency)
    (line,) = lines_from_balance_transactions([obj], "api").lines
    assert (line.currency, line.gross_minor, line.fee_minor, line.net_minor) == (
        currency.upper(),
        amount,
        fee,
        amount - fee,
    )
    assert line.batch_reference == f"available:{currency.upper()}:2026-12-05"


def test_expanded_sources_give_the_references() -> None:
    objects = [
        txn("txn_c", "charge", 5_000, fee=100, source=charge("ch_1", "pi_1", "pay_1")),
        txn("txn_r", "refund", -1_000, source=refund("re_1", "pi_1", "rf_1")),
        txn("txn_r2", "refund", -1_000, source=refund("re_2", None, None)),
        txn("txn_p", "payout", -3_000, source={"id": "po_1", "object": "payout"}),
    ]
    captured, refunded, by_charge, paid_out = lines_from_balance_transactions(objects, "api").lines
    assert (captured.gateway_reference, captured.modification_reference, captured.payment_reference) == (
        "pi_1",
        "ch_1",
        "pay_1",
    )
    assert captured.operation_reference is None
    assert (refunded.gateway_reference, refunded.modification_reference, refunded.operation_reference) == (
        "pi_1",
        "re_1",
        "rf_1",
    )
    assert (by_charge.gateway_reference, by_charge.modification_reference, by_charge.operation_reference) == (
        None,
        "re_2",
        None,
    )
    assert (paid_out.modification_reference, paid_out.gateway_reference) == ("po_1", None)
    assert [line.line_number for line in (captured, refunded, by_charge, paid_out)] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"type": "transfer"}, "type"),
        ({"type": "adjustment", "reporting_category": "other_adjustment"}, "type"),
        ({"currency": "xyz"}, "currency"),
        ({"amount": 10.5}, "amount"),
        ({"amount": "1050"}, "amount"),
        ({"fee": None}, "fee"),
        ({"net": 999}, "net"),
        ({"created": "yesterday"}, "created"),
        ({"created": 10**15}, "created"),
        ({"available_on": None}, "available_on"),
        ({"id": None}, "id"),
        ({"type": "payout", "amount": 500, "net": 500}, "amount"),
        ({"type": "stripe_fee", "amount": -500, "fee": 10, "net": -510}, "fee"),
    ],
)
def test_refusals_name_the_position_and_the_field(change: dict[str, Any], column: str) -> None:
    good = txn("txn_ok", "charge", 1_000)
    bad = txn("txn_bad", "charge", 1_000) | change
    with pytest.raises(SettlementFormatError) as refused:
        lines_from_balance_transactions([good, bad], "api")
    assert (refused.value.line, refused.value.column) == (2, column)
    assert "line 2" in str(refused.value)


def test_the_same_objects_give_the_same_identity() -> None:
    objects = [txn("txn_a", "charge", 1_000, fee=40), txn("txn_b", "refund", -200)]
    first = lines_from_balance_transactions(objects, "one")
    again = lines_from_balance_transactions(copy.deepcopy(objects)[::-1][::-1], "two")
    assert first.content_sha256 == again.content_sha256
    assert [line.line_key for line in first.lines] == [line.line_key for line in again.lines] == ["txn_a", "txn_b"]
    reordered_keys = {k: objects[0][k] for k in reversed(objects[0])}  # key order does not matter: sorted keys
    assert lines_from_balance_transactions([reordered_keys, objects[1]], "x").content_sha256 == first.content_sha256
    changed = copy.deepcopy(objects)
    changed[0]["fee"], changed[0]["net"] = 41, 959
    assert lines_from_balance_transactions(changed, "one").content_sha256 != first.content_sha256


def test_the_file_shapes() -> None:
    objects = [txn("txn_a", "charge", 1_000), txn("txn_b", "refund", -200)]
    listing = {"object": "list", "data": objects, "has_more": False, "url": "/v1/balance_transactions"}
    assert read_balance_transactions_file(json.dumps(listing).encode(), "f") == objects
    assert read_balance_transactions_file(json.dumps(objects).encode(), "f") == objects
    assert read_balance_transactions_file(json.dumps(objects[0]).encode(), "f") == [objects[0]]


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b'[\n{"id": "txn_1",\n "amount": }\n]', 3, None),
        (b"\xff\xfe", 1, None),
        (b'{"object": "charge"}', 1, "object"),
        (b'{"object": "list", "data": {}}', 1, "data"),
        (b'"txn_1"', 1, "object"),
        (b'[{"object": "balance_transaction"}, 7]', 2, "object"),
        (b'[{"object": "balance_transaction"}, {"object": "payout"}]', 2, "object"),
    ],
)
def test_bad_files_are_refused(data: bytes, line: int, column: str | None) -> None:
    with pytest.raises(SettlementFormatError) as refused:
        read_balance_transactions_file(data, "bad.json")
    assert (refused.value.line, refused.value.column) == (line, column)
