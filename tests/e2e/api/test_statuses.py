"""POST /v1/payments and GET /v1/payments/{id} through real HTTP on the live stack: every status code the API
document promises, with the body it promises."""

from __future__ import annotations

import re

import httpx
import pytest

from local.testing.live import LiveStack
from tests.e2e.api.support import body, error_of, get, merchant_payments, no_traceback, post

ISO_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def test_201_created_and_succeeded(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    sent = body(amount_minor=2500, currency="USD", metadata={"cart": "42"})
    response = post(live, api_key, json_body=sent)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert "idempotent-replayed" not in response.headers
    got = response.json()
    assert isinstance(got["id"], str) and re.fullmatch(r"[1-9][0-9]{0,18}", got["id"])
    assert got["status"] == "succeeded"
    assert got["amount_minor"] == 2500 and got["captured_amount_minor"] == 2500 and got["currency"] == "USD"
    assert got["capture_mode"] == "automatic" and got["gateway"] == "sandbox" and got["gateway_reference"]
    assert got["customer_reference"] == sent["customer_reference"]
    assert got["order_reference"] == sent["order_reference"]
    assert got["metadata"] == {"cart": "42"}
    assert got["failure_code"] is None and got["failure_message"] is None
    assert ISO_TIMESTAMP.match(got["created_at"]) and ISO_TIMESTAMP.match(got["updated_at"])
    assert [row["id"] for row in merchant_payments(live, merchant_id)] == [int(got["id"])]

    shown = get(live, api_key, got["id"])
    # GET also shows its disputes and its operations (none yet)
    assert shown.status_code == 200 and shown.json() == {**got, "disputes": [], "operations": [], "refunded_minor": 0}


def test_partial_capture_captures_less_than_authorized(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = post(live, api_key, json_body=body(amount_minor=3000, capture_amount_minor=1000))
    assert response.status_code == 201, response.text
    assert response.json()["amount_minor"] == 3000 and response.json()["captured_amount_minor"] == 1000


def test_202_when_held_for_review(live: LiveStack) -> None:
    # steps/fraud.py: an amount at least 10x the customer's average over 3+ earlier payments scores 50 (review).
    _, api_key = live.new_merchant()
    customer = "cus_review"
    for _ in range(3):
        assert post(live, api_key, json_body=body(amount_minor=100, customer_reference=customer)).status_code == 201
    response = post(live, api_key, json_body=body(amount_minor=1000, customer_reference=customer))
    assert response.status_code == 202, response.text
    got = response.json()
    assert got["status"] == "review" and got["captured_amount_minor"] in (None, 0)
    assert get(live, api_key, got["id"]).json()["status"] == "review"


@pytest.mark.parametrize(("token", "error"), [
    ("tok_decline", "PaymentDeclined"),
    ("tok_insufficient_funds", "InsufficientFunds"),
])
def test_402_declined_by_the_gateway(live: LiveStack, token: str, error: str) -> None:
    _, api_key = live.new_merchant()
    response = post(live, api_key, json_body=body(payment_method_token=token))
    assert response.status_code == 402, response.text
    got = response.json()
    assert set(got) == {"error", "payment"}
    assert got["error"]["type"] == error and got["error"]["message"]
    assert got["payment"]["status"] in {"failed", "rejected", "voided", "released"}
    assert got["payment"]["captured_amount_minor"] in (None, 0)


def test_402_currency_the_merchant_does_not_accept(live: LiveStack) -> None:
    _, api_key = live.new_merchant(currencies=("EUR",))
    response = post(live, api_key, json_body=body(currency="GBP"))
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "CurrencyNotSupported"
    assert "GBP" in response.json()["error"]["message"]


def test_402_amount_above_the_merchant_limit(live: LiveStack) -> None:
    _, api_key = live.new_merchant(max_amount_minor=5000)
    assert post(live, api_key, json_body=body(amount_minor=5000)).status_code == 201
    response = post(live, api_key, json_body=body(amount_minor=5001))
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "AmountAboveLimit"
    assert response.json()["payment"]["amount_minor"] == 5001


@pytest.mark.parametrize(("key", "error"), [
    (None, "IdempotencyKeyMissing"),
    ("", "IdempotencyKeyMalformed"),
    ("k" * 256, "IdempotencyKeyMalformed"),
    ("tab\there", "IdempotencyKeyMalformed"),
    ("caf\u00e9", "IdempotencyKeyMalformed"),
])
def test_400_idempotency_key_missing_or_malformed(live: LiveStack, key: str | None, error: str) -> None:
    merchant_id, api_key = live.new_merchant()
    hdrs = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if key is not None:
        hdrs["Idempotency-Key"] = key
    raw_headers = [(name.encode(), value.encode("latin-1")) for name, value in hdrs.items()]
    response = httpx.post(f"{live.api_url}/v1/payments", content=httpx.Request("POST", "/", json=body()).content,
                          headers=raw_headers, timeout=30)
    assert response.status_code == 400, response.text
    assert error_of(response) == {**error_of(response), "type": error, "field": "Idempotency-Key"}
    assert merchant_payments(live, merchant_id) == []


def test_idempotency_key_of_255_printable_characters_is_accepted(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = post(live, api_key, key="~" + "K " * 126 + "!!")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("content", "error", "field"), [
    (b"", "BodyMissing", "body"),
    (b"{not json", "BodyMalformed", "body"),
    (b"[1, 2]", "BodyMalformed", "body"),
    (b'"a string"', "BodyMalformed", "body"),
    (b"\xff\xfe", "BodyMalformed", "body"),
])
def test_400_body_not_a_json_object(live: LiveStack, content: bytes, error: str, field: str) -> None:
    merchant_id, api_key = live.new_merchant()
    response = post(live, api_key, content=content)
    no_traceback(response)
    assert response.status_code == 400, response.text
    assert error_of(response)["type"] == error and error_of(response)["field"] == field
    assert merchant_payments(live, merchant_id) == []


@pytest.mark.parametrize(("overrides", "field"), [
    ({"amount_minor": 19.99}, "amount_minor"),
    ({"amount_minor": 2000.0}, "amount_minor"),
    ({"amount_minor": "1999"}, "amount_minor"),
    ({"amount_minor": 0}, "amount_minor"),
    ({"amount_minor": -5}, "amount_minor"),
    ({"amount_minor": True}, "amount_minor"),
    ({"amount_minor": 100_000_000_001}, "amount_minor"),
    ({"currency": "eur"}, "currency"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "XXQ"}, "currency"),
    ({"surprise": 1}, "surprise"),
    ({"payment_method_token": ""}, "payment_method_token"),
    ({"order_reference": "o" * 129}, "order_reference"),
    ({"capture_mode": "later"}, "capture_mode"),
    ({"capture_amount_minor": 2000}, "capture_amount_minor"),
    ({"metadata": {"k": 1}}, "metadata.k"),
    ({"metadata": {f"k{i}": "v" for i in range(21)}}, "metadata"),
    ({"metadata": {"": "v"}}, "metadata"),
    ({"metadata": {"k" * 41: "v"}}, "metadata." + "k" * 41),
])
def test_400_invalid_field_is_named(live: LiveStack, overrides: dict[str, object], field: str) -> None:
    merchant_id, api_key = live.new_merchant()
    response = post(live, api_key, json_body=body(**overrides))
    assert response.status_code == 400, response.text
    detail = error_of(response)
    assert detail["type"] == "BodyInvalid" and detail["field"] == field and field in detail["message"]
    assert merchant_payments(live, merchant_id) == []


@pytest.mark.parametrize(("content", "field"), [
    (b'"customer_reference": "a\\u0000b"', "customer_reference"),
    (b'"order_reference": "\\ud800"', "order_reference"),
    (b'"metadata": {"note": "x\\udfffy"}', "metadata.note"),
    (b'"metadata": {"\\u0000": "v"}', "metadata.\\x00"),
])
def test_400_text_no_database_can_store(live: LiveStack, content: bytes, field: str) -> None:
    # Valid JSON escapes, but PostgreSQL text holds no NUL and UTF-8 no unpaired surrogate: 400, never 5xx.
    merchant_id, api_key = live.new_merchant()
    sent = body()
    name = content.split(b'"')[1].decode()
    sent.pop(name, None)
    raw = httpx.Request("POST", "/", json=sent).content[:-1] + b", " + content + b"}"
    response = post(live, api_key, content=raw)
    no_traceback(response)
    assert response.status_code == 400, response.text
    assert error_of(response)["type"] == "BodyInvalid" and error_of(response)["field"] == field
    assert merchant_payments(live, merchant_id) == []


def test_400_missing_field_is_named(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    sent = body()
    del sent["currency"]
    response = post(live, api_key, json_body=sent)
    assert response.status_code == 400 and error_of(response)["field"] == "currency", response.text


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-a-key", "Basic dXNlcjpwYXNz", "not-a-key"])
def test_401_without_a_valid_key(live: LiveStack, authorization: str | None) -> None:
    live.new_merchant()
    hdrs = {"Idempotency-Key": "k1"} | ({"Authorization": authorization} if authorization is not None else {})
    response = httpx.post(f"{live.api_url}/v1/payments", json=body(), headers=hdrs, timeout=30)
    assert response.status_code == 401, response.text
    assert error_of(response)["type"] == "Unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"
    shown = httpx.get(f"{live.api_url}/v1/payments/1", headers=hdrs, timeout=30)
    assert shown.status_code == 401, shown.text


def test_401_comes_before_body_validation(live: LiveStack) -> None:
    response = post(live, "wrong", content=b"{not json")
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("size_bytes", [16_385, 2_000_000])
def test_413_body_too_large(live: LiveStack, size_bytes: int) -> None:
    merchant_id, api_key = live.new_merchant()
    padding = "x" * (size_bytes - len(b'{"metadata":{"pad":""}}'))
    response = post(live, api_key, content=('{"metadata":{"pad":"' + padding + '"}}').encode())
    assert response.status_code == 413, response.text
    assert error_of(response)["type"] == "PayloadTooLarge" and error_of(response)["message"]
    assert merchant_payments(live, merchant_id) == []


def test_body_of_exactly_the_limit_is_not_too_large(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    sent = body(metadata={"note": "n"})
    base = len(httpx.Request("POST", "/", json=sent).content)
    response = post(live, api_key, content=httpx.Request("POST", "/", json=sent).content
                    + b" " * (16_384 - base))
    assert response.status_code == 201, response.text


def test_get_own_payment_200_other_merchants_404_malformed_400(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    _, other_key = live.new_merchant()
    created = post(live, api_key)
    assert created.status_code == 201, created.text
    payment_id = created.json()["id"]

    own = get(live, api_key, payment_id)
    assert own.status_code == 200 and own.json()["id"] == payment_id and own.json()["status"] == "succeeded"

    foreign = get(live, other_key, payment_id)
    assert foreign.status_code == 404 and error_of(foreign)["type"] == "PaymentNotFound"
    # Indistinguishable from an id that does not exist at all: nothing about the other merchant's payment leaks.
    unknown_id = str(int(payment_id) + 1)
    unknown = get(live, other_key, unknown_id)
    assert unknown.status_code == 404
    assert foreign.content.replace(payment_id.encode(), unknown_id.encode()) == unknown.content

    for malformed in ["abc", "-1", "1.5", "9" * 20, str(2**63)]:
        response = get(live, api_key, malformed)
        assert response.status_code == 400, (malformed, response.text)
        assert error_of(response)["field"] == "payment_id"


def test_unknown_route_is_404_json(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = httpx.get(f"{live.api_url}/v2/nothing", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    assert response.status_code == 404 and error_of(response)["type"] == "NotFound"


@pytest.mark.parametrize("path", ["/v1/payments/a%0Ab", "/v1/payments/%00", "/v1/payments/1/extra", "/v1/payments/"])
def test_odd_paths_get_the_apis_json_errors(live: LiveStack, path: str) -> None:
    _, api_key = live.new_merchant()
    response = httpx.get(f"{live.api_url}{path}", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    assert response.status_code in (400, 404), response.text
    assert error_of(response)["type"] in {"NotFound", "PaymentIdMalformed", "PaymentNotFound"}


@pytest.mark.parametrize("content", [
    b"[" * 5000 + b"]" * 5000,
    b'{"metadata": ' + b'{"a": ' * 900 + b'"v"' + b"}" * 901,
    b'{"x": ' + b"[" * 990 + b"]" * 990 + b"}",
])
def test_400_body_nested_too_deeply(live: LiveStack, content: bytes) -> None:
    _, api_key = live.new_merchant()
    response = post(live, api_key, content=content)
    no_traceback(response)
    assert response.status_code == 400, response.text
    assert error_of(response)["type"] in {"BodyMalformed", "BodyInvalid"} and error_of(response)["field"] == "body"
