"""Merchant webhooks: endpoints with their signing secrets, the delivery of each event to each endpoint, with retries.

- The hand-off (`enqueue_deliveries`): the notifications consumer calls it inside its transaction; one pending delivery
  per enabled endpoint of the event's merchant, made once per (event, endpoint). Once committed, the webhook target
  took the event: from here on this module delivers it.
- The sender (`deliver_due`; `handler`, scheduled every minute on AWS): claims due deliveries (FOR UPDATE SKIP LOCKED,
  a bounded batch) and commits, then POSTs each outside any transaction, then records the attempt. The body is the
  event's one JSON form (store.outbox.event_message: the same bytes on every attempt), with the headers
  `Content-Type: application/json`, `Paysaga-Event-Id: <event id>` and
  `Paysaga-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the endpoint's secret>` (a second
  `v1=` with the previous secret while a rotation's overlap lasts). Any answer other than 2xx within the timeout
  (WEBHOOK_TIMEOUT_MS), a redirect included, a timeout or a connection error is a failed attempt: the next is due
  after core.limits.WEBHOOK_RETRY_SCHEDULE_S (1 min, 5 min, 30 min, 2 h, 6 h, 12 h; plus up to 10 % jitter); after
  the last (WEBHOOK_MAX_ATTEMPTS) the delivery is failed, an error line (telemetry_names.
  WEBHOOK_DELIVERY_FAILED_MESSAGE) is logged and WEBHOOK_DELIVERIES_FAILED counted. Every attempt is recorded.
- Resend (`resend_event`, `resend_failed`): deliveries back to pending, due now, with the whole schedule again.
- Server-side request forgery: an endpoint's URL must be http(s) and its host must resolve to public addresses only,
  checked when it is made and again before each attempt (DNS can change); WEBHOOKS_ALLOW_LOOPBACK lets loopback
  through (the local stack, tests).

Secrets are never logged: log lines name the endpoint by id (a URL's query may hold a merchant's token, so not even
the URL is logged).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine
from ulid import ULID

from core import limits, observability
from core import telemetry_names as names
from core.clock import ClockMs, wall_clock_ms
from core.db import engine as db_engine
from core.settings import settings
from store import webhooks as records
from store.merchants import get_merchant
from store.outbox import OutboxEvent, event_message
from store.webhooks import Claimed, Endpoint

__all__ = [
    "DEFAULT_OVERLAP_HOURS",
    "SIGNATURE_HEADER",
    "DeliveryReport",
    "WebhookUrlRejected",
    "check_url",
    "create_endpoint",
    "deliver_due",
    "enqueue_deliveries",
    "handler",
    "remove_endpoint",
    "resend_event",
    "resend_failed",
    "rotate_endpoint_secret",
    "sign",
]

logger = observability.logger(names.SERVICE_WEBHOOK_DELIVERY)

SIGNATURE_HEADER = "Paysaga-Signature"
EVENT_ID_HEADER = "Paysaga-Event-Id"
SECRET_PREFIX = "whsec_"  # noqa: S105  (a prefix, not a secret)
ENDPOINT_PREFIX = "we_"
DEFAULT_OVERLAP_HOURS = 24
MAX_OVERLAP_HOURS = 24 * 7
MAX_URL_LENGTH = 2_048
MAX_ERROR_CHARS = 500
USER_AGENT = "paysaga-webhooks/1"

Resolver = Callable[[str, int], Sequence[str]]


class WebhookUrlRejected(ValueError):
    """An endpoint URL we will not send to; the message names `url` and why."""


# ---- signing ---------------------------------------------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def sign(body: bytes, timestamp: int, keys: Sequence[str]) -> str:
    """`t=<timestamp>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with one v1 per key, the current secret first."""
    signed = str(timestamp).encode("ascii") + b"." + body
    parts = [f"t={timestamp}"] + [
        "v1=" + hmac.new(key.encode("utf-8"), signed, hashlib.sha256).hexdigest() for key in keys]
    return ",".join(parts)


# ---- server-side request forgery ------------------------------------------------------------------------------------


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why this address is not one we send to, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    for kind, refused in (("an unspecified", ip.is_unspecified), ("a link-local", ip.is_link_local),
                          ("a multicast", ip.is_multicast), ("a reserved", ip.is_reserved),
                          ("a private", ip.is_private), ("a non-public", not ip.is_global)):
        if refused:
            return f"{kind} address"
    return None


def check_url(url: str, *, allow_loopback: bool, resolve: Resolver = _resolve) -> list[str]:
    """Refuse (WebhookUrlRejected naming `url`) anything but an http(s) URL whose host resolves only to public
    addresses (loopback too when `allow_loopback`). The addresses checked."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookUrlRejected(f"url must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise WebhookUrlRejected(f"url is malformed: {error}") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlRejected("url must be an http:// or https:// URL")
    if not parts.hostname:
        raise WebhookUrlRejected("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlRejected("url must not carry credentials (user:password@)")
    host = parts.hostname
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = list(resolve(host, port or (443 if parts.scheme == "https" else 80)))
        except (OSError, UnicodeError) as error:
            raise WebhookUrlRejected(f"url's host {host!r} does not resolve: {error}") from None
    if not addresses:
        raise WebhookUrlRejected(f"url's host {host!r} does not resolve")
    for address in addresses:
        why = _refusal(address, allow_loopback=allow_loopback)
        if why is not None:
            raise WebhookUrlRejected(f"url's host {host!r} resolves to {why} ({address}): webhooks are sent only "
                                     "to public addresses")
    return addresses


# ---- endpoints -------------------------------------------------------------------------------------------------------


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def create_endpoint(conn: Connection, *, merchant_id: str, url: str, allow_loopback: bool,
                    resolve: Resolver = _resolve) -> tuple[Endpoint, str]:
    """(the endpoint, its secret: shown once). ValueError naming `merchant_id` or `url` when refused."""
    if get_merchant(conn, merchant_id=merchant_id) is None:
        raise ValueError(f"merchant_id: no merchant {merchant_id!r}")
    check_url(url, allow_loopback=allow_loopback, resolve=resolve)
    endpoint_id, secret = f"{ENDPOINT_PREFIX}{ULID()}", new_secret()
    records.insert_endpoint(conn, endpoint_id=endpoint_id, merchant_id=merchant_id, url=url, secret=secret)
    endpoint = records.get_endpoint(conn, endpoint_id=endpoint_id)
    assert endpoint is not None
    logger.info("webhook endpoint created", extra={"endpoint_id": endpoint_id, "merchant_id": merchant_id})
    return endpoint, secret


def remove_endpoint(conn: Connection, *, endpoint_id: str) -> bool:
    """Disable the endpoint: nothing more is sent to it. False when there is no such endpoint enabled."""
    removed = records.disable_endpoint(conn, endpoint_id=endpoint_id).applied
    if removed:
        logger.info("webhook endpoint removed", extra={"endpoint_id": endpoint_id})
    return removed


def rotate_endpoint_secret(conn: Connection, *, endpoint_id: str, overlap_hours: float = DEFAULT_OVERLAP_HOURS,
                           clock: ClockMs = wall_clock_ms) -> str | None:
    """A new secret (shown once); the one it replaces keeps signing beside it for `overlap_hours` (0: not at all).
    None when there is no such endpoint enabled."""
    if not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise ValueError(f"overlap_hours must be between 0 and {MAX_OVERLAP_HOURS}")
    secret = new_secret()
    expires = _datetime(clock()) + timedelta(hours=overlap_hours)
    if not records.rotate_secret(conn, endpoint_id=endpoint_id, secret=secret, previous_expires_at=expires).applied:
        return None
    logger.info("webhook secret rotated", extra={"endpoint_id": endpoint_id, "overlap_hours": overlap_hours})
    return secret


def secret_hint(secret: str) -> str:
    """What a list shows of a secret: its last 4 characters."""
    return "..." + secret[-4:]


# ---- the hand-off and resend ---------------------------------------------------------------------------------------


def enqueue_deliveries(conn: Connection, event: OutboxEvent, *, clock: ClockMs = wall_clock_ms) -> int:
    """The consumer's hand-off: one pending delivery of `event`, due now, to each enabled endpoint of its merchant
    (`event.payload["merchant_id"]`); an (event, endpoint) pair that has one already is left alone. How many were
    made. Committed with the caller's transaction."""
    merchant_id = event.payload.get("merchant_id")
    if not isinstance(merchant_id, str) or not merchant_id:
        logger.warning("event without a merchant: no webhook", extra={"event_id": event.id})
        return 0
    return records.insert_deliveries(conn, event_id=event.id, merchant_id=merchant_id, due_at=_datetime(clock()))


def resend_event(conn: Connection, event_id: str, endpoint_id: str | None = None, *,
                 clock: ClockMs = wall_clock_ms) -> list[int]:
    """Send the event again (same id, same body), now, to one endpoint or to every endpoint it went to; a delivery
    that was never made (an endpoint added since) is made. The ids of the deliveries put back to pending."""
    now = _datetime(clock())
    if endpoint_id is not None and records.get_delivery(conn, event_id=event_id, endpoint_id=endpoint_id) is None:
        endpoint = records.get_endpoint(conn, endpoint_id=endpoint_id)
        merchant_id = records.merchant_of_event(conn, event_id=event_id)
        if endpoint is not None and endpoint.disabled_at is None and endpoint.merchant_id == merchant_id:
            records.insert_deliveries(conn, event_id=event_id, merchant_id=merchant_id, due_at=now)
    put_back = records.reschedule(conn, due_at=now, event_id=event_id, endpoint_id=endpoint_id)
    logger.info("webhook resend", extra={"event_id": event_id, "endpoint_id": endpoint_id,
                                         "deliveries": len(put_back)})
    return put_back


def resend_failed(conn: Connection, endpoint_id: str, *, clock: ClockMs = wall_clock_ms) -> list[int]:
    """Send every failed delivery of the endpoint again, now. The ids put back to pending."""
    put_back = records.reschedule(conn, due_at=_datetime(clock()), endpoint_id=endpoint_id, only_failed=True)
    logger.info("webhook resend of failed deliveries", extra={"endpoint_id": endpoint_id,
                                                              "deliveries": len(put_back)})
    return put_back


# ---- the sender ------------------------------------------------------------------------------------------------------


@dataclass
class DeliveryReport:
    claimed: int = 0
    succeeded: list[int] = field(default_factory=list)  # delivery ids
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # gave up after the last attempt
    lost: list[int] = field(default_factory=list)  # the claim lapsed and another sender took it: nothing recorded


@dataclass(frozen=True)
class _Sent:
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300 and self.error is None


def _send(http: httpx.Client, claimed: Claimed, *, now: datetime, timeout_ms: int, allow_loopback: bool,
          resolve: Resolver) -> _Sent:
    """One attempt, outside any transaction. Never raises: whatever goes wrong is the attempt's error."""
    endpoint = claimed.endpoint
    started = time.perf_counter()

    def elapsed() -> int:
        return round((time.perf_counter() - started) * 1000)

    try:
        addresses = check_url(endpoint.url, allow_loopback=allow_loopback, resolve=resolve)
        url = httpx.URL(endpoint.url)
    except (WebhookUrlRejected, httpx.InvalidURL) as refused:
        return _Sent(None, elapsed(), f"refused: {refused}"[:MAX_ERROR_CHARS])
    body = event_message(claimed.event).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        # The connection goes to the address just checked, not to whatever a second lookup would answer (DNS
        # rebinding): the name travels in Host and, for TLS, as the SNI name the certificate is verified against.
        "Host": url.netloc.decode("ascii"),
        EVENT_ID_HEADER: claimed.event.id,
        SIGNATURE_HEADER: sign(body, int(time.time()), endpoint.secrets_at(now)),
    }
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    try:
        answer = http.post(url.copy_with(host=addresses[0]), content=body, headers=headers,
                           timeout=timeout_ms / 1000, follow_redirects=False, extensions=extensions)
    except httpx.TimeoutException:
        return _Sent(None, elapsed(), f"timeout: no answer within {timeout_ms} ms")
    except httpx.HTTPError as error:
        return _Sent(None, elapsed(), f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])
    except Exception as error:  # a bug or an odd URL must not stop the batch: it is this attempt's failure
        return _Sent(None, elapsed(), f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS])
    code = answer.status_code
    return _Sent(code, elapsed(), None if 200 <= code < 300 else f"HTTP {code}")


def _backoff_ms(attempts: int, jitter: Callable[[], float]) -> int:
    """The wait after the `attempts`-th failed attempt (1-based), jitter included."""
    base_s = limits.WEBHOOK_RETRY_SCHEDULE_S[attempts - 1]
    stretch = 1 + max(0.0, min(1.0, jitter())) * limits.WEBHOOK_RETRY_JITTER_PERCENT / 100
    return round(base_s * 1000 * stretch)


def _record(engine: Engine, claimed: Claimed, sent: _Sent, *, attempted_ms: int, jitter: Callable[[], float],
            report: DeliveryReport) -> None:
    delivery = claimed.delivery
    attempts = delivery.attempts + 1
    if sent.ok:
        outcome, next_ms = "succeeded", attempted_ms
    elif attempts >= limits.WEBHOOK_MAX_ATTEMPTS:
        outcome, next_ms = "failed", attempted_ms
    else:
        outcome, next_ms = "pending", attempted_ms + _backoff_ms(attempts, jitter)
    with engine.begin() as conn:
        recorded = records.record_attempt(
            conn, delivery_id=delivery.id, attempts_before=delivery.attempts, attempted_at=_datetime(attempted_ms),
            status_code=sent.status_code, latency_ms=max(sent.latency_ms, 0), error=sent.error, outcome=outcome,
            next_attempt_at=_datetime(next_ms))
    where = {"delivery_id": delivery.id, "event_id": delivery.event_id, "endpoint_id": delivery.endpoint_id,
             "merchant_id": claimed.endpoint.merchant_id, "attempts": attempts, "status_code": sent.status_code,
             "error": sent.error, "latency_ms": sent.latency_ms}
    if not recorded.applied:
        logger.warning("webhook attempt not recorded: another sender took the delivery", extra=where)
        report.lost.append(delivery.id)
    elif outcome == "succeeded":
        logger.info("webhook delivered", extra=where)
        report.succeeded.append(delivery.id)
    elif outcome == "failed":
        logger.error(names.WEBHOOK_DELIVERY_FAILED_MESSAGE, extra=where)
        observability.count(names.WEBHOOK_DELIVERIES_FAILED)
        report.failed.append(delivery.id)
    else:
        logger.warning("webhook attempt failed; retrying later",
                       extra={**where, "next_attempt_at": _datetime(next_ms).isoformat()})
        report.retrying.append(delivery.id)


def deliver_due(
    engine: Engine, *, http: httpx.Client, clock: ClockMs = wall_clock_ms, allow_loopback: bool = False,
    timeout_ms: int = limits.WEBHOOK_TIMEOUT_MS, limit: int = limits.WEBHOOK_BATCH,
    concurrency: int = limits.WEBHOOK_CONCURRENCY, jitter: Callable[[], float] = random.random,
    resolve: Resolver = _resolve,
) -> DeliveryReport:
    """One batch: claim at most `limit` deliveries due by `clock()` and commit; POST each (on up to `concurrency`
    threads, outside any transaction); record each attempt and what follows (module docstring). `clock` decides what
    is due and when the next attempt is (the signature's `t` is the real time of sending)."""
    assert limit > 0 and concurrency > 0 and timeout_ms > 0
    report = DeliveryReport()
    now_ms = clock()
    with engine.begin() as conn:
        batch = records.claim_due(conn, now=_datetime(now_ms), claim_until=_datetime(now_ms + limits.WEBHOOK_CLAIM_MS),
                                  limit=limit)
    report.claimed = len(batch)
    if not batch:
        return report
    now = _datetime(now_ms)

    def send(claimed: Claimed) -> _Sent:
        return _send(http, claimed, now=now, timeout_ms=timeout_ms, allow_loopback=allow_loopback, resolve=resolve)

    with ThreadPoolExecutor(max_workers=min(concurrency, len(batch)), thread_name_prefix="webhook") as pool:
        results = list(pool.map(send, batch))
    for claimed, sent in zip(batch, results, strict=True):  # recorded here: metrics belong to this invocation
        _record(engine, claimed, sent, attempted_ms=now_ms, jitter=jitter, report=report)
    return report


def handler(event: object, context: Any) -> dict[str, int]:
    """The sender on AWS: an EventBridge schedule invokes it every minute (WEBHOOK_DELIVERY_INTERVAL_MS). Sends batch
    after batch while full batches come back, within WEBHOOK_PASS_BUDGET_MS."""
    with observability.invocation("webhook delivery", context, service=names.SERVICE_WEBHOOK_DELIVERY):
        config = settings()
        engine = db_engine(config)
        started = time.monotonic()
        totals = {"claimed": 0, "succeeded": 0, "retrying": 0, "failed": 0, "lost": 0}
        with httpx.Client(headers={"User-Agent": USER_AGENT}) as http:
            while True:
                report = deliver_due(engine, http=http, allow_loopback=config.webhooks_allow_loopback,
                                     timeout_ms=config.webhook_timeout_ms)
                totals["claimed"] += report.claimed
                for key in ("succeeded", "retrying", "failed", "lost"):
                    totals[key] += len(getattr(report, key))
                if report.claimed < limits.WEBHOOK_BATCH or (
                        (time.monotonic() - started) * 1000 >= limits.WEBHOOK_PASS_BUDGET_MS):
                    break
        logger.info("webhook delivery pass", extra=totals)
    return totals
