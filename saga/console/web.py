"""The console's HTTP plumbing: an API Gateway proxy event read into a Request, and Answers (HTML, JSON, redirects,
static files) with the security headers every answer carries."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["COOKIE", "MAX_FORM_BYTES", "Answer", "Request", "html_answer", "json_answer", "read_request", "redirect",
           "security_headers", "session_cookie"]

COOKIE = "paysaga_console"
MAX_FORM_BYTES = 16_384  # a login or a replay's reason: nothing bigger is ever posted
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
       "form-action 'self'; base-uri 'none'")


def security_headers(*, on_aws: bool) -> dict[str, str]:
    """What every answer carries, errors and static files included."""
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
    if on_aws:  # HSTS only where the console is served over HTTPS: locally it is plain http on loopback
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: bytes
    authorizer: dict[str, Any]
    # What the client's URL has before /console: on AWS's execute-api domain the stage ("/prod"), under a custom
    # domain its base path mapping; "" locally. Every link, redirect and the cookie's Path carry it.
    base: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def cookie(self, name: str) -> str | None:
        for part in (self.header("cookie") or "").split(";"):
            key, _, value = part.strip().partition("=")
            if key == name and value:
                return value
        return None

    def param(self, name: str) -> str | None:
        """A query parameter's last value, stripped; None when absent or empty."""
        values = self.query.get(name)
        value = values[-1].strip() if values else ""
        return value or None

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body (the last value of each field)."""
        if len(self.body) > MAX_FORM_BYTES:
            return {}
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json_body(self) -> Any:
        if not self.body or len(self.body) > MAX_FORM_BYTES:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def same_origin(self) -> bool:
        """Whether the request comes from a page of this site. Browsers say so in Sec-Fetch-Site; under the console's
        Referrer-Policy (no-referrer) they send no Referer and `Origin: null` with a form's POST, so Sec-Fetch-Site is
        what a browser's request is judged by. Without it (an older browser, a script), the Origin, else the Referer,
        must name the Host the request was sent to; a request with none of them is refused."""
        fetch_site = self.header("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site.strip().lower() == "same-origin"
        host = self.header("host")
        source = self.header("origin")
        if source in (None, "", "null"):
            source = self.header("referer")
        if not host or not source:
            return False
        return urlsplit(source).netloc.lower() == host.lower()


def read_request(event: dict[str, Any]) -> Request:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    query: dict[str, list[str]] = {}
    multi = event.get("multiValueQueryStringParameters") or {}
    single = event.get("queryStringParameters") or {}
    for name, values in multi.items():
        query[str(name)] = [str(v) for v in values or []]
    for name, value in single.items():
        query.setdefault(str(name), [str(value)])
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode("utf-8")
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    path = str(event.get("path") or "/")
    return Request(method=str(event.get("httpMethod") or "GET").upper(), path=path, query=query, headers=headers,
                   body=body, authorizer=authorizer if isinstance(authorizer, dict) else {},
                   base=_base(context.get("path") if isinstance(context, dict) else None, path))


_BASE = re.compile(r"(/[A-Za-z0-9._~-]+)*")


def _base(full: object, path: str) -> str:
    """The prefix the client's URL had before the resource path (API Gateway's requestContext.path is the URL's
    path as the client sent it, event.path the resource's); "" when there is none or it is not plain."""
    if not isinstance(full, str) or not full.endswith(path):
        return ""
    base = full[: len(full) - len(path)]
    return base if _BASE.fullmatch(base) and len(base) <= 128 else ""


@dataclass(slots=True)
class Answer:
    status: int
    body: str | bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)

    def to_proxy(self, *, on_aws: bool, base: str = "") -> dict[str, Any]:
        """The proxy integration's result. `base` (Request.base) goes before every /console URL the answer holds:
        the pages, redirects and cookies are written with the console's own paths; values shown in pages are
        escaped, so no shown value can look like one of these attributes."""
        if base:
            self._rebase(base)
        headers = {**security_headers(on_aws=on_aws), "Content-Type": self.content_type, **self.headers}
        result: dict[str, Any] = {"statusCode": self.status, "headers": headers}
        if self.cookies:  # several Set-Cookie headers: API Gateway's REST proxy takes them as multiValueHeaders
            result["multiValueHeaders"] = {"Set-Cookie": list(self.cookies)}
        if isinstance(self.body, bytes):
            result["body"] = base64.b64encode(self.body).decode("ascii")
            result["isBase64Encoded"] = True
        else:
            result["body"] = self.body
            result["isBase64Encoded"] = False
        return result


    def _rebase(self, base: str) -> None:
        if isinstance(self.body, str) and self.content_type.startswith("text/html"):
            for attribute in ("href", "action"):
                self.body = self.body.replace(f'{attribute}="/console', f'{attribute}="{base}/console')
        if self.headers.get("Location", "").startswith("/console"):
            self.headers["Location"] = base + self.headers["Location"]
        self.cookies = [cookie.replace("; Path=/console", f"; Path={base}/console") for cookie in self.cookies]


def html_answer(body: str, status: int = 200) -> Answer:
    return Answer(status, body, "text/html; charset=utf-8")


def json_answer(payload: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(payload, default=str, separators=(",", ":")), "application/json")


def redirect(location: str) -> Answer:
    """303 See Other: after a POST the browser GETs the next page."""
    return Answer(303, "", "text/plain; charset=utf-8", headers={"Location": location})


def session_cookie(token: str, *, secure: bool, max_age_s: int | None = None) -> str:
    """The session cookie: never readable by scripts, never sent cross-site, only to the console's paths; Secure
    unless the console is served over plain http (locally, CONSOLE_INSECURE_COOKIES)."""
    parts = [f"{COOKIE}={token}", "HttpOnly", "SameSite=Strict", "Path=/console"]
    if max_age_s is not None:
        parts.append(f"Max-Age={max_age_s}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
