"""The sandbox gateway's settlement feed over HTTP (a real server process): payments captured and refunded through
its API come back in the day's feed, which `fetch_sandbox_feed` fetches and `parse_sandbox_feed` reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.reconciliation.lines import LineType, SettlementLine
from ledger.reconciliation.sandbox_feed import parse_sandbox_feed
from ledger.reconciliation.terms import expected_fee_minor
from local.sandbox.settlement import SandboxFeedError, fetch_sandbox_feed
from local.stack.process import free_port
from tests.integration.steps.gateway.conftest import running_sandbox


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("sandbox-settlement")
    with running_sandbox(directory) as server:
        yield server.url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=5.0) as http:
        http.post("/_sandbox/reset").raise_for_status()
        yield http


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def captured(client: httpx.Client, payment_id: str, amount: int, currency: str, token: str = "tok_approve") -> str:
    """Authorize and capture `amount`; the sandbox's reference of the payment."""
    reference = str(post(client, "/v1/payments", {"payment_id": payment_id, "amount_minor": amount,
                                                  "currency": currency, "card_token": token})["gateway_reference"])
    post(client, f"/v1/payments/{payment_id}/capture",
         {"gateway_reference": reference, "amount_minor": amount, "currency": currency})
    return reference


def today() -> date:
    return datetime.now(UTC).date()


def test_the_day_s_feed_has_every_capture_and_refund_with_fees_and_one_payout_per_currency(
    client: httpx.Client, base_url: str
) -> None:
    first_day = today()
    ref_1 = captured(client, "pay_feed_1", 12_345, "EUR")
    ref_2 = captured(client, "pay_feed_2", 2_000, "EUR")
    ref_3 = captured(client, "pay_feed_3", 5_000, "USD")
    ref_4 = captured(client, "pay_feed_4", 800, "EUR", token="tok_async_capture")
    client.post("/_sandbox/settle", params={"payment_id": "pay_feed_4"}).raise_for_status()
    ref_5 = captured(client, "pay_feed_5", 1_000, "EUR", token="tok_refund_declined")
    refund = post(client, "/v1/payments/pay_feed_1/refund", {"gateway_reference": ref_1, "amount_minor": 2_345,
                                                             "currency": "EUR", "refund_id": "4242"})
    declined = post(client, "/v1/payments/pay_feed_5/refund", {"gateway_reference": ref_5, "amount_minor": 1_000,
                                                               "currency": "EUR", "refund_id": "4243"})
    assert declined["status"] == "refund_failed"
    post(client, "/v1/payments", {"payment_id": "pay_feed_6", "amount_minor": 700, "currency": "EUR",
                                  "card_token": "tok_approve"})  # authorized, never captured: not settled
    days = sorted({first_day, today()})  # the test may straddle midnight UTC
    lines: list[SettlementLine] = []
    for day in days:
        data = fetch_sandbox_feed(base_url, day)
        assert data == fetch_sandbox_feed(base_url, day, timeout_s=5)  # the same feed when read again
        source = parse_sandbox_feed(data, f"sandbox-{day}.csv")
        assert data.decode().endswith(f"\n# end lines={len(source.lines)}\n")
        lines += source.lines

    movements = {(line.type, line.payment_reference): line for line in lines if line.type is not LineType.PAYOUT}
    assert set(movements) == {
        (LineType.CAPTURE, "pay_feed_1"), (LineType.CAPTURE, "pay_feed_2"), (LineType.CAPTURE, "pay_feed_3"),
        (LineType.CAPTURE, "pay_feed_4"), (LineType.CAPTURE, "pay_feed_5"), (LineType.REFUND, "pay_feed_1"),
    }
    for (kind, _), line in movements.items():
        assert line.fee_minor == expected_fee_minor("sandbox", kind, line.gross_minor, line.currency)
        assert line.net_minor == line.gross_minor - line.fee_minor
    capture_1 = movements[(LineType.CAPTURE, "pay_feed_1")]
    assert (capture_1.gross_minor, capture_1.fee_minor, capture_1.currency) == (12_345, 168, "EUR")
    assert capture_1.gateway_reference == ref_1 and capture_1.line_key.endswith(f":capture:{ref_1}")
    assert [movements[(LineType.CAPTURE, p)].gateway_reference for p in ("pay_feed_2", "pay_feed_3", "pay_feed_4",
                                                                         "pay_feed_5")] == [ref_2, ref_3, ref_4, ref_5]
    refunded = movements[(LineType.REFUND, "pay_feed_1")]
    assert (refunded.gross_minor, refunded.fee_minor, refunded.net_minor) == (-2_345, 0, -2_345)
    assert (refunded.operation_reference, refunded.modification_reference, refunded.gateway_reference) == (
        "4242", refund["operation_reference"], ref_1)

    payouts = [line for line in lines if line.type is LineType.PAYOUT]
    assert {line.batch_reference for line in payouts} == {line.batch_reference for line in lines}
    for payout in payouts:
        batch = [line for line in lines if line.batch_reference == payout.batch_reference]
        assert payout.currency in payout.batch_reference and payout.fee_minor == 0
        assert payout.gross_minor == payout.net_minor == -sum(line.net_minor for line in batch if line is not payout)
    if len(days) == 1:
        assert {line.currency: line.gross_minor for line in payouts} == {
            "EUR": -(12_345 - 168 + 2_000 - 44 + 800 - 29 + 1_000 - 32 - 2_345),
            "USD": -(5_000 - 80),
        }


def test_a_quiet_day_is_a_header_and_its_trailer(client: httpx.Client, base_url: str) -> None:
    data = fetch_sandbox_feed(base_url, date(2001, 1, 1))
    assert data.decode().splitlines()[1:] == ["# end lines=0"]
    assert parse_sandbox_feed(data, "quiet").lines == ()
    response = client.get("/_sandbox/settlements/2001-01-01")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"


@pytest.mark.parametrize("bad", ["2026-13-01", "20261203", "2026-12-3", "yesterday", "2026-02-30"])
def test_a_malformed_date_is_a_400_naming_the_parameter(client: httpx.Client, bad: str) -> None:
    response = client.get(f"/_sandbox/settlements/{bad}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "date" in error["message"] and bad in error["message"]


def test_fetching_from_a_wrong_place_is_a_clear_error(base_url: str) -> None:
    with pytest.raises(SandboxFeedError, match="HTTP 404"):
        fetch_sandbox_feed(f"{base_url}/nowhere", today())
    with pytest.raises(SandboxFeedError, match="/_sandbox/settlements/"):
        fetch_sandbox_feed(f"http://127.0.0.1:{free_port()}", today(), timeout_s=1)
