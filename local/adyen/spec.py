"""Adyen's published OpenAPI specs, read at runtime: every request the local Adyen server takes, every answer it gives
and every webhook it sends is checked against them with openapi-core.

The specs are not copied into this repository: they live next to it (``../shared/oracles/adyen/`` from the project
root). Each loader takes the path as a parameter with that default and fails with ``SpecMissing`` naming the path.

The openapi-core objects are built once per process (the Checkout spec is 900 KB); the spec documents themselves are
Adyen's, so the (1.6 s) check of the spec against the OpenAPI meta-schema is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.validation.request.validators import V31WebhookRequestBodyValidator
from werkzeug.datastructures import Headers, ImmutableMultiDict

JsonDict = dict[str, Any]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ORACLES = PROJECT_ROOT.parent / "shared" / "oracles" / "adyen"
DEFAULT_CHECKOUT_SPEC = ORACLES / "CheckoutService-v71.json"
DEFAULT_WEBHOOKS_SPEC = ORACLES / "Webhooks-v1.json"
CHECKOUT_BASE_PATH = "/v71"  # the local server serves the spec's server path, so both agree on every URL


class SpecMissing(FileNotFoundError):
    """An Adyen spec is not where it was looked for; the message names the path."""


def load_spec(path: Path, what: str) -> JsonDict:
    if not path.is_file():
        raise SpecMissing(
            f"Adyen's {what} spec was not found at {path} (expected ../shared/oracles/adyen/ next to the project "
            "root); pass its path explicitly (--spec for the local Adyen server)"
        )
    document = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3.1"):
        raise ValueError(f"{path} is not an OpenAPI 3.1 document")
    return document


@dataclass
class SpecRequest:
    """An HTTP request as openapi-core reads it (its ``Request`` protocol: ``parameters`` must be settable)."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    headers: Mapping[str, str]
    content_type: str = "application/json"
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(header=Headers(dict(self.headers)), query=ImmutableMultiDict())


@dataclass(frozen=True)
class SpecResponse:
    """An HTTP answer as openapi-core reads it (its ``Response`` protocol)."""

    status_code: int
    data: bytes | None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class WebhookSpecRequest:
    """A webhook delivery as openapi-core reads it (its ``WebhookRequest`` protocol): ``name`` is the webhook."""

    name: str
    body: bytes
    method: str = "post"
    content_type: str = "application/json"
    parameters: RequestParameters = field(default_factory=RequestParameters)


def _describe(error: Exception) -> list[str]:
    """One line per schema violation (with its JSON path), or the error itself."""
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if not schema_errors:
        return [f"{type(error).__name__}: {error}"]
    lines = []
    for schema_error in schema_errors:
        where = "/".join(str(part) for part in getattr(schema_error, "absolute_path", ())) or "(body)"
        lines.append(f"{where}: {getattr(schema_error, 'message', schema_error)}")
    return lines


class CheckoutSpec:
    """Adyen Checkout API v71: validates requests and answers by method and path."""

    def __init__(self, path: Path = DEFAULT_CHECKOUT_SPEC) -> None:
        document = load_spec(path, "Checkout API v71")
        self.path = path
        server = urlsplit(str(document["servers"][0]["url"]))
        if server.path != CHECKOUT_BASE_PATH:
            raise ValueError(f"{path}: the spec's server path is {server.path!r}, not {CHECKOUT_BASE_PATH!r}")
        # Local URLs are checked as if sent to the spec's own server: only the host differs.
        self.host_url = f"{server.scheme}://{server.netloc}"
        self._api = OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))

    def request(self, method: str, path: str, headers: Mapping[str, str], body: bytes | None) -> SpecRequest:
        content_type = next((value for name, value in headers.items() if name.lower() == "content-type"), "")
        return SpecRequest(
            host_url=self.host_url,
            path=path,
            method=method.lower(),
            body=body,
            headers=headers,
            content_type=content_type.lower(),
        )

    def request_errors(self, request: SpecRequest) -> list[str]:
        return [line for error in self._api.request_validator.iter_errors(request) for line in _describe(error)]

    def response_errors(self, request: SpecRequest, status_code: int, body: JsonDict) -> list[str]:
        response = SpecResponse(status_code=status_code, data=json.dumps(body).encode())
        errors = self._api.response_validator.iter_errors(request, response)
        return [line for error in errors for line in _describe(error)]


class WebhooksSpec:
    """Adyen Webhooks v1: validates a NotificationRequest against the webhook named by its eventCode (each event
    has its own schema there; the generic NotificationRequestItem does not even allow ``hmacSignature``)."""

    def __init__(self, path: Path = DEFAULT_WEBHOOKS_SPEC) -> None:
        document = load_spec(path, "Webhooks v1")
        self.path = path
        self.event_codes = frozenset(name.lstrip("/") for name in document.get("webhooks", {}))
        self._validator = V31WebhookRequestBodyValidator(SchemaPath.from_dict(document))

    def errors(self, notification: JsonDict) -> list[str]:
        items = notification.get("notificationItems")
        if not isinstance(items, list) or not items:
            return ["notificationItems: must be a non-empty list"]
        codes = {
            str(item.get("NotificationRequestItem", {}).get("eventCode")) for item in items if isinstance(item, dict)
        }
        if len(codes) != 1:
            return [f"notificationItems: one eventCode per request expected, got {sorted(codes)}"]
        (code,) = codes
        if code not in self.event_codes:
            return [f"eventCode {code!r} is not a webhook of {self.path.name}"]
        request = WebhookSpecRequest(name=f"/{code}", body=json.dumps(notification).encode())
        return [line for error in self._validator.iter_errors(request) for line in _describe(error)]
