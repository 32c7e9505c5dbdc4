"""Stripe's balance transactions on the local Stripe server (a real process), read through the official SDK:
payments made by the StripeGateway adapter, fetched with since/until, fees per the contract terms, sources expanded
to the PaymentIntent and our ids, payouts grouping what they pay out (and kept across a restart), Stripe's errors
and pagination."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import stripe
from stripe.params import BalanceTransactionListParamsCreated

from ledger.reconciliation.lines import LineType
from ledger.reconciliation.stripe_balance import fetch_balance_transactions, lines_from_balance_transactions
from ledger.reconciliation.terms import expected_fee_minor
from local.testing.stripe_server import stripe_server_process
from steps.gateway.stripe import StripeGateway

API_KEY = "sk_test_paysaga_local"


@pytest.fixture(scope="module")
def stripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with stripe_server_process(tmp_path_factory.mktemp("stripe-balance")) as url:
        yield url


@pytest.fixture(autouse=True)
def clean(stripe_url: str) -> None:
    """Payouts take every transaction not yet paid out: each test starts from an empty account."""
    httpx.post(f"{stripe_url}/_reset", timeout=5.0).raise_for_status()


@pytest.fixture
def client(stripe_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(API_KEY, base_addresses={"api": stripe_url}, max_network_retries=0)


@pytest.fixture
def gateway(stripe_url: str) -> Iterator[StripeGateway]:
    with StripeGateway(api_key=API_KEY, api_base=stripe_url, timeout_ms=5_000) as adapter:
        yield adapter


@dataclass(frozen=True)
class Paid:
    payment_id: str
    intent_id: str
    captured: int


def pay(gateway: StripeGateway, amount: int, captured: int | None = None) -> Paid:
    payment_id = f"pay_{uuid.uuid4().hex[:16]}"
    authorized = gateway.authorize(
        payment_id=payment_id, amount_minor=amount, currency="EUR", card_token="pm_card_visa"
    )
    intent_id = authorized.gateway_reference
    take = amount if captured is None else captured
    gateway.capture(payment_id=payment_id, gateway_reference=intent_id, amount_minor=take, currency="EUR")
    return Paid(payment_id, intent_id, take)


def stripe_fee(amount: int) -> int:
    return expected_fee_minor("stripe", LineType.CAPTURE, amount, "EUR")


def window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(seconds=5), now + timedelta(seconds=5)


def test_fetched_transactions_carry_fees_net_and_their_sources(
    client: stripe.StripeClient, gateway: StripeGateway
) -> None:
    since, until = window()
    full = pay(gateway, 12_345)
    partial = pay(gateway, 5_000, captured=3_000)
    refund_id = str(uuid.uuid4().int)[:18]  # our refund ids are Snowflake ids: decimal
    refunded = gateway.refund(
        payment_id=full.payment_id,
        gateway_reference=full.intent_id,
        amount_minor=1_000,
        currency="EUR",
        refund_id=refund_id,
    )

    objects = fetch_balance_transactions(client, since=since, until=until)

    assert [obj["type"] for obj in objects] == ["refund", "charge", "charge"]  # newest first
    for obj in objects:
        assert isinstance(obj, dict) and obj["object"] == "balance_transaction"
        assert obj["net"] == obj["amount"] - obj["fee"]
        assert obj["balance_type"] == "payments"
        assert obj["reporting_category"] == obj["type"]
    refund_txn, partial_txn, full_txn = objects
    assert (full_txn["amount"], full_txn["fee"]) == (12_345, stripe_fee(12_345))
    assert full_txn["fee_details"] == [
        {
            "amount": stripe_fee(12_345),
            "application": None,
            "currency": "eur",
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    # A partial capture books the captured amount only (no refund of the released part).
    assert (partial_txn["amount"], partial_txn["fee"]) == (3_000, stripe_fee(3_000))
    assert (refund_txn["amount"], refund_txn["fee"], refund_txn["fee_details"]) == (-1_000, 0, [])
    assert full_txn["source"]["object"] == "charge" and full_txn["source"]["payment_intent"] == full.intent_id

    lines = lines_from_balance_transactions(objects, "stripe balance transactions").lines
    refund_line, partial_line, full_line = lines
    assert (full_line.type, full_line.gateway_reference, full_line.payment_reference) == (
        LineType.CAPTURE,
        full.intent_id,
        full.payment_id,
    )
    assert full_line.modification_reference is not None and full_line.modification_reference.startswith("ch_")
    assert (full_line.gross_minor, full_line.fee_minor, full_line.net_minor) == (
        12_345,
        stripe_fee(12_345),
        12_345 - stripe_fee(12_345),
    )
    assert (partial_line.gateway_reference, partial_line.gross_minor) == (partial.intent_id, 3_000)
    assert (refund_line.type, refund_line.gateway_reference, refund_line.operation_reference) == (
        LineType.REFUND,
        full.intent_id,
        refund_id,
    )
    assert refund_line.modification_reference == refunded.operation_reference
    assert refund_line.gross_minor == -1_000
    today = datetime.now(UTC).date().isoformat()
    assert {line.batch_reference for line in lines} <= {
        f"available:EUR:{today}",
        "available:EUR:" + (datetime.now(UTC) - timedelta(days=1)).date().isoformat(),
    }

    assert fetch_balance_transactions(client, since=since - timedelta(hours=1), until=since) == []
    assert fetch_balance_transactions(client, since=until) == []
    one = client.v1.balance_transactions.retrieve(str(full_txn["id"]), params={"expand": ["source"]}).to_dict()
    assert one == full_txn


def payout_of(client: stripe.StripeClient, amount: int) -> dict[str, Any]:
    return client.v1.payouts.create(params={"amount": amount, "currency": "eur"}).to_dict()


def test_a_payout_groups_what_it_pays_out(client: stripe.StripeClient, gateway: StripeGateway) -> None:
    since, _ = window()
    first, second = pay(gateway, 10_000), pay(gateway, 2_000)
    first_net = 10_000 - stripe_fee(10_000) + 2_000 - stripe_fee(2_000)
    payout = payout_of(client, first_net)
    later = pay(gateway, 4_000)
    next_payout = payout_of(client, 4_000 - stripe_fee(4_000))

    objects = fetch_balance_transactions(client, since=since, payout=payout["id"])

    assert [obj["type"] for obj in objects] == ["payout", "charge", "charge"]
    payout_txn = objects[0]
    assert payout_txn["id"] == payout["balance_transaction"]
    assert client.v1.payouts.retrieve(payout["id"]).balance_transaction == payout_txn["id"]
    assert (payout_txn["amount"], payout_txn["fee"], payout_txn["net"]) == (-first_net, 0, -first_net)
    assert payout_txn["reporting_category"] == "payout"
    assert payout_txn["source"]["id"] == payout["id"]  # expanded: the payout object
    assert {obj["source"]["payment_intent"] for obj in objects[1:]} == {first.intent_id, second.intent_id}
    assert sum(obj["net"] for obj in objects) == 0  # the payout took exactly what its transactions added

    lines = lines_from_balance_transactions(objects, f"stripe payout {payout['id']}", payout=payout["id"]).lines
    assert {line.batch_reference for line in lines} == {payout["id"]}
    assert (lines[0].type, lines[0].gross_minor, lines[0].modification_reference) == (
        LineType.PAYOUT,
        -first_net,
        payout["id"],
    )

    following = fetch_balance_transactions(client, since=since, payout=next_payout["id"])
    assert [(obj["type"], obj["amount"]) for obj in following] == [
        ("payout", -(4_000 - stripe_fee(4_000))),
        ("charge", 4_000),
    ]
    assert following[1]["source"]["payment_intent"] == later.intent_id
    everything = fetch_balance_transactions(client, since=since)
    assert [obj["id"] for obj in everything] == [obj["id"] for obj in following + objects]


def test_stripe_s_errors(client: stripe.StripeClient, stripe_url: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.balance_transactions.list(params=cast(Any, {"reconciled": "true"}))  # not one of Stripe's
    assert unknown.value.param == "reconciled"
    assert unknown.value.http_status == 400
    assert unknown.value.code == "parameter_unknown"
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        client.v1.balance_transactions.list(params={"limit": 101})
    assert too_many.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as unexpandable:
        client.v1.balance_transactions.list(params={"expand": ["data.customer"]})
    assert unexpandable.value.param == "expand"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.balance_transactions.retrieve("txn_nope")
    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    with pytest.raises(stripe.InvalidRequestError) as no_payout:
        client.v1.balance_transactions.list(params={"payout": "po_nope"})
    assert no_payout.value.param == "payout"
    unauthorized = httpx.get(f"{stripe_url}/v1/balance_transactions", timeout=5.0)
    assert unauthorized.status_code == 401


def test_pages_of_two(client: stripe.StripeClient, gateway: StripeGateway) -> None:
    since, until = window()
    intents = [pay(gateway, 1_000 + index).intent_id for index in range(5)]
    created: BalanceTransactionListParamsCreated = {"gte": int(since.timestamp()), "lt": int(until.timestamp()) + 1}

    first = client.v1.balance_transactions.list(params={"limit": 2, "created": created})
    assert len(first.data) == 2 and first.has_more
    paged = [txn.to_dict() for txn in first.auto_paging_iter()]
    assert [txn["amount"] for txn in paged] == [1_004, 1_003, 1_002, 1_001, 1_000]  # newest first, each once

    second = client.v1.balance_transactions.list(params={"limit": 2, "starting_after": first.data[-1].id})
    assert [txn.amount for txn in second.data] == [1_002, 1_001] and second.has_more
    back = client.v1.balance_transactions.list(params={"limit": 2, "ending_before": second.data[0].id})
    assert [txn.id for txn in back.data] == [txn.id for txn in first.data] and not back.has_more
    last = client.v1.balance_transactions.list(params={"limit": 2, "starting_after": second.data[-1].id})
    assert [txn.amount for txn in last.data] == [1_000] and not last.has_more

    fetched = fetch_balance_transactions(client, since=since, until=until)
    assert [txn["id"] for txn in fetched] == [txn["id"] for txn in paged]
    assert [txn["source"]["payment_intent"] for txn in fetched] == intents[::-1]
    assert client.v1.balance_transactions.list(params={"type": "refund"}).data == []


def test_payouts_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "stripe"
    with stripe_server_process(state) as url:
        with StripeGateway(api_key=API_KEY, api_base=url, timeout_ms=5_000) as adapter:
            paid = pay(adapter, 7_000)
        client = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        payout = payout_of(client, 7_000 - stripe_fee(7_000))
        before = fetch_balance_transactions(client, since=datetime.now(UTC) - timedelta(minutes=1), payout=payout["id"])
    with stripe_server_process(state) as url:
        client = stripe.StripeClient(API_KEY, base_addresses={"api": url}, max_network_retries=0)
        after = fetch_balance_transactions(client, since=datetime.now(UTC) - timedelta(minutes=1), payout=payout["id"])
        assert client.v1.payouts.retrieve(payout["id"]).balance_transaction == payout["balance_transaction"]
    assert after == before
    assert [obj["type"] for obj in after] == ["payout", "charge"]
    assert after[1]["source"]["payment_intent"] == paid.intent_id
