"""Merchant webhooks against PostgreSQL and a real receiver on loopback: the hand-off, the signed request as the
merchant verifies it, retries along the schedule (an injectable clock: nothing sleeps through it), the last attempt,
rotation's overlap, resend, and the SSRF guard at delivery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine

from core import limits, observability
from core import telemetry_names as names
from saga.notifications.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    DeliveryReport,
    create_endpoint,
    deliver_due,
    enqueue_deliveries,
    remove_endpoint,
    resend_event,
    resend_failed,
    rotate_endpoint_secret,
)
from store import webhooks as records
from store.outbox import OutboxEvent, event_message
from store.schema import webhook_endpoints
from tests.integration.saga.webhook_support import Clock, make_event, receiver, verify
from tests.integration.store.support import make_merchant
from tests.telemetry_support import EMF_ON, log_lines, named

HALF = 0.5  # the jitter draw: half of the 10 % stretch


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _deliver(engine: Engine, http: httpx.Client, clock: Clock, **kwargs: object) -> DeliveryReport:
    return deliver_due(engine, http=http, clock=clock, allow_loopback=True, jitter=lambda: HALF, **kwargs)  # type: ignore[arg-type]


def _setup(engine: Engine, url: str, clock: Clock) -> tuple[OutboxEvent, str, str]:
    """(an event handed over to one endpoint at `url`, the endpoint id, its secret)."""
    with engine.begin() as conn:
        event = make_event(conn)
        endpoint, secret = create_endpoint(conn, merchant_id=event.payload["merchant_id"], url=url,
                                           allow_loopback=True)
        assert enqueue_deliveries(conn, event, clock=clock) == 1
    return event, endpoint.id, secret


def _delivery(engine: Engine, event: OutboxEvent, endpoint_id: str) -> records.Delivery:
    with engine.connect() as conn:
        delivery = records.get_delivery(conn, event_id=event.id, endpoint_id=endpoint_id)
    assert delivery is not None
    return delivery


def _attempts(engine: Engine, delivery_id: int) -> list[records.Attempt]:
    with engine.connect() as conn:
        return records.attempts_of(conn, delivery_ids=[delivery_id])


def _ms(at: datetime) -> int:
    return round(at.timestamp() * 1000)


def test_500_twice_then_200_is_three_attempts_of_one_signed_body(engine: Engine, http: httpx.Client,
                                                                  clock: Clock) -> None:
    with receiver([500, 500, 200]) as hook:
        event, endpoint_id, secret = _setup(engine, hook.url, clock)
        first = _deliver(engine, http, clock)
        assert first.claimed == 1 and len(first.retrying) == 1
        delivery = _delivery(engine, event, endpoint_id)
        assert delivery.status == "pending" and delivery.attempts == 1
        # The schedule's first wait, stretched by the jitter drawn (half of 10 %).
        assert _ms(delivery.next_attempt_at) - clock.ms == round(limits.WEBHOOK_RETRY_SCHEDULE_S[0] * 1000 * 1.05)

        clock.advance(seconds=30)  # not due yet
        assert _deliver(engine, http, clock).claimed == 0
        clock.advance(seconds=40)
        assert len(_deliver(engine, http, clock).retrying) == 1
        clock.advance(seconds=limits.WEBHOOK_RETRY_SCHEDULE_S[1] * 1.1)
        assert len(_deliver(engine, http, clock).succeeded) == 1
        clock.advance(seconds=3 * 86_400)
        assert _deliver(engine, http, clock).claimed == 0  # delivered: never sent again

    assert len(hook.requests) == 3
    body = event_message(event).encode("utf-8")
    for request in hook.requests:
        assert request.body == body  # the same bytes every time
        assert request.headers[EVENT_ID_HEADER] == event.id
        assert request.headers["Content-Type"] == "application/json"
        header = request.headers[SIGNATURE_HEADER]
        assert verify(header, request.body, secret, now=request.at)  # as the merchant checks it, on arrival
        assert header.count("v1=") == 1
        assert not verify(header, request.body, "whsec_not_the_secret", now=request.at)
        assert not verify(header, request.body.replace(b"1999", b"9999"), secret, now=request.at)
        assert not verify(header, request.body, secret, now=request.at + 301)  # a replay after the tolerance
    delivery = _delivery(engine, event, endpoint_id)
    assert delivery.status == "succeeded" and delivery.attempts == 3 and delivery.last_status_code == 200
    attempts = _attempts(engine, delivery.id)
    assert [(a.status_code, a.error) for a in attempts] == [(500, "HTTP 500"), (500, "HTTP 500"), (200, None)]
    assert all(a.latency_ms >= 0 for a in attempts)
    assert attempts[0].attempted_at < attempts[1].attempted_at < attempts[2].attempted_at


def test_a_timeout_is_a_failed_attempt(engine: Engine, http: httpx.Client, clock: Clock) -> None:
    with receiver([200], delay_s=1.0) as hook:
        event, endpoint_id, _ = _setup(engine, hook.url, clock)
        report = _deliver(engine, http, clock, timeout_ms=200)
    assert len(report.retrying) == 1 and len(hook.requests) == 1
    delivery = _delivery(engine, event, endpoint_id)
    assert delivery.status == "pending" and delivery.attempts == 1 and delivery.last_status_code is None
    (attempt,) = _attempts(engine, delivery.id)
    assert attempt.status_code is None and attempt.error is not None and "timeout" in attempt.error
    assert attempt.latency_ms >= 150


def test_a_connection_refused_is_a_failed_attempt(engine: Engine, http: httpx.Client, clock: Clock) -> None:
    with receiver([200]) as hook:
        url = hook.url
    event, endpoint_id, _ = _setup(engine, url, clock)  # nothing listens there any more
    assert len(_deliver(engine, http, clock).retrying) == 1
    (attempt,) = _attempts(engine, _delivery(engine, event, endpoint_id).id)
    assert attempt.status_code is None and attempt.error is not None and "Connect" in attempt.error


def test_the_last_attempt_marks_the_delivery_failed_logs_and_counts_it(
        engine: Engine, http: httpx.Client, clock: Clock, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EMF_ON.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    with receiver([503]) as hook:
        event, endpoint_id, _ = _setup(engine, hook.url, clock)
        waits = []
        for attempt in range(1, limits.WEBHOOK_MAX_ATTEMPTS + 1):
            capsys.readouterr()
            with observability.invocation("webhook delivery", None, service=names.SERVICE_WEBHOOK_DELIVERY):
                report = _deliver(engine, http, clock)
            delivery = _delivery(engine, event, endpoint_id)
            assert delivery.attempts == attempt
            if attempt < limits.WEBHOOK_MAX_ATTEMPTS:
                assert len(report.retrying) == 1 and delivery.status == "pending"
                waits.append(_ms(delivery.next_attempt_at) - clock.ms)
                clock.ms = _ms(delivery.next_attempt_at)
        out = capsys.readouterr().out
    assert report.failed == [delivery.id] and delivery.status == "failed"
    assert len(hook.requests) == limits.WEBHOOK_MAX_ATTEMPTS
    assert waits == [round(s * 1000 * 1.05) for s in limits.WEBHOOK_RETRY_SCHEDULE_S]
    assert 20 * 3_600_000 <= sum(waits) <= 30 * 3_600_000  # about a day
    (line,) = [line for line in log_lines(out) if line["message"] == names.WEBHOOK_DELIVERY_FAILED_MESSAGE]
    assert line["level"] == "ERROR" and line["event_id"] == event.id and line["endpoint_id"] == endpoint_id
    (failed,) = named(out, names.WEBHOOK_DELIVERIES_FAILED)
    assert failed.values == [1.0] and failed.dimensions == {}
    clock.advance(seconds=7 * 86_400)
    assert _deliver(engine, http, clock).claimed == 0  # given up: nothing more is sent

    with receiver([200]) as healed:  # the merchant fixed their endpoint: resend what failed
        with engine.begin() as conn:
            conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id)
                         .values(url=healed.url))
            assert resend_failed(conn, endpoint_id, clock=clock) == [delivery.id]
        assert len(_deliver(engine, http, clock).succeeded) == 1
    assert len(healed.requests) == 1 and healed.requests[0].body == event_message(event).encode()
    assert healed.requests[0].headers[EVENT_ID_HEADER] == event.id


def test_rotation_signs_with_both_secrets_during_the_overlap_then_with_the_new_one(
        engine: Engine, http: httpx.Client, clock: Clock) -> None:
    with receiver([200]) as hook:
        event, endpoint_id, old = _setup(engine, hook.url, clock)
        with engine.begin() as conn:
            new = rotate_endpoint_secret(conn, endpoint_id=endpoint_id, overlap_hours=1, clock=clock)
        assert new is not None and new != old
        assert len(_deliver(engine, http, clock).succeeded) == 1
        clock.advance(seconds=3_601)
        with engine.begin() as conn:
            assert resend_event(conn, event.id, clock=clock) == [_delivery(engine, event, endpoint_id).id]
        assert len(_deliver(engine, http, clock).succeeded) == 1
    during, after = hook.requests
    assert during.headers[SIGNATURE_HEADER].count("v1=") == 2
    assert verify(during.headers[SIGNATURE_HEADER], during.body, new)
    assert verify(during.headers[SIGNATURE_HEADER], during.body, old)
    assert after.headers[SIGNATURE_HEADER].count("v1=") == 1
    assert verify(after.headers[SIGNATURE_HEADER], after.body, new)
    assert not verify(after.headers[SIGNATURE_HEADER], after.body, old)
    assert during.body == after.body and after.headers[EVENT_ID_HEADER] == event.id


def test_the_hand_off_is_idempotent_and_goes_to_each_enabled_endpoint(engine: Engine, clock: Clock) -> None:
    with engine.begin() as conn:
        event = make_event(conn)
        merchant_id = event.payload["merchant_id"]
        one, _ = create_endpoint(conn, merchant_id=merchant_id, url="http://127.0.0.1:9/a", allow_loopback=True)
        two, _ = create_endpoint(conn, merchant_id=merchant_id, url="http://127.0.0.1:9/b", allow_loopback=True)
        gone, _ = create_endpoint(conn, merchant_id=merchant_id, url="http://127.0.0.1:9/c", allow_loopback=True)
        other, _ = create_endpoint(conn, merchant_id=make_merchant(conn), url="http://127.0.0.1:9/d",
                                   allow_loopback=True)
        assert remove_endpoint(conn, endpoint_id=gone.id)
        assert not remove_endpoint(conn, endpoint_id=gone.id)
        assert enqueue_deliveries(conn, event, clock=clock) == 2
        assert enqueue_deliveries(conn, event, clock=clock) == 0  # handed over twice: nothing new
        assert sorted(d.endpoint_id for d in records.deliveries_of_event(conn, event_id=event.id)) == sorted(
            [one.id, two.id])
        assert other.id not in {d.endpoint_id for d in records.deliveries_of_event(conn, event_id=event.id)}
        assert enqueue_deliveries(conn, _without_merchant(event), clock=clock) == 0


def _without_merchant(event: OutboxEvent) -> OutboxEvent:
    return OutboxEvent(id=event.id, payment_id=event.payment_id, event_type=event.event_type, payload={},
                       created_at=event.created_at, sent_at=event.sent_at, attempts=event.attempts,
                       operation_id=event.operation_id)


def test_resend_of_one_event_to_one_endpoint_and_claims_are_not_sent_twice(
        engine: Engine, http: httpx.Client, clock: Clock) -> None:
    with receiver([200]) as hook:
        event, endpoint_id, _ = _setup(engine, hook.url, clock)
        with engine.begin() as conn:
            claimed = records.claim_due(conn, now=datetime.fromtimestamp(clock.ms / 1000, UTC),
                                        claim_until=datetime.fromtimestamp((clock.ms + 600_000) / 1000, UTC),
                                        limit=10)
        assert [c.delivery.event_id for c in claimed] == [event.id]
        assert _deliver(engine, http, clock).claimed == 0  # another sender holds the claim
        clock.advance(seconds=601)  # that sender died: the claim lapsed
        assert len(_deliver(engine, http, clock).succeeded) == 1
        with engine.begin() as conn:
            assert resend_event(conn, event.id, endpoint_id, clock=clock) == [claimed[0].delivery.id]
            assert resend_event(conn, "01NOSUCHEVENT000000000000", clock=clock) == []
        assert len(_deliver(engine, http, clock).succeeded) == 1
    assert len(hook.requests) == 2 and hook.requests[0].body == hook.requests[1].body
    assert _delivery(engine, event, endpoint_id).attempts == 1  # a resend starts the schedule afresh


def test_delivery_checks_the_address_again(engine: Engine, http: httpx.Client, clock: Clock) -> None:
    """An endpoint allowed when it was made is refused at delivery when its host now resolves to a private address
    (or loopback is no longer allowed): the attempt fails, nothing is sent."""
    with receiver([200]) as hook:
        event, endpoint_id, _ = _setup(engine, hook.url, clock)
        report = deliver_due(engine, http=http, clock=clock, allow_loopback=False, jitter=lambda: HALF)
    assert len(report.retrying) == 1 and hook.requests == []
    (attempt,) = _attempts(engine, _delivery(engine, event, endpoint_id).id)
    assert attempt.status_code is None and attempt.error is not None and "loopback" in attempt.error

    with engine.begin() as conn:
        endpoint, _ = create_endpoint(conn, merchant_id=event.payload["merchant_id"],
                                      url="https://hooks.example.test/paysaga", allow_loopback=False,
                                      resolve=lambda host, port: ["93.184.216.34"])
        assert resend_event(conn, event.id, endpoint.id, clock=clock)
    report = deliver_due(engine, http=http, clock=clock, allow_loopback=False, jitter=lambda: HALF,
                         resolve=lambda host, port: ["10.0.0.7"])  # DNS now points inside
    assert report.claimed == 1 and len(report.retrying) == 1
    (attempt,) = _attempts(engine, _delivery(engine, event, endpoint.id).id)
    assert attempt.error is not None and "private" in attempt.error and "10.0.0.7" in attempt.error


def test_the_secret_never_shows_in_an_endpoint_s_repr(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant_id = make_merchant(conn)
        endpoint, secret = create_endpoint(conn, merchant_id=merchant_id, url="http://127.0.0.1:9/x",
                                           allow_loopback=True)
        assert secret.startswith("whsec_") and endpoint.secret == secret
        assert secret not in repr(endpoint)
        with pytest.raises(ValueError, match="merchant_id"):
            create_endpoint(conn, merchant_id="mer_nobody", url="http://127.0.0.1:9/x", allow_loopback=True)
        with pytest.raises(ValueError, match="url"):
            create_endpoint(conn, merchant_id=merchant_id, url="http://127.0.0.1:9/x", allow_loopback=False)


def test_the_request_goes_to_the_address_checked_with_the_name_as_host(engine: Engine, http: httpx.Client,
                                                                        clock: Clock) -> None:
    """No second lookup between the check and the connection (DNS rebinding): a name the resolver maps to the
    receiver's address reaches it (no DNS knows the name), and the request names the host as the URL does."""
    with receiver([200]) as hook:
        port = hook.url.split(":")[2].split("/")[0]
        url = f"http://hooks.rebinding.test:{port}/hooks/paysaga"
        with engine.begin() as conn:
            event = make_event(conn)
            endpoint, secret = create_endpoint(conn, merchant_id=event.payload["merchant_id"], url=url,
                                               allow_loopback=True, resolve=lambda host, p: ["127.0.0.1"])
            assert enqueue_deliveries(conn, event, clock=clock) == 1
        report = deliver_due(engine, http=http, clock=clock, allow_loopback=True,
                             resolve=lambda host, p: ["127.0.0.1"])
    assert len(report.succeeded) == 1, _attempts(engine, _delivery(engine, event, endpoint.id).id)
    (request,) = hook.requests
    assert request.headers["Host"] == f"hooks.rebinding.test:{port}"
    assert verify(request.headers[SIGNATURE_HEADER], request.body, secret, now=request.at)
