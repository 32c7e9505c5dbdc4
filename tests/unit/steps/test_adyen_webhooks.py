"""AdyenGateway.read_webhook: each item's HMAC checked with Adyen's SDK, eventCode/success mapped to NoticeKind; and
the lookup model over the notices. Every item built here is first checked against Adyen's Webhooks-v1.json (with
openapi-core), so the tests speak Adyen's real shape."""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

import pytest

from local.adyen.notifications import notification_item, sign_item, signed_notification, unsigned_notification
from local.adyen.spec import WebhooksSpec
from steps.gateway.adyen import AdyenGateway, decline_reason_of
from steps.gateway.notices import GatewayNotice, NoticeKind, WebhookRejected
from steps.gateway.port import DeclineReason, GatewayStatus

HMAC_KEY = secrets.token_hex(32)
MERCHANT = "PaysagaTestECOM"
PAYMENT_PSP = "PAYMENT000000001"
AT_MS = 1_700_000_000_123


@pytest.fixture(scope="module")
def webhooks_spec() -> WebhooksSpec:
    return WebhooksSpec()


def gateway(hmac_key: str | None = HMAC_KEY, notices: Sequence[GatewayNotice] = ()) -> AdyenGateway:
    return AdyenGateway(
        api_key="unused",
        merchant_account=MERCHANT,
        checkout_url="http://127.0.0.1:9",  # never dialled here
        timeout_ms=1_000,
        hmac_key=hmac_key,
        notices=lambda payment_id: [n for n in notices if n.payment_id == payment_id],
    )


def item(event_code: str, *, success: bool = True, psp: str = "MODIFICATION0001", at_ms: int = AT_MS,
         amount: int = 1_500, reason: str | None = None, payment_id: str = "pay_1") -> dict[str, Any]:
    return notification_item(
        event_code=event_code,
        psp_reference=PAYMENT_PSP if event_code == "AUTHORISATION" else psp,
        merchant_reference=payment_id,
        merchant_account=MERCHANT,
        amount_minor=amount,
        currency="EUR",
        success=success,
        at_ms=at_ms,
        original_reference=None if event_code == "AUTHORISATION" else PAYMENT_PSP,
        reason=reason,
    )


def body_of(notification: dict[str, Any], spec: WebhooksSpec | None = None) -> bytes:
    if spec is not None:
        assert spec.errors(notification) == [], "the test built a notification Adyen would not send"
    return json.dumps(notification).encode()


def test_a_signed_authorisation_becomes_one_notice(webhooks_spec: WebhooksSpec) -> None:
    event = item("AUTHORISATION")
    event["operations"] = ["CANCEL", "CAPTURE", "REFUND"]
    notices = gateway().read_webhook(body_of(signed_notification(event, HMAC_KEY), webhooks_spec), {})
    assert len(notices) == 1
    notice = notices[0]
    assert (notice.gateway, notice.kind, notice.event_id) == ("adyen", NoticeKind.AUTHORISED,
                                                              f"AUTHORISATION:{PAYMENT_PSP}:true")
    assert (notice.payment_id, notice.gateway_reference, notice.operation_reference) == ("pay_1", PAYMENT_PSP,
                                                                                         PAYMENT_PSP)
    assert (notice.amount_minor, notice.currency, notice.occurred_at_ms) == (1_500, "EUR", AT_MS)
    assert notice.payload["pspReference"] == PAYMENT_PSP


def test_a_modification_names_the_payment_by_its_original_reference(webhooks_spec: WebhooksSpec) -> None:
    event = item("CAPTURE", psp="CAPTURE000000001")
    (notice,) = gateway().read_webhook(body_of(signed_notification(event, HMAC_KEY), webhooks_spec), {})
    assert (notice.kind, notice.gateway_reference, notice.operation_reference) == (
        NoticeKind.CAPTURED, PAYMENT_PSP, "CAPTURE000000001")
    assert notice.event_id == "CAPTURE:CAPTURE000000001:true"


@pytest.mark.parametrize(
    ("event_code", "success", "kind"),
    [
        ("AUTHORISATION", True, NoticeKind.AUTHORISED),
        ("AUTHORISATION", False, NoticeKind.AUTHORISATION_FAILED),
        ("CAPTURE", True, NoticeKind.CAPTURED),
        ("CAPTURE", False, NoticeKind.CAPTURE_FAILED),
        ("CAPTURE_FAILED", True, NoticeKind.CAPTURE_FAILED),
        ("CANCELLATION", True, NoticeKind.CANCELLED),
        ("CANCELLATION", False, NoticeKind.OTHER),
        ("TECHNICAL_CANCEL", True, NoticeKind.CANCELLED),
        ("TECHNICAL_CANCEL", False, NoticeKind.OTHER),
        ("REFUND", True, NoticeKind.REFUNDED),
        ("REFUND", False, NoticeKind.REFUND_FAILED),
        ("REFUND_FAILED", True, NoticeKind.REFUND_FAILED),
        ("CHARGEBACK", True, NoticeKind.DISPUTE_OPENED),
        ("NOTIFICATION_OF_CHARGEBACK", True, NoticeKind.DISPUTE_OPENED),
        ("CHARGEBACK_REVERSED", True, NoticeKind.DISPUTE_WON),
        ("SECOND_CHARGEBACK", True, NoticeKind.OTHER),
        ("EXPIRE", True, NoticeKind.OTHER),
    ],
)
def test_each_event_code_maps_to_its_kind(
    webhooks_spec: WebhooksSpec, event_code: str, success: bool, kind: NoticeKind
) -> None:
    event = item(event_code, success=success)
    (notice,) = gateway().read_webhook(body_of(signed_notification(event, HMAC_KEY), webhooks_spec), {})
    assert notice.kind is kind
    assert notice.event_id == f"{event_code}:{event['pspReference']}:{'true' if success else 'false'}"


def test_the_event_id_is_stable_across_redeliveries() -> None:
    body = body_of(signed_notification(item("REFUND"), HMAC_KEY))
    first, second = gateway().read_webhook(body, {}), gateway().read_webhook(body, {})
    assert first[0].event_id == second[0].event_id


def test_a_forged_signature_is_refused_naming_the_item(webhooks_spec: WebhooksSpec) -> None:
    forged = signed_notification(item("CAPTURE", psp="CAPTURE000000002"), secrets.token_hex(32))
    with pytest.raises(WebhookRejected, match=r"CAPTURE CAPTURE000000002.*does not match"):
        gateway().read_webhook(body_of(forged, webhooks_spec), {})


def test_a_field_changed_after_signing_is_refused() -> None:
    notification = signed_notification(item("REFUND", amount=100), HMAC_KEY)
    notification["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] = 100_000
    with pytest.raises(WebhookRejected, match="does not match"):
        gateway().read_webhook(body_of(notification), {})


@pytest.mark.parametrize("additional_data", [None, {}, {"hmacSignature": ""}])
def test_a_missing_signature_is_refused(webhooks_spec: WebhooksSpec, additional_data: dict[str, str] | None) -> None:
    event = item("CANCELLATION", psp="CANCEL0000000001")
    if additional_data is not None:
        event["additionalData"] = additional_data
    with pytest.raises(WebhookRejected, match=r"CANCELLATION CANCEL0000000001: no hmacSignature"):
        gateway().read_webhook(body_of(unsigned_notification(event), webhooks_spec), {})


def test_without_a_key_nothing_is_accepted() -> None:
    body = body_of(signed_notification(item("AUTHORISATION"), HMAC_KEY))
    with pytest.raises(WebhookRejected, match=f"AUTHORISATION {PAYMENT_PSP}: no HMAC key is configured"):
        gateway(hmac_key=None).read_webhook(body, {})


def test_one_bad_item_refuses_the_whole_request() -> None:
    good = sign_item(item("CAPTURE", psp="CAPTURE000000003"), HMAC_KEY)
    bad = sign_item(item("REFUND", psp="REFUND0000000001"), secrets.token_hex(32))
    body = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": good},
                                                              {"NotificationRequestItem": bad}]}).encode()
    with pytest.raises(WebhookRejected, match="REFUND REFUND0000000001"):
        gateway().read_webhook(body, {})
    both_good = json.dumps({"live": "false", "notificationItems": [{"NotificationRequestItem": good}] * 2}).encode()
    assert len(gateway().read_webhook(both_good, {})) == 2


@pytest.mark.parametrize("body", [b"not json", b"[]", b"{}", b'{"notificationItems": []}',
                                  b'{"notificationItems": [{"Other": {}}]}'])
def test_a_body_that_is_no_notification_request_is_refused(body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        gateway().read_webhook(body, {})


def test_a_signed_item_with_a_bad_event_date_is_refused() -> None:
    event = item("CAPTURE")
    event["eventDate"] = "yesterday"
    with pytest.raises(WebhookRejected, match="CAPTURE"):
        gateway().read_webhook(body_of(signed_notification(event, HMAC_KEY)), {})


def test_a_key_that_is_not_hex_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="hex"):
        gateway(hmac_key="not-hex")


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        ("2", "Refused", DeclineReason.CARD_DECLINED),
        ("6", "Expired Card", DeclineReason.EXPIRED_CARD),
        ("12", "Not enough balance", DeclineReason.INSUFFICIENT_FUNDS),
        ("20", "FRAUD", DeclineReason.FRAUDULENT),
        ("22", "FRAUD-CANCELLED", DeclineReason.FRAUDULENT),
        ("31", "Issuer Suspected Fraud", DeclineReason.FRAUDULENT),
        ("24", "CVC Declined", DeclineReason.CARD_DECLINED),
        (None, "Not enough balance", DeclineReason.INSUFFICIENT_FUNDS),  # a webhook's reason has no code
        (None, None, DeclineReason.CARD_DECLINED),
    ],
)
def test_refusal_reasons_map_to_decline_reasons(code: str | None, reason: str | None, expected: DeclineReason) -> None:
    assert decline_reason_of(code, reason) is expected


# --- lookup from notices ------------------------------------------------------------------------------------------


def notices_of(*events: dict[str, Any]) -> list[GatewayNotice]:
    return [notice for event in events for notice in gateway().read_webhook(
        body_of(signed_notification(event, HMAC_KEY)), {})]


def test_lookup_knows_nothing_without_an_authorisation_or_a_reference() -> None:
    assert gateway().lookup(payment_id="pay_1") is None


def test_lookup_knows_nothing_from_a_cancel_by_reference_that_found_no_payment() -> None:
    event = item("TECHNICAL_CANCEL", success=False, psp="TECHCANCEL000001", reason="No authorised payment")
    del event["originalReference"]
    assert gateway(notices=notices_of(event)).lookup(payment_id="pay_1") is None


def test_lookup_with_a_reference_but_no_notice_is_authorized_with_unknown_amount() -> None:
    found = gateway().lookup(payment_id="pay_1", gateway_reference=PAYMENT_PSP)
    assert found is not None
    assert (found.status, found.gateway_reference, found.amount_minor, found.currency) == (
        GatewayStatus.AUTHORIZED, PAYMENT_PSP, 0, "")


def test_lookup_follows_the_latest_deciding_notice_in_event_time() -> None:
    notices = notices_of(
        item("CAPTURE", psp="CAPTURE000000004", at_ms=AT_MS + 2, amount=1_000),
        item("AUTHORISATION", at_ms=AT_MS, amount=1_500),  # arrived late: event time still puts it first
        item("REFUND", psp="REFUND0000000002", at_ms=AT_MS + 3, amount=400),
        item("CHARGEBACK", psp="CHARGEBACK000001", at_ms=AT_MS + 4, amount=600),  # a dispute decides nothing
    )
    found = gateway(notices=notices).lookup(payment_id="pay_1")
    assert found is not None
    assert (found.status, found.amount_minor, found.currency, found.captured_minor, found.refunded_minor) == (
        GatewayStatus.REFUNDED, 1_500, "EUR", 1_000, 400)


def test_lookup_undoes_a_capture_that_failed_later() -> None:
    notices = notices_of(
        item("AUTHORISATION", at_ms=AT_MS),
        item("CAPTURE", psp="CAPTURE000000005", at_ms=AT_MS + 1),
        item("CAPTURE_FAILED", psp="CAPTURE000000005", at_ms=AT_MS + 2),
    )
    found = gateway(notices=notices).lookup(payment_id="pay_1")
    assert found is not None and (found.status, found.captured_minor) == (GatewayStatus.CAPTURE_FAILED, 0)


def test_lookup_of_a_refused_authorisation_is_declined_with_its_reason() -> None:
    notices = notices_of(item("AUTHORISATION", success=False, reason="Not enough balance"))
    found = gateway(notices=notices).lookup(payment_id="pay_1")
    assert found is not None
    assert (found.status, found.decline_reason) == (GatewayStatus.DECLINED, DeclineReason.INSUFFICIENT_FUNDS)


def test_lookup_ignores_another_authorisation_under_the_same_payment_id() -> None:
    other = item("AUTHORISATION")
    other["pspReference"] = "OTHERPAYMENT0001"
    notices = notices_of(item("AUTHORISATION", at_ms=AT_MS), item("CANCELLATION", at_ms=AT_MS + 1))
    notices += notices_of(other)
    found = gateway(notices=notices).lookup(payment_id="pay_1", gateway_reference=PAYMENT_PSP)
    assert found is not None and (found.gateway_reference, found.status) == (PAYMENT_PSP, GatewayStatus.VOIDED)
