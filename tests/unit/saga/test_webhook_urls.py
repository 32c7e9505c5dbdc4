"""The webhooks' guard against server-side request forgery (saga.notifications.webhooks.check_url): only http(s), and
a host that resolves only to public addresses; loopback only when WEBHOOKS_ALLOW_LOOPBACK says so. Names are resolved
through an injected resolver (no DNS is asked), except `localhost`, which the system resolves."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core.settings import load_settings
from saga.notifications.webhooks import WebhookUrlRejected, check_url, sign


def _to(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10:8080/hook", "loopback"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[fd00::1]/hook", "private"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://100.64.0.1/hook", "non-public"),
])
def test_non_public_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlRejected, match=f"^url.*{why}"):
        check_url(url, allow_loopback=False)


def test_a_name_that_resolves_to_loopback_or_inside_is_refused() -> None:
    with pytest.raises(WebhookUrlRejected, match=r"^url's host 'hooks\.example\.com' resolves to a loopback"):
        check_url("https://hooks.example.com/x", allow_loopback=False, resolve=_to("127.0.0.1"))
    with pytest.raises(WebhookUrlRejected, match="private"):  # one bad address of several is enough
        check_url("https://hooks.example.com/x", allow_loopback=True, resolve=_to("93.184.216.34", "10.0.0.1"))
    with pytest.raises(WebhookUrlRejected, match="does not resolve"):
        check_url("https://nowhere.invalid/x", allow_loopback=False, resolve=_to())


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://localhost:9/hook"])
def test_loopback_passes_when_allowed(url: str) -> None:
    check_url(url, allow_loopback=True)


@pytest.mark.parametrize("url", ["http://10.0.0.1/hook", "http://169.254.169.254/", "http://192.168.1.1/"])
def test_allowing_loopback_allows_nothing_else(url: str) -> None:
    with pytest.raises(WebhookUrlRejected, match=r"^url"):
        check_url(url, allow_loopback=True)


def test_public_addresses_pass() -> None:
    check_url("https://93.184.216.34/hook", allow_loopback=False)
    check_url("https://hooks.example.com:8443/x?y=1", allow_loopback=False, resolve=_to("93.184.216.34",
                                                                                         "2606:2800:220:1::1"))


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://93.184.216.34/hook", "http:// or https://"),
    ("file:///etc/passwd", "http:// or https://"),
    ("gopher://93.184.216.34/", "http:// or https://"),
    ("93.184.216.34/hook", "http:// or https://"),
    ("https:///hook", "host"),
    ("https://user:pw@93.184.216.34/hook", "credentials"),
    ("https://93.184.216.34:99999/hook", "malformed"),
    ("https://93.184.216.34/" + "a" * 3000, "at most"),
])
def test_malformed_urls_are_refused_naming_url(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlRejected, match=r"^url") as refused:
        check_url(url, allow_loopback=True, resolve=_to("93.184.216.34"))
    assert why in str(refused.value)


def test_the_signature_is_the_documented_hmac() -> None:
    body = b'{"id":"01J","type":"payment.succeeded"}'
    header = sign(body, 1_700_000_000, ["whsec_a", "whsec_b"])
    t, first, second = header.split(",")
    assert t == "t=1700000000"
    for part, key in ((first, b"whsec_a"), (second, b"whsec_b")):
        assert part == "v1=" + hmac.new(key, b"1700000000." + body, hashlib.sha256).hexdigest()


def test_loopback_is_refused_unless_the_setting_says_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("WEBHOOKS_ALLOW_LOOPBACK", raising=False)
    assert load_settings().webhooks_allow_loopback is False
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")
    assert load_settings().webhooks_allow_loopback is True
