"""The local Stripe server's own behaviour, over HTTP (real processes): Stripe's idempotency semantics (replay,
conflicts, keys in use, what is not saved), search, the decline shape, state checks, the call log, the webhook
relay, a restart that keeps its state, and the front started on its own."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.stack.process import LOOPBACK, free_port, terminate, wait_for_port
from local.stripe.front import SEARCH_URL
from local.testing.stripe_server import PROJECT_ROOT, running_stripe_server, stripe_server_process
from steps.gateway.notices import GatewayNotice, NoticeKind
from steps.gateway.stripe import StripeGateway

API_KEY = "sk_test_paysaga_local"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SLOW_MS = 1_000  # a wide window for the concurrent-key test
CALL_FIELDS = {
    "seq",
    "at_ms",
    "operation",
    "payment_id",
    "idempotency_key",
    "amount_minor",
    "http_status",
    "outcome",
    "replayed",
    "committed",
}


@pytest.fixture(scope="session")
def stripe_base() -> Iterator[str]:
    with running_stripe_server("--slow-ms", str(SLOW_MS)) as url:
        yield url


@pytest.fixture
def client(stripe_base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stripe_base, headers=AUTH, timeout=5.0) as http:
        yield http


@pytest.fixture
def payment_id() -> str:
    return f"pay_{uuid.uuid4().hex[:16]}"


def intent_form(payment_id: str, token: str = "pm_card_visa", amount: int = 5_000) -> dict[str, str]:
    return {
        "amount": str(amount),
        "currency": "eur",
        "confirm": "true",
        "capture_method": "manual",
        "payment_method": token,
        "metadata[payment_id]": payment_id,
    }


def create(client: httpx.Client, payment_id: str, key: str | None = None, **form: str) -> httpx.Response:
    headers = {"Idempotency-Key": key or payment_id}
    return client.post("/v1/payment_intents", data={**intent_form(payment_id), **form}, headers=headers)


def calls(client: httpx.Client, payment_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get("/_calls", params={"payment_id": payment_id}).json()["calls"]
    return rows


def test_health(client: httpx.Client) -> None:
    response = client.get("/_health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_the_first_answer_is_replayed_with_the_header(client: httpx.Client, payment_id: str) -> None:
    first = create(client, payment_id)
    second = create(client, payment_id)
    assert (first.status_code, second.status_code) == (200, 200)
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["idempotency-key"] == payment_id
    assert second.json() == first.json()
    assert first.json()["status"] == "requires_capture"
    assert first.json()["amount_capturable"] == 5_000


def test_the_same_key_with_other_parameters_or_endpoint_is_an_idempotency_error(
    client: httpx.Client, payment_id: str
) -> None:
    intent = create(client, payment_id).json()
    other = create(client, payment_id, amount="4999")
    assert other.status_code == 400
    assert other.json()["error"]["type"] == "idempotency_error"
    assert "same parameters" in other.json()["error"]["message"]
    elsewhere = client.post(f"/v1/payment_intents/{intent['id']}/capture", headers={"Idempotency-Key": payment_id})
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["type"] == "idempotency_error"
    assert "same endpoint" in elsewhere.json()["error"]["message"]
    assert client.get(f"/v1/payment_intents/{intent['id']}").json()["status"] == "requires_capture"


def test_a_validation_failure_is_not_saved_under_its_key(client: httpx.Client, payment_id: str) -> None:
    refused = create(client, payment_id, amount="0")
    assert refused.status_code == 400
    accepted = create(client, payment_id)  # the same key, now valid: it runs
    assert accepted.status_code == 200 and "idempotent-replayed" not in accepted.headers


def test_a_key_longer_than_255_characters_is_refused(client: httpx.Client, payment_id: str) -> None:
    response = create(client, payment_id, key="k" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_request_while_another_with_its_key_runs_is_a_409(client: httpx.Client, payment_id: str) -> None:
    """Two requests with one key at once: the slow token holds the first for SLOW_MS, the other meets it."""
    start = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def attempt() -> None:
        start.wait()
        answers.append(create(client, payment_id, payment_method="pm_card_visa_slow"))

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(answer.status_code for answer in answers) == [200, 409]
    in_use = next(answer for answer in answers if answer.status_code == 409)
    assert in_use.json()["error"]["code"] == "idempotency_key_in_use"
    assert [(row["outcome"], row["committed"]) for row in calls(client, payment_id)] == [
        ("idempotency_key_in_use", False),
        ("authorized", True),
    ]
    assert create(client, payment_id, payment_method="pm_card_visa_slow").headers["idempotent-replayed"] == "true"


def test_a_decline_has_stripes_card_error_shape_and_is_replayed(client: httpx.Client, payment_id: str) -> None:
    response = create(client, payment_id, payment_method="pm_card_chargeDeclinedFraudulent")
    assert response.status_code == 402
    error = response.json()["error"]
    assert (error["type"], error["code"], error["decline_code"]) == ("card_error", "card_declined", "fraudulent")
    assert error["message"] and error["charge"].startswith("ch_")
    intent = error["payment_intent"]
    assert (intent["object"], intent["status"], intent["metadata"]) == (
        "payment_intent",
        "requires_payment_method",
        {"payment_id": payment_id},
    )
    assert intent["last_payment_error"]["decline_code"] == "fraudulent"
    replay = create(client, payment_id, payment_method="pm_card_chargeDeclinedFraudulent")
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (402, "true")
    assert [(row["outcome"], row["committed"], row["replayed"]) for row in calls(client, payment_id)] == [
        ("declined", True, False),
        ("declined", False, True),
    ]


def test_search_finds_by_payment_id_newest_first(client: httpx.Client, payment_id: str) -> None:
    older = create(client, payment_id, key=payment_id + "-a").json()
    newer = create(client, payment_id, key=payment_id + "-b").json()
    create(client, payment_id + "-someone-else")
    found = client.get(SEARCH_URL, params={"query": f"metadata['payment_id']:'{payment_id}'"})
    assert found.status_code == 200
    body = found.json()
    assert {key: body[key] for key in ("object", "url", "has_more", "next_page")} == {
        "object": "search_result",
        "url": SEARCH_URL,
        "has_more": False,
        "next_page": None,
    }
    assert [intent["id"] for intent in body["data"]] == [newer["id"], older["id"]]
    limited = client.get(SEARCH_URL, params={"query": f'metadata["payment_id"]:"{payment_id}"', "limit": "1"}).json()
    assert ([intent["id"] for intent in limited["data"]], limited["has_more"]) == ([newer["id"]], True)
    nothing = client.get(SEARCH_URL, params={"query": "metadata['payment_id']:'pay_nobody'"}).json()
    assert (nothing["object"], nothing["data"]) == ("search_result", [])


def test_search_refuses_other_queries_and_anonymous_callers(client: httpx.Client, stripe_base: str) -> None:
    unsupported = client.get(SEARCH_URL, params={"query": "status:'succeeded'"})
    assert (unsupported.status_code, unsupported.json()["error"]["param"]) == (400, "query")
    anonymous = httpx.get(stripe_base + SEARCH_URL, params={"query": "metadata['payment_id']:'x'"})
    assert anonymous.status_code == 401


def test_capture_and_refund_follow_stripes_state_rules(client: httpx.Client, payment_id: str) -> None:
    intent = create(client, payment_id).json()
    capture_path = f"/v1/payment_intents/{intent['id']}/capture"
    captured = client.post(
        capture_path, data={"amount_to_capture": "3000"}, headers={"Idempotency-Key": "c1" + payment_id}
    )
    assert captured.status_code == 200
    body = captured.json()
    assert (body["status"], body["amount_received"], body["latest_charge"]["amount_captured"]) == (
        "succeeded",
        3000,
        3000,
    )
    again = client.post(capture_path, headers={"Idempotency-Key": "c2" + payment_id})
    assert (again.status_code, again.json()["error"]["code"]) == (400, "payment_intent_unexpected_state")
    refund = {"payment_intent": intent["id"], "amount": "3001"}
    too_much = client.post("/v1/refunds", data=refund, headers={"Idempotency-Key": "r1" + payment_id})
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (400, "amount_too_large")
    refunded = client.post(
        "/v1/refunds", data={**refund, "amount": "3000"}, headers={"Idempotency-Key": "r2" + payment_id}
    )
    assert (refunded.status_code, refunded.json()["status"]) == (200, "succeeded")
    done = client.post("/v1/refunds", data={**refund, "amount": "1"}, headers={"Idempotency-Key": "r3" + payment_id})
    assert (done.status_code, done.json()["error"]["code"]) == (400, "charge_already_refunded")


def test_the_call_log_has_the_sandboxs_rows(client: httpx.Client, payment_id: str) -> None:
    intent = create(client, payment_id).json()
    client.post(f"/v1/payment_intents/{intent['id']}/cancel", headers={"Idempotency-Key": payment_id + ":void"})
    rows = calls(client, payment_id)
    assert all(set(row) == CALL_FIELDS for row in rows)
    assert [
        (
            row["operation"],
            row["payment_id"],
            row["idempotency_key"],
            row["amount_minor"],
            row["http_status"],
            row["outcome"],
            row["replayed"],
            row["committed"],
        )
        for row in rows
    ] == [
        ("authorize", payment_id, payment_id, 5_000, 200, "authorized", False, True),
        ("void", payment_id, payment_id + ":void", None, 200, "voided", False, True),
    ]
    assert rows[0]["seq"] < rows[1]["seq"] and rows[0]["at_ms"] <= rows[1]["at_ms"]
    everyone = client.get("/_calls").json()["calls"]
    assert {row["payment_id"] for row in everyone} >= {payment_id}


class _Receiver(BaseHTTPRequestHandler):
    """The API's webhook route, as a real HTTP server: keeps what it receives."""

    received: list[tuple[bytes, dict[str, str]]]
    arrived: threading.Condition

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        with self.arrived:
            self.received.append((body, headers))
            self.arrived.notify_all()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def test_webhooks_are_signed_events_that_map_to_notices() -> None:
    """localstripe's events (completed) and the ones it lacks reach the endpoint signed; the adapter reads them all."""
    secret = "whsec_local_test"
    received: list[tuple[bytes, dict[str, str]]] = []
    arrived = threading.Condition()
    handler = type("Receiver", (_Receiver,), {"received": received, "arrived": arrived})
    receiver = ThreadingHTTPServer((LOOPBACK, 0), handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        with running_stripe_server() as url, httpx.Client(base_url=url, headers=AUTH, timeout=5.0) as client:
            hook = {"url": f"http://{LOOPBACK}:{receiver.server_address[1]}/v1/webhooks/stripe", "secret": secret}
            assert client.post("/_config/webhooks/api", data=hook).status_code == 200
            paid, voided, declined = "pay_wh_paid", "pay_wh_void", "pay_wh_declined"
            intent = create(client, paid).json()
            capture = f"/v1/payment_intents/{intent['id']}/capture"
            client.post(capture, data={"amount_to_capture": "4000"}, headers={"Idempotency-Key": paid + ":capture"})
            refund = client.post(
                "/v1/refunds",
                data={"payment_intent": intent["id"], "amount": "1000"},
                headers={"Idempotency-Key": paid + ":refund"},
            ).json()
            other = create(client, voided).json()
            client.post(f"/v1/payment_intents/{other['id']}/cancel", headers={"Idempotency-Key": voided + ":void"})
            create(client, declined, payment_method="pm_card_chargeDeclinedInsufficientFunds")
            with arrived:  # localstripe sends its own events about a second later
                assert arrived.wait_for(lambda: len(received) >= 6, timeout=15), [h for _, h in received]
        with StripeGateway(api_key=API_KEY, timeout_ms=1_000, webhook_secret=secret) as adapter:
            notices = [notice for body, headers in received for notice in adapter.read_webhook(body, headers)]
    finally:
        receiver.shutdown()
        receiver.server_close()
    by_kind: dict[NoticeKind, GatewayNotice] = {notice.kind: notice for notice in notices}
    assert set(by_kind) == {
        NoticeKind.AUTHORISED,
        NoticeKind.CAPTURED,
        NoticeKind.REFUNDED,
        NoticeKind.CANCELLED,
        NoticeKind.AUTHORISATION_FAILED,
    }
    assert (by_kind[NoticeKind.CAPTURED].payment_id, by_kind[NoticeKind.CAPTURED].amount_minor) == (paid, 4000)
    assert by_kind[NoticeKind.CAPTURED].gateway_reference == intent["id"]
    assert by_kind[NoticeKind.REFUNDED].gateway_reference == intent["id"]
    assert by_kind[NoticeKind.REFUNDED].operation_reference == refund["id"]  # the latest refund, not the release
    assert (by_kind[NoticeKind.CANCELLED].payment_id, by_kind[NoticeKind.CANCELLED].amount_minor) == (voided, 5_000)
    failed = by_kind[NoticeKind.AUTHORISATION_FAILED]
    assert (failed.payment_id, failed.reason) == (declined, "insufficient_funds")
    assert len({notice.event_id for notice in notices}) == len(notices)


def test_a_restart_keeps_the_state_and_does_not_rearm_a_fault(tmp_path: Path) -> None:
    port, payment_id = free_port(), "pay_restart"
    body = intent_form(payment_id, "pm_card_visa_timeoutBeforeSend")
    headers = {**AUTH, "Idempotency-Key": payment_id}
    with stripe_server_process(tmp_path, port=port) as url:
        with pytest.raises(httpx.ReadTimeout):  # the fault fires: nothing processed
            httpx.post(url + "/v1/payment_intents", data=body, headers=headers, timeout=0.3)
        kept = httpx.post(
            url + "/v1/payment_intents", data=intent_form("pay_kept"), headers={**AUTH, "Idempotency-Key": "pay_kept"}
        ).json()
    with stripe_server_process(tmp_path, port=port) as url, httpx.Client(base_url=url, headers=AUTH) as client:
        retry = client.post("/v1/payment_intents", data=body, headers={"Idempotency-Key": payment_id}, timeout=5)
        assert (retry.status_code, retry.json()["status"]) == (200, "requires_capture")  # not dropped again
        assert [row["outcome"] for row in calls(client, payment_id)] == ["dropped_before_processing", "authorized"]
        replay = create(client, "pay_kept")
        assert (replay.headers["idempotent-replayed"], replay.json()["id"]) == ("true", kept["id"])
        assert client.get(f"/v1/payment_intents/{kept['id']}").json()["status"] == "requires_capture"
        found = client.get(SEARCH_URL, params={"query": "metadata['payment_id']:'pay_kept'"}).json()
        assert [intent["id"] for intent in found["data"]] == [kept["id"]]


def test_the_front_runs_on_its_own_before_a_localstripe(tmp_path: Path) -> None:
    upstream_port, front_port = free_port(), free_port()
    with stripe_server_process(tmp_path / "server", "--upstream-port", str(upstream_port)):
        command = [
            sys.executable,
            "-m",
            "local.stripe.front",
            "--host",
            LOOPBACK,
            "--port",
            str(front_port),
            "--upstream",
            f"http://{LOOPBACK}:{upstream_port}",
        ]
        with (tmp_path / "front.log").open("ab") as log:
            front = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=log, start_new_session=True)
        try:
            wait_for_port(front_port, "the Stripe front", pid=front.pid)
            with httpx.Client(base_url=f"http://{LOOPBACK}:{front_port}", headers=AUTH) as client:
                assert client.get("/_health").status_code == 200
                first, second = create(client, "pay_front"), create(client, "pay_front")
                assert (first.status_code, second.headers["idempotent-replayed"]) == (200, "true")
                assert json.loads(second.content)["id"] == first.json()["id"]
        finally:
            terminate(front.pid)
            front.wait()
