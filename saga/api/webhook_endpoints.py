"""The merchant's own webhook routes (openapi.yaml): endpoints made, listed, removed, their secret rotated, and events
sent again. The merchant is the one the API key names; another merchant's endpoint or event does not exist for it
(404). A secret is answered once, when it is made (creation, rotation); a list shows its last 4 characters."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from core.limits import MAX_BODY_BYTES
from saga.api.errors import ApiError, json_response
from saga.bootstrap import Services
from saga.notifications import webhooks
from store import webhooks as records
from store.merchants import Merchant
from store.webhooks import Endpoint

__all__ = ["add_webhook_routes", "endpoint_body"]

_ENDPOINT_ID = re.compile(r"^we_[0-9A-HJKMNP-TV-Z]{26}$")
_EVENT_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_M = TypeVar("_M", bound=BaseModel)
_T = TypeVar("_T")


class _CreateEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    url: StrictStr = Field(min_length=1, max_length=webhooks.MAX_URL_LENGTH)


class _Rotate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    overlap_hours: float = Field(default=webhooks.DEFAULT_OVERLAP_HOURS, ge=0, le=webhooks.MAX_OVERLAP_HOURS)


def endpoint_body(endpoint: Endpoint) -> dict[str, Any]:
    """An endpoint as the API shows it: never its secrets, only the current one's last 4 characters."""
    expires = endpoint.previous_secret_expires_at
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "secret_last4": endpoint.secret[-4:],
        "previous_secret_expires_at": None if expires is None else expires.isoformat(),
        "created_at": endpoint.created_at.isoformat(),
        "disabled_at": None if endpoint.disabled_at is None else endpoint.disabled_at.isoformat(),
    }


def _json_object(raw: str | None, *, required: bool) -> dict[str, Any]:
    if raw is None or raw == "":
        if required:
            raise ApiError(400, "BodyMissing", "a JSON body is required", "body")
        return {}
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise ApiError(413, "PayloadTooLarge", f"the body must be at most {MAX_BODY_BYTES} bytes", "body")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        raise ApiError(400, "BodyMalformed", "the body is not valid JSON", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BodyMalformed", "the body must be a JSON object", "body")
    return data


def _validated(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ApiError(400, "BodyInvalid", f"{where}: {first['msg']}", where) from None


def _no_endpoint(endpoint_id: str) -> ApiError:
    return ApiError(404, "WebhookEndpointNotFound", f"no webhook endpoint {endpoint_id}", "endpoint_id")


def add_webhook_routes(app: APIGatewayRestResolver, services: Callable[[], Services],
                       merchant_of: Callable[[dict[str, str] | None], Merchant],
                       unavailable: Callable[[str], ApiError]) -> None:
    """Add the routes to the API's resolver (saga.handler.build_resolver)."""

    def database(work: Callable[[Connection], _T | ApiError], *, write: bool) -> _T:
        """`work` in one transaction (committed when `write` and it answered no error). An ApiError is returned by
        `work`, not raised, and raised here outside the transaction: the frozen ApiError cannot travel through the
        engine's context managers."""
        try:
            with services().engine.connect() as conn:
                result = work(conn)
                if write and not isinstance(result, ApiError):
                    conn.commit()
        except SQLAlchemyError as error:
            raise unavailable("the database") from error
        if isinstance(result, ApiError):
            raise result
        return result

    def own_endpoint(conn: Connection, merchant: Merchant, endpoint_id: str) -> Endpoint | ApiError:
        endpoint = records.get_endpoint(conn, endpoint_id=endpoint_id) if _ENDPOINT_ID.match(endpoint_id) else None
        if endpoint is None or endpoint.merchant_id != merchant.id or endpoint.disabled_at is not None:
            return _no_endpoint(endpoint_id)
        return endpoint

    def answer(status: int, body: dict[str, Any]) -> Response[str]:
        result = json_response(status, body)
        return Response(status_code=status, body=str(result["body"]), headers=dict(result["headers"]),
                        content_type=None)

    @app.post("/v1/webhook_endpoints")
    def create_webhook_endpoint() -> Response[str]:
        event = app.current_event
        merchant = merchant_of(event.headers)
        request = _validated(_CreateEndpoint, _json_object(event.body, required=True))
        allow_loopback = services().settings.webhooks_allow_loopback

        def work(conn: Connection) -> dict[str, Any] | ApiError:
            try:
                endpoint, secret = webhooks.create_endpoint(conn, merchant_id=merchant.id, url=request.url,
                                                            allow_loopback=allow_loopback)
            except webhooks.WebhookUrlRejected as refused:
                return ApiError(400, "WebhookUrlRejected", str(refused), "url")
            return {**endpoint_body(endpoint), "secret": secret}

        return answer(201, database(work, write=True))

    @app.get("/v1/webhook_endpoints")
    def list_webhook_endpoints() -> Response[str]:
        merchant = merchant_of(app.current_event.headers)
        endpoints = database(lambda conn: records.list_endpoints(conn, merchant_id=merchant.id), write=False)
        return answer(200, {"data": [endpoint_body(e) for e in endpoints]})

    @app.delete("/v1/webhook_endpoints/<endpoint_id>")
    def delete_webhook_endpoint(endpoint_id: str) -> Response[str]:
        merchant = merchant_of(app.current_event.headers)

        def work(conn: Connection) -> dict[str, Any] | ApiError:
            found = own_endpoint(conn, merchant, endpoint_id)
            if isinstance(found, ApiError):
                return found
            webhooks.remove_endpoint(conn, endpoint_id=endpoint_id)
            removed = records.get_endpoint(conn, endpoint_id=endpoint_id)
            return _no_endpoint(endpoint_id) if removed is None else endpoint_body(removed)

        return answer(200, database(work, write=True))

    @app.post("/v1/webhook_endpoints/<endpoint_id>/rotate_secret")
    def rotate_webhook_secret(endpoint_id: str) -> Response[str]:
        event = app.current_event
        merchant = merchant_of(event.headers)
        request = _validated(_Rotate, _json_object(event.body, required=False))

        def work(conn: Connection) -> dict[str, Any] | ApiError:
            found = own_endpoint(conn, merchant, endpoint_id)
            if isinstance(found, ApiError):
                return found
            secret = webhooks.rotate_endpoint_secret(conn, endpoint_id=endpoint_id,
                                                     overlap_hours=request.overlap_hours)
            rotated = records.get_endpoint(conn, endpoint_id=endpoint_id)
            if secret is None or rotated is None:
                return _no_endpoint(endpoint_id)
            return {**endpoint_body(rotated), "secret": secret}

        return answer(200, database(work, write=True))

    @app.post("/v1/webhook_endpoints/<endpoint_id>/resend_failed")
    def resend_failed_deliveries(endpoint_id: str) -> Response[str]:
        merchant = merchant_of(app.current_event.headers)

        def work(conn: Connection) -> dict[str, Any] | ApiError:
            found = own_endpoint(conn, merchant, endpoint_id)
            if isinstance(found, ApiError):
                return found
            return {"endpoint_id": endpoint_id, "deliveries": len(webhooks.resend_failed(conn, endpoint_id))}

        return answer(202, database(work, write=True))

    @app.post("/v1/events/<event_id>/resend")
    def resend_event(event_id: str) -> Response[str]:
        merchant = merchant_of(app.current_event.headers)

        def work(conn: Connection) -> dict[str, Any] | ApiError:
            owner = records.merchant_of_event(conn, event_id=event_id) if _EVENT_ID.match(event_id) else None
            if owner != merchant.id:
                return ApiError(404, "EventNotFound", f"no event {event_id}", "event_id")
            return {"event_id": event_id, "deliveries": len(webhooks.resend_event(conn, event_id))}

        return answer(202, database(work, write=True))
