"""AdyenGateway through Adyen's SDK against the local Adyen server (a real process): every port operation, each
decline, the fault tokens mapped to the port's exceptions and resolved by a retry under the same key without a second
authorization (the server's call log says so), and lookup answered from the webhooks the server delivered to a
receiver that reads them with the adapter's own read_webhook."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from local.stack.process import free_port
from local.testing.adyen_server import (
    AdyenServer,
    WebhookReceiver,
    running_adyen_server,
    running_webhook_receiver,
)
from steps.authorize import cancel_at_gateway
from steps.gateway.adyen import AdyenGateway
from steps.gateway.notices import GatewayNotice, NoticeKind, WebhookRejected, WebhookSource
from steps.gateway.port import (
    DeclineReason,
    Gateway,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayResult,
    GatewayStatus,
    GatewayUnreachable,
    Operation,
    PaymentSnapshot,
    RefundSnapshot,
)

HMAC_KEY = secrets.token_hex(32)
CLIENT_TIMEOUT_MS = 1_000  # a withheld answer costs a test this long
AMOUNT = 12_345
CURRENCY = "EUR"


class NoticeStore:
    """What the saga's webhook route keeps: each notice once per event id; read back as store.notices does, by the
    payment id the gateway echoed or by the payment's reference at the gateway (a refund made under its refund id
    echoes that id, and names the payment by originalReference only), oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._all: list[GatewayNotice] = []
        self._seen: set[str] = set()

    def add(self, notices: list[GatewayNotice]) -> None:
        with self._lock:
            for notice in notices:
                if notice.event_id not in self._seen:
                    self._seen.add(notice.event_id)
                    self._all.append(notice)

    def __call__(self, payment_id: str) -> list[GatewayNotice]:
        with self._lock:
            references = {n.gateway_reference for n in self._all
                          if n.payment_id == payment_id and n.gateway_reference is not None}
            return [n for n in self._all if n.payment_id == payment_id or n.gateway_reference in references]


@dataclass
class World:
    server: AdyenServer
    receiver: WebhookReceiver
    notices: NoticeStore
    gateway: AdyenGateway
    admin: httpx.Client

    def adapter(self, **changes: Any) -> AdyenGateway:
        settings: dict[str, Any] = {
            "api_key": self.server.api_key, "merchant_account": self.server.merchant_account,
            "checkout_url": self.server.base_url, "timeout_ms": CLIENT_TIMEOUT_MS, "hmac_key": HMAC_KEY,
            "notices": self.notices,
        }
        return AdyenGateway(**(settings | changes))

    def calls(self, payment_id: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.admin.get("/_calls", params={"payment_id": payment_id}).json()["calls"]
        return answer

    def committed(self, payment_id: str, operation: Operation) -> list[dict[str, Any]]:
        return [c for c in self.calls(payment_id) if c["operation"] == operation.value and c["committed"]]

    def settle(self, payment_id: str, outcome: str | None = None) -> None:
        params = {"payment_id": payment_id} | ({} if outcome is None else {"outcome": outcome})
        self.admin.post("/_adyen/settle", params=params).raise_for_status()

    def wait_for_notice(self, payment_id: str, kind: NoticeKind) -> GatewayNotice:
        def arrived(_: object) -> bool:
            return any(n.kind is kind for n in self.notices(payment_id))

        self.receiver.wait_for(arrived)
        return next(n for n in self.notices(payment_id) if n.kind is kind)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    notices = NoticeStore()
    reader: list[AdyenGateway] = []

    def accept(body: bytes, headers: Mapping[str, str]) -> bool:
        try:
            notices.add(reader[0].read_webhook(body, headers))
        except WebhookRejected:
            return False
        return True

    with running_webhook_receiver(accept) as receiver, running_adyen_server(
        db_dir=tmp_path_factory.mktemp("adyen-gateway"), webhook_url=receiver.url, hmac_key=HMAC_KEY
    ) as server, httpx.Client(base_url=server.base_url, timeout=5.0) as admin:
        gateway = AdyenGateway(api_key=server.api_key, merchant_account=server.merchant_account,
                               checkout_url=server.base_url, timeout_ms=CLIENT_TIMEOUT_MS, hmac_key=HMAC_KEY,
                               notices=notices)
        reader.append(gateway)
        yield World(server, receiver, notices, gateway, admin)
        gateway.close()


def authorize(world: World, payment_id: str, token: str = "tok_approve", amount: int = AMOUNT) -> GatewayResult:
    return world.gateway.authorize(payment_id=payment_id, amount_minor=amount, currency=CURRENCY, card_token=token)


def authorized(world: World, payment_id: str, token: str = "tok_approve") -> str:
    """Authorize and wait for its AUTHORISATION webhook; the pspReference."""
    result = authorize(world, payment_id, token)
    assert result.status is GatewayStatus.AUTHORIZED
    world.wait_for_notice(payment_id, NoticeKind.AUTHORISED)
    return result.gateway_reference


def looked_up(world: World, payment_id: str, gateway_reference: str | None = None) -> PaymentSnapshot:
    found = world.gateway.lookup(payment_id=payment_id, gateway_reference=gateway_reference)
    assert found is not None, f"lookup knows nothing of {payment_id}"
    return found


def test_the_adapter_is_a_gateway_and_a_webhook_source(world: World) -> None:
    assert isinstance(world.gateway, Gateway) and isinstance(world.gateway, WebhookSource)
    assert world.gateway.name == "adyen"


def test_approve_authorizes_with_the_payment_id_as_key(world: World) -> None:
    result = authorize(world, "pay_ok")
    assert (result.operation, result.status) == (Operation.AUTHORIZE, GatewayStatus.AUTHORIZED)
    assert (result.payment_id, result.idempotency_key) == ("pay_ok", "pay_ok")
    assert len(result.gateway_reference) == 16 and result.operation_reference == result.gateway_reference
    assert (result.amount_minor, result.currency, result.decline_reason, result.replayed) == (AMOUNT, CURRENCY, None,
                                                                                              False)
    notice = world.wait_for_notice("pay_ok", NoticeKind.AUTHORISED)
    assert (notice.gateway_reference, notice.amount_minor) == (result.gateway_reference, AMOUNT)
    assert looked_up(world, "pay_ok") == PaymentSnapshot(
        payment_id="pay_ok", gateway_reference=result.gateway_reference, status=GatewayStatus.AUTHORIZED,
        amount_minor=AMOUNT, currency=CURRENCY, captured_minor=0, refunded_minor=0)
    (call,) = world.calls("pay_ok")
    assert (call["operation"], call["idempotency_key"], call["outcome"], call["committed"]) == (
        "authorize", "pay_ok", "authorized", True)


@pytest.mark.parametrize(
    ("token", "reason", "detail"),
    [
        ("tok_decline", DeclineReason.CARD_DECLINED, "Refused"),
        ("tok_insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS, "Not enough balance"),
        ("tok_fraudulent", DeclineReason.FRAUDULENT, "FRAUD"),
        ("tok_expired_card", DeclineReason.EXPIRED_CARD, "Expired Card"),
    ],
)
def test_each_decline(world: World, token: str, reason: DeclineReason, detail: str) -> None:
    payment_id = f"pay_{token}"
    result = authorize(world, payment_id, token)
    assert (result.status, result.decline_reason, result.decline_detail) == (GatewayStatus.DECLINED, reason, detail)
    world.wait_for_notice(payment_id, NoticeKind.AUTHORISATION_FAILED)
    found = looked_up(world, payment_id)
    assert (found.status, found.decline_reason, found.gateway_reference) == (
        GatewayStatus.DECLINED, reason, result.gateway_reference)


def test_capture_is_submitted_and_confirmed_by_webhook(world: World) -> None:
    reference = authorized(world, "pay_cap")
    result = world.gateway.capture(payment_id="pay_cap", gateway_reference=reference, amount_minor=10_000,
                                   currency=CURRENCY)
    assert (result.status, result.idempotency_key, result.amount_minor) == (
        GatewayStatus.CAPTURE_SUBMITTED, "pay_cap:capture", 10_000)
    assert result.gateway_reference == reference and result.operation_reference != reference
    assert looked_up(world, "pay_cap").status is GatewayStatus.AUTHORIZED  # not confirmed yet
    world.settle("pay_cap")
    notice = world.wait_for_notice("pay_cap", NoticeKind.CAPTURED)
    assert notice.operation_reference == result.operation_reference
    found = looked_up(world, "pay_cap")
    assert (found.status, found.captured_minor, found.amount_minor) == (GatewayStatus.CAPTURED, 10_000, AMOUNT)


@pytest.mark.parametrize("token", ["tok_async_capture_fails", "tok_capture_fails"])
def test_a_failing_capture_reads_capture_failed(world: World, token: str) -> None:
    payment_id = f"pay_capfail_{token}"
    reference = authorized(world, payment_id, token)
    result = world.gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT,
                                   currency=CURRENCY)
    assert result.status is GatewayStatus.CAPTURE_SUBMITTED
    world.settle(payment_id)
    world.wait_for_notice(payment_id, NoticeKind.CAPTURE_FAILED)
    found = looked_up(world, payment_id)
    assert (found.status, found.captured_minor) == (GatewayStatus.CAPTURE_FAILED, 0)


def test_cancel_voids(world: World) -> None:
    reference = authorized(world, "pay_void")
    result = world.gateway.cancel(payment_id="pay_void", gateway_reference=reference)
    assert (result.status, result.idempotency_key, result.gateway_reference) == (
        GatewayStatus.VOIDED, "pay_void:void", reference)
    world.settle("pay_void")
    world.wait_for_notice("pay_void", NoticeKind.CANCELLED)
    assert looked_up(world, "pay_void").status is GatewayStatus.VOIDED


def test_cancel_by_reference_voids_an_authorization_whose_answer_was_lost(world: World) -> None:
    reference = authorized(world, "pay_techvoid")
    result = world.gateway.cancel(payment_id="pay_techvoid", gateway_reference="")
    assert (result.status, result.gateway_reference) == (GatewayStatus.VOIDED, "")
    assert result.operation_reference
    world.settle("pay_techvoid")
    notice = world.wait_for_notice("pay_techvoid", NoticeKind.CANCELLED)
    assert (notice.event_id.split(":")[0], notice.gateway_reference) == ("TECHNICAL_CANCEL", reference)
    assert looked_up(world, "pay_techvoid").status is GatewayStatus.VOIDED


def test_refund_after_capture(world: World) -> None:
    reference = authorized(world, "pay_refund")
    world.gateway.capture(payment_id="pay_refund", gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    world.settle("pay_refund")
    world.wait_for_notice("pay_refund", NoticeKind.CAPTURED)
    result = world.gateway.refund(payment_id="pay_refund", gateway_reference=reference, amount_minor=AMOUNT,
                                  currency=CURRENCY)
    assert (result.status, result.idempotency_key, result.amount_minor) == (GatewayStatus.REFUNDED,
                                                                            "pay_refund:refund", AMOUNT)
    world.settle("pay_refund")
    world.wait_for_notice("pay_refund", NoticeKind.REFUNDED)
    found = looked_up(world, "pay_refund")
    assert (found.status, found.captured_minor, found.refunded_minor) == (GatewayStatus.REFUNDED, AMOUNT, AMOUNT)


def test_a_refund_that_fails_later_arrives_as_refund_failed(world: World) -> None:
    reference = authorized(world, "pay_refund_fails")
    world.gateway.capture(payment_id="pay_refund_fails", gateway_reference=reference, amount_minor=AMOUNT,
                          currency=CURRENCY)
    world.settle("pay_refund_fails")
    world.wait_for_notice("pay_refund_fails", NoticeKind.CAPTURED)
    world.gateway.refund(payment_id="pay_refund_fails", gateway_reference=reference, amount_minor=AMOUNT,
                         currency=CURRENCY)
    world.settle("pay_refund_fails", "failure")
    world.wait_for_notice("pay_refund_fails", NoticeKind.REFUND_FAILED)
    found = looked_up(world, "pay_refund_fails")
    assert (found.status, found.refunded_minor) == (GatewayStatus.CAPTURED, 0)


def captured(world: World, payment_id: str, token: str = "tok_approve") -> str:
    """Authorized and captured (AMOUNT), both webhooks arrived; the pspReference."""
    reference = authorized(world, payment_id, token)
    world.gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    world.settle(payment_id)
    world.wait_for_notice(payment_id, NoticeKind.CAPTURED)
    return reference


def refund_notice(world: World, payment_id: str, operation_reference: str) -> GatewayNotice:
    """Wait for the REFUND (or REFUND_FAILED) notice of one refund, by its pspReference."""
    def mine() -> list[GatewayNotice]:
        return [n for n in world.notices(payment_id) if n.operation_reference == operation_reference
                and n.kind in (NoticeKind.REFUNDED, NoticeKind.REFUND_FAILED)]

    world.receiver.wait_for(lambda _: bool(mine()))
    return mine()[0]


def test_several_partial_refunds_pending_until_their_webhooks_then_refunded(world: World) -> None:
    payment_id = "pay_partial_refunds"
    reference = captured(world, payment_id)
    first_id, second_id = "7261234567890123456", "7261234567890123457"
    first = world.gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=2_000,
                                 currency=CURRENCY, refund_id=first_id)
    second = world.gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=3_000,
                                  currency=CURRENCY, refund_id=second_id)
    assert (first.status, first.idempotency_key, first.amount_minor) == (
        GatewayStatus.REFUND_PENDING, f"{payment_id}:refund:{first_id}", 2_000)
    assert second.status is GatewayStatus.REFUND_PENDING
    assert len({first.operation_reference, second.operation_reference, reference}) == 3
    # Received, not decided: pending, from this adapter's record or from the reference the caller recorded.
    assert world.gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference,
                                       refund_id=first_id) == RefundSnapshot(
        refund_id=first_id, operation_reference=first.operation_reference, status=GatewayStatus.REFUND_PENDING,
        amount_minor=2_000, currency=CURRENCY)
    elsewhere = world.adapter()  # another process: knows only what the caller recorded
    assert elsewhere.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id=second_id) is None
    pending = elsewhere.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id=second_id,
                                      operation_reference=second.operation_reference)
    assert pending is not None and pending.status is GatewayStatus.REFUND_PENDING

    world.settle(payment_id)
    notice = refund_notice(world, payment_id, first.operation_reference)
    # The REFUND webhook names the refund: its pspReference, our refund id as merchantReference, the payment's
    # pspReference as originalReference.
    assert (notice.kind, notice.payment_id, notice.gateway_reference, notice.amount_minor) == (
        NoticeKind.REFUNDED, first_id, reference, 2_000)
    refund_notice(world, payment_id, second.operation_reference)
    assert world.gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference,
                                       refund_id=first_id) == RefundSnapshot(
        refund_id=first_id, operation_reference=first.operation_reference, status=GatewayStatus.REFUNDED,
        amount_minor=2_000, currency=CURRENCY)
    # By the refund id alone (merchantReference), in another process.
    found = elsewhere.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id=second_id)
    assert found is not None and (found.status, found.operation_reference, found.amount_minor) == (
        GatewayStatus.REFUNDED, second.operation_reference, 3_000)
    payment = looked_up(world, payment_id, reference)
    # As the sandbox: a payment with any refund reads REFUNDED; refunded_minor says how much.
    assert (payment.status, payment.captured_minor, payment.refunded_minor) == (GatewayStatus.REFUNDED, AMOUNT, 5_000)


def test_the_same_refund_id_twice_is_one_refund(world: World) -> None:
    payment_id = "pay_refund_twice"
    reference = captured(world, payment_id)
    asked: dict[str, Any] = {"payment_id": payment_id, "gateway_reference": reference, "amount_minor": 1_000,
                             "currency": CURRENCY, "refund_id": "99"}
    first = world.gateway.refund(**asked)
    again = world.gateway.refund(**asked)
    assert again.operation_reference == first.operation_reference  # Adyen replayed its answer under the key
    assert len(world.committed(payment_id, Operation.REFUND)) == 1
    with pytest.raises(GatewayRejected) as reused:
        world.gateway.refund(**(asked | {"amount_minor": 1_001}))
    assert reused.value.code == "704"


def test_lookup_of_a_refund_never_made_is_none(world: World) -> None:
    reference = captured(world, "pay_refund_none")
    assert world.gateway.lookup_refund(payment_id="pay_refund_none", gateway_reference=reference,
                                       refund_id="12345") is None


def test_a_declined_refund_is_pending_then_refund_failed(world: World) -> None:
    payment_id = "pay_refund_declined"
    reference = captured(world, payment_id, "tok_refund_declined")
    result = world.gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=1_000,
                                  currency=CURRENCY, refund_id="7261234567890123999")
    assert result.status is GatewayStatus.REFUND_PENDING
    world.settle(payment_id)
    notice = refund_notice(world, payment_id, result.operation_reference)
    assert (notice.kind, notice.reason) == (NoticeKind.REFUND_FAILED, "Refund declined")
    assert world.gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference,
                                       refund_id="7261234567890123999") == RefundSnapshot(
        refund_id="7261234567890123999", operation_reference=result.operation_reference,
        status=GatewayStatus.REFUND_FAILED, amount_minor=1_000, currency=CURRENCY, failure_reason="Refund declined")
    assert looked_up(world, payment_id, reference).refunded_minor == 0


def test_a_refund_beyond_what_remains_is_received_then_refused_by_webhook(world: World) -> None:
    """Adyen accepts a refund of a known payment ("received") and refuses an excess later, by webhook: no 4xx."""
    payment_id = "pay_refund_excess"
    reference = captured(world, payment_id)
    world.gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT - 100,
                         currency=CURRENCY, refund_id="1")
    excess = world.gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=101,
                                  currency=CURRENCY, refund_id="2")
    assert excess.status is GatewayStatus.REFUND_PENDING
    world.settle(payment_id)
    found_notice = refund_notice(world, payment_id, excess.operation_reference)
    assert found_notice.kind is NoticeKind.REFUND_FAILED
    found = world.gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id="2")
    assert found is not None and found.status is GatewayStatus.REFUND_FAILED
    assert found.failure_reason == "Refund amount exceeds the captured amount"
    assert looked_up(world, payment_id, reference).refunded_minor == AMOUNT - 100


# --- faults: the port's exceptions, resolved under the same key ---------------------------------------------------


def test_503_is_unreachable_and_a_retry_authorizes_once(world: World) -> None:
    with pytest.raises(GatewayUnreachable):
        authorize(world, "pay_503", "tok_5xx_then_success")
    assert authorize(world, "pay_503", "tok_5xx_then_success").status is GatewayStatus.AUTHORIZED
    assert [(c["outcome"], c["http_status"], c["committed"]) for c in world.calls("pay_503")] == [
        ("unavailable", 503, False), ("authorized", 200, True)]


def test_timeout_before_send_is_unknown_lookup_says_never_taken_and_a_retry_authorizes_once(world: World) -> None:
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(world, "pay_drop", "tok_timeout_before_send")
    assert world.gateway.lookup(payment_id="pay_drop") is None  # no AUTHORISATION: safe to resend the same key
    assert authorize(world, "pay_drop", "tok_timeout_before_send").status is GatewayStatus.AUTHORIZED
    assert len(world.committed("pay_drop", Operation.AUTHORIZE)) == 1


def test_timeout_after_commit_is_unknown_lookup_finds_it_and_a_retry_replays_it(world: World) -> None:
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(world, "pay_withheld", "tok_timeout_after_commit")
    notice = world.wait_for_notice("pay_withheld", NoticeKind.AUTHORISED)
    assert looked_up(world, "pay_withheld").gateway_reference == notice.gateway_reference
    retried = authorize(world, "pay_withheld", "tok_timeout_after_commit")
    assert (retried.status, retried.gateway_reference) == (GatewayStatus.AUTHORIZED, notice.gateway_reference)
    assert [(c["outcome"], c["replayed"], c["committed"]) for c in world.calls("pay_withheld")] == [
        ("authorized", False, True), ("answer_withheld", False, False), ("authorized", True, False)]
    # The capture's first attempt is withheld too (a new key): same resolution, still one capture.
    with pytest.raises(GatewayOutcomeUnknown):
        world.gateway.capture(payment_id="pay_withheld", gateway_reference=retried.gateway_reference,
                              amount_minor=AMOUNT, currency=CURRENCY)
    capture = world.gateway.capture(payment_id="pay_withheld", gateway_reference=retried.gateway_reference,
                                    amount_minor=AMOUNT, currency=CURRENCY)
    assert capture.status is GatewayStatus.CAPTURE_SUBMITTED
    assert len(world.committed("pay_withheld", Operation.CAPTURE)) == 1


def test_slow_answers_within_the_timeout(world: World) -> None:
    assert authorize(world, "pay_slow", "tok_slow").status is GatewayStatus.AUTHORIZED


def test_nothing_listening_is_unreachable(world: World) -> None:
    down = world.adapter(checkout_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(GatewayUnreachable):
        down.authorize(payment_id="pay_down", amount_minor=AMOUNT, currency=CURRENCY, card_token="tok_approve")


def test_an_answer_that_is_not_the_contract_is_an_unknown_outcome(world: World) -> None:
    with running_webhook_receiver() as not_adyen:  # answers 200 "[accepted]", or 500 when told to: never Adyen JSON
        impostor = world.adapter(checkout_url=not_adyen.url)
        with pytest.raises(GatewayOutcomeUnknown, match="not the contract"):
            impostor.authorize(payment_id="pay_odd", amount_minor=AMOUNT, currency=CURRENCY, card_token="tok_approve")
        not_adyen.refuse_next(1)
        with pytest.raises(GatewayOutcomeUnknown, match="500"):
            impostor.capture(payment_id="pay_odd", gateway_reference="X", amount_minor=AMOUNT, currency=CURRENCY)


@pytest.mark.parametrize(
    ("changes", "status_code", "code"),
    [({"api_key": "wrong"}, 401, "000"), ({"merchant_account": "SomeoneElse"}, 403, "901")],
)
def test_a_refused_credential_is_rejected_with_adyens_code(world: World, changes: dict[str, Any], status_code: int,
                                                           code: str) -> None:
    with pytest.raises(GatewayRejected) as refused:
        world.adapter(**changes).authorize(payment_id="pay_cred", amount_minor=AMOUNT, currency=CURRENCY,
                                           card_token="tok_approve")
    assert (refused.value.status_code, refused.value.code) == (status_code, code)
    assert world.calls("pay_cred") == []


def test_the_same_key_with_another_amount_is_rejected(world: World) -> None:
    authorize(world, "pay_reuse")
    with pytest.raises(GatewayRejected) as refused:
        authorize(world, "pay_reuse", amount=1)
    assert (refused.value.status_code, refused.value.code) == (422, "704")
    assert len(world.committed("pay_reuse", Operation.AUTHORIZE)) == 1


def test_an_unknown_token_is_rejected(world: World) -> None:
    with pytest.raises(GatewayRejected) as refused:
        authorize(world, "pay_notoken", "tok_unknown")
    assert (refused.value.status_code, refused.value.code) == (422, "803")


# --- lookup from notices ------------------------------------------------------------------------------------------


def test_lookup_with_a_recorded_reference_before_any_webhook_is_authorized(world: World) -> None:
    found = world.gateway.lookup(payment_id="pay_never_told", gateway_reference="RECORDED00000001")
    assert found is not None
    assert (found.status, found.gateway_reference, found.amount_minor) == (GatewayStatus.AUTHORIZED,
                                                                           "RECORDED00000001", 0)
    assert world.gateway.lookup(payment_id="pay_never_told") is None


def test_what_adyen_must_never_see_is_refused_before_sending(world: World) -> None:
    with pytest.raises(ValueError):
        world.gateway.capture(payment_id="pay_float", gateway_reference="X", amount_minor=10.0,  # type: ignore[arg-type]
                              currency=CURRENCY)
    with pytest.raises(ValueError, match="64"):
        authorize(world, "p" * 65)
    with pytest.raises(ValueError, match="64"):  # the payment's own key fits; its refund key (":refund") does not
        world.gateway.refund(payment_id="p" * 60, gateway_reference="X", amount_minor=1, currency=CURRENCY)
    assert world.calls("pay_float") == [] and world.calls("p" * 60) == []


def test_a_compensation_that_has_not_heard_of_an_authorization_cancels_it_by_reference(world: World) -> None:
    """The authorization's answer was lost and its AUTHORISATION webhook has not arrived (refused once, so Adyen
    retries it later): lookup knows nothing, and a compensation must not take that for 'never authorized'."""
    world.receiver.refuse_next(1, only=lambda body: b"pay_unheard" in body and b'"AUTHORISATION"' in body)
    assert authorize(world, "pay_unheard").status is GatewayStatus.AUTHORIZED
    assert world.gateway.lookup(payment_id="pay_unheard") is None
    assert world.gateway.lookup_is_complete is False
    assert cancel_at_gateway(world.gateway, "pay_unheard") == "voided"
    world.settle("pay_unheard")
    world.wait_for_notice("pay_unheard", NoticeKind.CANCELLED)
    assert looked_up(world, "pay_unheard").status is GatewayStatus.VOIDED
    assert [c["idempotency_key"] for c in world.committed("pay_unheard", Operation.VOID)] == ["pay_unheard:void"]
