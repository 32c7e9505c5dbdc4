"""The console's query parameters, validated: a bad one is a 400 naming it. Cursors are opaque (url-safe base64 of a
small JSON array) and checked like any other parameter."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from saga.console.web import Request
from store.schema import EXECUTION_STATUSES

__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "BadQuery", "ExecutionFilters", "decode_cursor", "encode_cursor",
           "execution_filters", "id_cursor", "limit_of", "time_cursor"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MERCHANT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ERROR = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class BadQuery(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(value: str) -> list[Any]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    except (ValueError, binascii.Error) as error:
        raise BadQuery("cursor", "is not a cursor this console gave") from error
    if not isinstance(decoded, list):
        raise BadQuery("cursor", "is not a cursor this console gave")
    return decoded


def time_cursor(request: Request, second: type[str] | type[int]) -> tuple[datetime, Any] | None:
    """A (timestamp, str-or-int) cursor: executions' (started_at, arn), parked payments' (created_at, id)."""
    raw = request.param("cursor")
    if raw is None:
        return None
    values = decode_cursor(raw)
    if len(values) != 2 or not isinstance(values[0], str) or type(values[1]) is not second:
        raise BadQuery("cursor", "is not a cursor this console gave")
    return _timestamp("cursor", values[0]), values[1]


def id_cursor(request: Request) -> int | None:
    raw = request.param("cursor")
    if raw is None:
        return None
    values = decode_cursor(raw)
    if len(values) != 1 or type(values[0]) is not int:
        raise BadQuery("cursor", "is not a cursor this console gave")
    return int(values[0])


def limit_of(request: Request) -> int:
    raw = request.param("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadQuery("limit", f"a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def _timestamp(name: str, raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as error:
        raise BadQuery(name, "an ISO 8601 date or time, e.g. 2026-12-03T14:00:00Z") from error
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # a time without a zone is UTC


@dataclass(frozen=True, slots=True)
class ExecutionFilters:
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    merchant: str | None = None
    payment_id: int | None = None
    error: str | None = None
    needs_attention: bool = False
    limit: int = DEFAULT_LIMIT
    before: tuple[datetime, str] | None = None

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (for the next page's link), without the cursor."""
        values = {"status": self.status, "since": self.since.isoformat() if self.since else None,
                  "until": self.until.isoformat() if self.until else None, "merchant": self.merchant,
                  "payment": str(self.payment_id) if self.payment_id is not None else None, "error": self.error,
                  "needs_attention": "yes" if self.needs_attention else None,
                  "limit": str(self.limit) if self.limit != DEFAULT_LIMIT else None}
        return {k: v for k, v in values.items() if v is not None}


def execution_filters(request: Request) -> ExecutionFilters:
    status = request.param("status")
    if status is not None:
        status = status.upper()
        if status not in EXECUTION_STATUSES:
            raise BadQuery("status", f"one of {', '.join(EXECUTION_STATUSES)}")
    since = _timestamp("since", raw) if (raw := request.param("since")) else None
    until = _timestamp("until", raw) if (raw := request.param("until")) else None
    if since is not None and until is not None and since >= until:
        raise BadQuery("until", "must be after since")
    merchant = request.param("merchant")
    if merchant is not None and not _MERCHANT.fullmatch(merchant):
        raise BadQuery("merchant", "a merchant id (letters, digits, _ and -)")
    payment = request.param("payment")
    if payment is not None and (not payment.isdigit() or len(payment) > 19 or int(payment) >= 2**63):
        raise BadQuery("payment", "a payment id: a decimal number of at most 19 digits")
    error = request.param("error")
    if error is not None and not _ERROR.fullmatch(error):
        raise BadQuery("error", "an error name, e.g. States.TaskFailed or PaymentDeclined")
    flag = (request.param("needs_attention") or "no").lower()
    if flag not in _TRUE | _FALSE:
        raise BadQuery("needs_attention", "yes or no")
    cursor = time_cursor(request, str)
    return ExecutionFilters(status=status, since=since, until=until, merchant=merchant,
                            payment_id=int(payment) if payment is not None else None, error=error,
                            needs_attention=flag in _TRUE, limit=limit_of(request), before=cursor)
