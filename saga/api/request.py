"""Parse and validate a payment request: headers and body, each fault named."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, ValidationInfo, field_validator

from core.limits import MAX_BODY_BYTES
from core.money import MAX_AMOUNT_MINOR, is_currency
from saga.api.errors import ApiError
from saga.idempotency import MAX_KEY_LENGTH, fingerprint

MAX_METADATA_KEYS = 20
# The request is 2 levels deep (metadata); anything far deeper is refused before anything recurses over it.
MAX_JSON_DEPTH = 8

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=False)]


class PaymentRequest(BaseModel):
    """The body of POST /v1/payments."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    amount_minor: int = Field(gt=0, le=MAX_AMOUNT_MINOR)
    currency: str
    payment_method_token: ShortText
    customer_reference: ShortText
    order_reference: ShortText
    # manual: the saga authorizes and reserves, the payment ends `authorized`; POST .../capture or .../cancel follows.
    capture_mode: Literal["automatic", "manual"] = "automatic"
    capture_amount_minor: int | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR)
    metadata: dict[Annotated[str, StringConstraints(min_length=1, max_length=40)],
                   Annotated[str, StringConstraints(max_length=500)]] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if not is_currency(value):
            raise ValueError(f"'{value}' is not an ISO 4217 currency code this service supports (upper case)")
        return value

    @field_validator("metadata")
    @classmethod
    def _bounded_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        return value

    @field_validator("capture_amount_minor")
    @classmethod
    def _capture_within_amount(cls, value: int | None, info: ValidationInfo) -> int | None:
        amount_minor = info.data.get("amount_minor")
        if value is not None and isinstance(amount_minor, int) and value > amount_minor:
            raise ValueError("must not exceed amount_minor")
        return value


def header(headers: dict[str, str] | None, name: str) -> str | None:
    """HTTP header names are case-insensitive; API Gateway passes them as the client sent them."""
    lowered = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == lowered:
            return value
    return None


def idempotency_key(headers: dict[str, str] | None) -> str:
    key = header(headers, "Idempotency-Key")
    if key is None:
        raise ApiError(400, "IdempotencyKeyMissing", "the Idempotency-Key header is required", "Idempotency-Key")
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(0x20 <= ord(c) <= 0x7E for c in key):
        limit = MAX_KEY_LENGTH
        raise ApiError(400, "IdempotencyKeyMalformed",
                       f"the Idempotency-Key header must be 1 to {limit} printable ASCII characters", "Idempotency-Key")
    return key


def _is_unstorable(text: str) -> bool:
    return "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def _field(path: str) -> str:
    return path.encode("unicode_escape").decode("ascii")  # a NUL or surrogate in a key, shown as an escape


def _check_json_tree(data: object) -> None:
    """Refuse a tree nested deeper than MAX_JSON_DEPTH, or text no UTF-8 column can store (NUL, lone surrogates).

    Iterative, so a deep body cannot exhaust the stack here.
    """
    pending: list[tuple[object, str, int]] = [(data, "", 0)]
    while pending:
        value, where, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(400, "BodyMalformed", f"the body is nested deeper than {MAX_JSON_DEPTH} levels", "body")
        if isinstance(value, str) and _is_unstorable(value):
            raise ApiError(400, "BodyInvalid", f"{_field(where)}: text must not contain NUL or unpaired surrogates",
                           _field(where))
        if isinstance(value, dict):
            for key, item in value.items():
                path = f"{where}.{key}" if where else str(key)
                if _is_unstorable(str(key)):
                    raise ApiError(400, "BodyInvalid",
                                   f"{_field(path)}: names must not contain NUL or unpaired surrogates", _field(path))
                pending.append((item, path, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, f"{where}.{index}", depth + 1) for index, item in enumerate(value))


class OperationBody(BaseModel):
    """What every operation's body shares: strict, no unknown fields, a currency (where it has one) checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @field_validator("currency", check_fields=False)
    @classmethod
    def _iso_4217(cls, value: str | None) -> str | None:
        if value is not None and not is_currency(value):
            raise ValueError(f"'{value}' is not an ISO 4217 currency code this service supports (upper case)")
        return value


class CaptureRequest(OperationBody):
    """The body of POST /v1/payments/{id}/capture: all of the authorization, or `amount_minor` of it."""

    amount_minor: int | None = Field(default=None, gt=0, le=MAX_AMOUNT_MINOR)
    currency: str | None = None  # if given, it must be the payment's


class CancelRequest(OperationBody):
    """The body of POST /v1/payments/{id}/cancel (may be empty)."""

    reason: ShortText | None = None


class RefundRequest(OperationBody):
    """The body of POST /v1/payments/{id}/refunds."""

    amount_minor: int = Field(gt=0, le=MAX_AMOUNT_MINOR)
    currency: str | None = None  # if given, it must be the payment's
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None


def parse_operation_body(raw: str | None, model: type[OperationBody], *, scope: dict[str, str]
                         ) -> tuple[OperationBody, str]:
    """An operation's validated body (an empty body reads as {}) and its fingerprint, which covers `scope` (the
    operation and the payment) too: the same key and body sent for another payment or operation is a reuse (422)."""
    data = _json_object(raw or "{}")
    try:
        request = model.model_validate(data)
    except ValidationError as error:
        raise _invalid(error) from None
    return request, fingerprint({"scope": scope, "body": data})


def _invalid(error: ValidationError) -> ApiError:
    first = error.errors()[0]
    # A bad metadata key is located as ("metadata", <key>, "[key]"): name the key, not pydantic's marker.
    where = ".".join(str(part) for part in first["loc"] if part not in ("", "[key]")) or "body"
    message = first["msg"].removeprefix("Value error, ")
    return ApiError(400, "BodyInvalid", f"{where}: {message}", where)


def parse_body(raw: str | None) -> tuple[PaymentRequest, str]:
    """The validated request and its fingerprint (sha256 of the canonical JSON of what was sent)."""
    if raw is None or raw == "":
        raise ApiError(400, "BodyMissing", "a JSON body is required", "body")
    data = _json_object(raw)
    try:
        request = PaymentRequest.model_validate(data)
    except ValidationError as error:
        raise _invalid(error) from None
    return request, fingerprint(data)


def _json_object(raw: str) -> dict[str, object]:
    """The body as a JSON object, refused (naming why) when too large, malformed, too deep or unstorable."""
    if len(raw.encode("utf-8")) > MAX_BODY_BYTES:
        raise ApiError(413, "PayloadTooLarge", f"the body must be at most {MAX_BODY_BYTES} bytes", "body")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ApiError(400, "BodyMalformed", f"the body is not valid JSON: {error.msg} at position {error.pos}",
                       "body") from None
    except RecursionError:  # the decoder recurses per nesting level
        raise ApiError(400, "BodyMalformed", f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
                       "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "BodyMalformed", "the body must be a JSON object", "body")
    # JSON allows "\u0000" and unpaired "\ud800" escapes; PostgreSQL text and UTF-8 cannot hold them.
    _check_json_tree(data)
    return data
