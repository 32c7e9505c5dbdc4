"""The local Adyen server as a real process, over raw HTTP: Adyen's spec refuses what the real Adyen would refuse, every
answer is one the spec allows, idempotency keys replay or conflict, the call log, and webhooks: signed, valid against
Webhooks-v1.json, retried until the receiver accepts them."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from Adyen.util import is_valid_hmac_notification

from local.adyen.spec import CheckoutSpec, WebhooksSpec
from local.sandbox.state import OperationRequest, SandboxStore
from local.testing.adyen_server import (
    AdyenServer,
    Delivery,
    WebhookReceiver,
    running_adyen_server,
    running_webhook_receiver,
)
from steps.gateway.port import Operation

PROJECT_ROOT = Path(__file__).resolve().parents[3]
HMAC_KEY = secrets.token_hex(32)


@pytest.fixture(scope="module")
def checkout_spec() -> CheckoutSpec:
    return CheckoutSpec()


@pytest.fixture(scope="module")
def webhooks_spec() -> WebhooksSpec:
    return WebhooksSpec()


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with running_webhook_receiver() as webhooks:
        yield webhooks


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver) -> Iterator[AdyenServer]:
    with running_adyen_server(db_dir=tmp_path_factory.mktemp("adyen"), webhook_url=receiver.url,
                              hmac_key=HMAC_KEY) as adyen:
        yield adyen


class Api:
    """Raw HTTP to the server; every answer is checked against Adyen's spec here too, independently of the server."""

    def __init__(self, server: AdyenServer, spec: CheckoutSpec) -> None:
        self.server, self.spec = server, spec
        self.http = httpx.Client(base_url=server.base_url, timeout=5.0)

    def post(self, path: str, body: dict[str, Any], *, key: str | None = None,
             api_key: str | None = None) -> httpx.Response:
        headers = {"X-API-Key": self.server.api_key if api_key is None else api_key}
        if key is not None:
            headers["Idempotency-Key"] = key
        response = self.http.post(path, json=body, headers=headers)
        sent = self.spec.request("POST", path, headers, json.dumps(body).encode())
        assert self.spec.response_errors(sent, response.status_code, response.json()) == [], response.text
        return response

    def calls(self, payment_id: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.http.get("/_calls", params={"payment_id": payment_id}).json()["calls"]
        return answer

    def settle(self, payment_id: str, outcome: str | None = None) -> httpx.Response:
        params = {"payment_id": payment_id} | ({} if outcome is None else {"outcome": outcome})
        return self.http.post("/_adyen/settle", params=params)


@pytest.fixture
def api(server: AdyenServer, checkout_spec: CheckoutSpec) -> Iterator[Api]:
    client = Api(server, checkout_spec)
    yield client
    client.http.close()


def payment(server: AdyenServer, payment_id: str, token: str = "tok_approve", amount: int = 2_500) -> dict[str, Any]:
    return {
        "merchantAccount": server.merchant_account,
        "reference": payment_id,
        "amount": {"value": amount, "currency": "EUR"},
        "paymentMethod": {"type": "scheme", "storedPaymentMethodId": token},
        "shopperReference": f"shopper-{payment_id}",
        "shopperInteraction": "ContAuth",
        "recurringProcessingModel": "CardOnFile",
        "additionalData": {"manualCapture": "true"},
        "returnUrl": "https://shop.example/return",
    }


def items_of(deliveries: list[Delivery], payment_id: str, event_code: str) -> list[dict[str, Any]]:
    found = []
    for delivery in deliveries:
        for wrapper in json.loads(delivery.body)["notificationItems"]:
            item = wrapper["NotificationRequestItem"]
            if item["merchantReference"] == payment_id and item["eventCode"] == event_code:
                found.append(item)
    return found


def accepted(payment_id: str, event_code: str) -> Any:
    """A wait_for condition: an accepted delivery of ``event_code`` for ``payment_id``."""
    return lambda deliveries: items_of([d for d in deliveries if d.status == 200], payment_id, event_code)


# --- the spec guards every request --------------------------------------------------------------------------------


def test_a_request_missing_a_required_field_is_refused_by_the_spec(api: Api, server: AdyenServer) -> None:
    body = payment(server, "pay_missing")
    del body["returnUrl"]
    answer = api.post("/v71/payments", body, key="pay_missing")
    assert answer.status_code == 422
    error = answer.json()
    assert (error["status"], error["errorType"], error["errorCode"]) == (422, "validation", "702")
    assert "'returnUrl' is a required property" in error["message"]
    assert api.calls("pay_missing") == []  # refused before it was a call


def test_a_field_of_the_wrong_type_is_refused_by_the_spec(api: Api, server: AdyenServer) -> None:
    body = payment(server, "pay_type")
    body["amount"]["value"] = "2500"
    answer = api.post("/v71/payments", body, key="pay_type")
    assert answer.status_code == 422 and "amount/value: '2500' is not of type 'integer'" in answer.json()["message"]


def test_a_field_the_spec_does_not_know_is_refused(api: Api, server: AdyenServer) -> None:
    body = payment(server, "pay_unknown") | {"captureNow": True}
    answer = api.post("/v71/payments", body, key="pay_unknown")
    assert answer.status_code == 422 and "'captureNow' was unexpected" in answer.json()["message"]


def test_a_modification_without_its_required_amount_is_refused(api: Api, server: AdyenServer) -> None:
    psp = api.post("/v71/payments", payment(server, "pay_noamount"), key="pay_noamount").json()["pspReference"]
    answer = api.post(f"/v71/payments/{psp}/captures", {"merchantAccount": server.merchant_account})
    assert answer.status_code == 422 and "'amount' is a required property" in answer.json()["message"]


@pytest.mark.parametrize("api_key", ["", "wrong"])
def test_the_api_key_is_checked(api: Api, server: AdyenServer, api_key: str) -> None:
    answer = api.post("/v71/payments", payment(server, "pay_key"), key="pay_key", api_key=api_key)
    assert answer.status_code == 401 and answer.json()["errorType"] == "security"


def test_another_merchant_account_is_refused(api: Api, server: AdyenServer) -> None:
    body = payment(server, "pay_merchant") | {"merchantAccount": "SomeoneElse"}
    answer = api.post("/v71/payments", body, key="pay_merchant")
    assert (answer.status_code, answer.json()["errorCode"]) == (403, "901")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"additionalData": {}}, "manual capture required"),
        ({"additionalData": {"manualCapture": "false"}, "captureDelayHours": 24}, "manual capture required"),
        ({"paymentMethod": {"type": "scheme", "storedPaymentMethodId": "tok_nope"}}, "PaymentDetail not found"),
        ({"shopperInteraction": "Ecommerce"}, "ContAuth"),
        ({"amount": {"value": 0, "currency": "EUR"}}, "Invalid amount"),
    ],
)
def test_what_this_server_takes_beyond_the_spec(api: Api, server: AdyenServer, change: dict[str, Any],
                                                message: str) -> None:
    answer = api.post("/v71/payments", payment(server, "pay_rules") | change, key="pay_rules")
    assert answer.status_code == 422 and message in answer.json()["message"]


def test_an_empty_body_is_refused(api: Api, server: AdyenServer) -> None:
    answer = api.http.post("/v71/payments", content=b"", headers={"X-API-Key": server.api_key,
                                                                  "Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["errorCode"]) == (422, "702")


def test_an_unknown_psp_reference_is_refused(api: Api, server: AdyenServer) -> None:
    body = {"merchantAccount": server.merchant_account, "amount": {"value": 1, "currency": "EUR"}}
    answer = api.post("/v71/payments/NOSUCHPAYMENT000/refunds", body)
    assert (answer.status_code, answer.json()["errorCode"]) == (422, "167")


# --- answers, idempotency, the call log ---------------------------------------------------------------------------


def test_every_operation_answers_as_the_spec_says(api: Api, server: AdyenServer) -> None:
    """Api.post checks each answer against the spec; here every endpoint answers once."""
    authorised = api.post("/v71/payments", payment(server, "pay_all"), key="pay_all")
    assert authorised.status_code == 200
    assert authorised.json() | {"pspReference": "X"} == {
        "resultCode": "Authorised", "pspReference": "X", "merchantReference": "pay_all",
        "amount": {"value": 2_500, "currency": "EUR"}}
    psp = authorised.json()["pspReference"]
    merchant = {"merchantAccount": server.merchant_account, "reference": "pay_all"}
    amount = {"amount": {"value": 1_000, "currency": "EUR"}}
    capture = api.post(f"/v71/payments/{psp}/captures", merchant | amount, key="pay_all:capture")
    refund = api.post(f"/v71/payments/{psp}/refunds", merchant | amount, key="pay_all:refund")
    cancel = api.post(f"/v71/payments/{psp}/cancels", merchant, key="pay_all:void")
    technical = api.post("/v71/cancels", merchant | {"paymentReference": "pay_all"}, key="pay_all:tech")
    for answer in (capture, refund, cancel, technical):
        assert answer.status_code == 201 and answer.json()["status"] == "received"
        assert answer.json()["pspReference"] != psp
    assert capture.json()["paymentPspReference"] == psp and technical.json()["paymentReference"] == "pay_all"


@pytest.mark.parametrize(("token", "reason", "code"), [
    ("tok_decline", "Refused", "2"),
    ("tok_insufficient_funds", "Not enough balance", "12"),
    ("tok_fraudulent", "FRAUD", "20"),
    ("tok_expired_card", "Expired Card", "6"),
])
def test_declines_are_refused_with_adyens_reasons(api: Api, server: AdyenServer, token: str, reason: str,
                                                  code: str) -> None:
    answer = api.post("/v71/payments", payment(server, f"pay_{token}", token), key=f"pay_{token}").json()
    assert (answer["resultCode"], answer["refusalReason"], answer["refusalReasonCode"]) == ("Refused", reason, code)


def test_a_key_replays_its_first_answer_and_refuses_another_request(api: Api, server: AdyenServer) -> None:
    first = api.post("/v71/payments", payment(server, "pay_idem"), key="pay_idem")
    again = api.post("/v71/payments", payment(server, "pay_idem"), key="pay_idem")
    assert again.json() == first.json() and again.headers["idempotency-key"] == "pay_idem"
    other = api.post("/v71/payments", payment(server, "pay_idem", amount=9_999), key="pay_idem")
    assert (other.status_code, other.json()["errorCode"]) == (422, "704")
    too_long = api.post("/v71/payments", payment(server, "pay_idem_long"), key="k" * 65)
    assert too_long.status_code == 422 and "64" in too_long.json()["message"]
    assert [(c["outcome"], c["replayed"], c["committed"]) for c in api.calls("pay_idem")] == [
        ("authorized", False, True), ("authorized", True, False), ("error_704", False, False)]


def test_the_call_log_rows_are_shaped_as_the_sandboxs(api: Api, server: AdyenServer, tmp_path: Path) -> None:
    api.post("/v71/payments", payment(server, "pay_log"), key="pay_log")
    (row,) = api.calls("pay_log")
    sandbox = SandboxStore(tmp_path / "sandbox.db")
    try:
        sandbox.execute(OperationRequest(operation=Operation.AUTHORIZE, payment_id="pay_log", key="pay_log",
                                         amount_minor=2_500, currency="EUR", card_token="tok_approve"))
        (sandbox_row,) = sandbox.calls("pay_log")
    finally:
        sandbox.close()
    assert {name: type(value) for name, value in row.items()} == {
        name: type(value) for name, value in sandbox_row.items()}
    assert row | {"seq": 0, "at_ms": 0} == {
        "seq": 0, "at_ms": 0, "operation": "authorize", "payment_id": "pay_log", "idempotency_key": "pay_log",
        "amount_minor": 2_500, "http_status": 200, "outcome": "authorized", "replayed": False, "committed": True}


def test_a_first_attempt_fault_changes_nothing_and_a_retry_gets_through(api: Api, server: AdyenServer) -> None:
    body = payment(server, "pay_503", "tok_5xx_then_success")
    first = api.http.post("/v71/payments", json=body, headers={"X-API-Key": server.api_key, "Idempotency-Key": "k503"})
    assert first.status_code == 503
    assert api.post("/v71/payments", body, key="k503").json()["resultCode"] == "Authorised"
    assert [(c["outcome"], c["committed"]) for c in api.calls("pay_503")] == [("unavailable", False),
                                                                                ("authorized", True)]


# --- webhooks -----------------------------------------------------------------------------------------------------


def test_every_payment_sends_a_signed_valid_authorisation(
    api: Api, server: AdyenServer, receiver: WebhookReceiver, webhooks_spec: WebhooksSpec
) -> None:
    psp = api.post("/v71/payments", payment(server, "pay_hook"), key="pay_hook").json()["pspReference"]
    api.post("/v71/payments", payment(server, "pay_hook_no", "tok_decline"), key="pay_hook_no")
    deliveries = receiver.wait_for(lambda got: bool(accepted("pay_hook", "AUTHORISATION")(got)
                                                    and accepted("pay_hook_no", "AUTHORISATION")(got)))
    (item,) = items_of(deliveries, "pay_hook", "AUTHORISATION")
    assert (item["pspReference"], item["success"], item["amount"]) == (psp, "true", {"value": 2_500,
                                                                                     "currency": "EUR"})
    assert is_valid_hmac_notification(item, HMAC_KEY) is True
    (refused,) = items_of(deliveries, "pay_hook_no", "AUTHORISATION")
    assert (refused["success"], refused["reason"]) == ("false", "Refused")
    for delivery in deliveries:
        assert webhooks_spec.errors(json.loads(delivery.body)) == []


def test_a_refused_webhook_is_retried_until_accepted(api: Api, server: AdyenServer, receiver: WebhookReceiver) -> None:
    receiver.refuse_next(2, only=lambda body: b'"pay_retry"' in body)  # other tests' webhooks may still arrive
    api.post("/v71/payments", payment(server, "pay_retry"), key="pay_retry")
    deliveries = receiver.wait_for(accepted("pay_retry", "AUTHORISATION"))
    mine = [d for d in deliveries if items_of([d], "pay_retry", "AUTHORISATION")]
    assert [d.status for d in mine] == [500, 500, 200]
    assert len({d.body for d in mine}) == 1  # the same notification each time
    # The outbox counted both refusals before the third attempt (its own record of the 200 may still be on its way).
    (status,) = api.http.get("/_adyen/notifications", params={"payment_id": "pay_retry"}).json()["notifications"]
    assert status["attempts"] >= 2


@pytest.mark.parametrize(
    ("token", "outcome", "event_code", "success"),
    [
        ("tok_approve", None, "CAPTURE", "true"),
        ("tok_async_capture", None, "CAPTURE", "true"),
        ("tok_async_capture_fails", None, "CAPTURE_FAILED", "true"),
        ("tok_capture_fails", None, "CAPTURE", "false"),
        ("tok_approve", "failure", "CAPTURE_FAILED", "true"),
    ],
)
def test_a_capture_settles_by_webhook(api: Api, server: AdyenServer, receiver: WebhookReceiver, token: str,
                                      outcome: str | None, event_code: str, success: str) -> None:
    payment_id = f"pay_cap_{token}_{outcome}"
    psp = api.post("/v71/payments", payment(server, payment_id, token), key=payment_id).json()["pspReference"]
    body = {"merchantAccount": server.merchant_account, "amount": {"value": 2_000, "currency": "EUR"}}
    capture = api.post(f"/v71/payments/{psp}/captures", body, key=f"{payment_id}:capture").json()
    assert api.settle(payment_id, outcome).status_code == 200
    (item,) = items_of(receiver.wait_for(accepted(payment_id, event_code)), payment_id, event_code)
    assert (item["success"], item["pspReference"], item["originalReference"]) == (success, capture["pspReference"],
                                                                                  psp)
    assert item["amount"] == {"value": 2_000, "currency": "EUR"}
    assert api.settle(payment_id).status_code == 409  # nothing pending any more


def test_a_cancel_by_reference_settles_as_a_technical_cancel(api: Api, server: AdyenServer,
                                                             receiver: WebhookReceiver) -> None:
    psp = api.post("/v71/payments", payment(server, "pay_tech"), key="pay_tech").json()["pspReference"]
    api.post("/v71/cancels", {"merchantAccount": server.merchant_account, "paymentReference": "pay_tech"})
    api.settle("pay_tech")
    (item,) = items_of(receiver.wait_for(accepted("pay_tech", "TECHNICAL_CANCEL")), "pay_tech", "TECHNICAL_CANCEL")
    assert (item["success"], item["originalReference"]) == ("true", psp)


def test_modifications_settle_by_themselves_after_the_delay(tmp_path: Path, checkout_spec: CheckoutSpec) -> None:
    with running_webhook_receiver() as webhooks, running_adyen_server(
        db_dir=tmp_path, webhook_url=webhooks.url, hmac_key=HMAC_KEY, settle_after_ms=50
    ) as server:
        api = Api(server, checkout_spec)
        psp = api.post("/v71/payments", payment(server, "pay_auto"), key="pay_auto").json()["pspReference"]
        body = {"merchantAccount": server.merchant_account, "amount": {"value": 2_500, "currency": "EUR"}}
        api.post(f"/v71/payments/{psp}/captures", body, key="pay_auto:capture")
        api.post(f"/v71/payments/{psp}/refunds", body, key="pay_auto:refund")
        deliveries = webhooks.wait_for(lambda got: bool(accepted("pay_auto", "REFUND")(got)))
        assert [i["success"] for i in items_of(deliveries, "pay_auto", "CAPTURE")] == ["true"]
        api.http.close()


def test_state_and_answers_survive_a_restart(tmp_path: Path, checkout_spec: CheckoutSpec) -> None:
    with running_adyen_server(db_dir=tmp_path) as server:
        api = Api(server, checkout_spec)
        first = api.post("/v71/payments", payment(server, "pay_restart"), key="pay_restart").json()
        api.http.close()
    with running_adyen_server(db_dir=tmp_path) as server:
        api = Api(server, checkout_spec)
        assert api.post("/v71/payments", payment(server, "pay_restart"), key="pay_restart").json() == first
        assert [c["replayed"] for c in api.calls("pay_restart")] == [False, True]
        api.http.close()


def test_a_missing_spec_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "CheckoutService-v71.json"
    result = subprocess.run(
        [sys.executable, "-m", "local.adyen.server", "--port", "1", "--db", str(tmp_path / "a.db"), "--spec",
         str(missing)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2 and str(missing) in result.stderr
