"""Errors the API answers with: a status code, a stable error name, and a message that names what is wrong."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ApiError(Exception):
    status: int
    error: str
    message: str
    field: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"type": self.error, "message": self.message}
        if self.field is not None:
            detail["field"] = self.field
        return {"error": detail}


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An API Gateway proxy result with a compact JSON body."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, separators=(",", ":"), sort_keys=True),
        "isBase64Encoded": False,
    }


def error_response(error: ApiError) -> dict[str, Any]:
    return json_response(error.status, error.body(), error.headers)
