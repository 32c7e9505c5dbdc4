"""The start handler: a Lambda handler behind API Gateway (locally behind saga.http.server)."""

from __future__ import annotations

import json
from typing import Any


def _json(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    path = event.get("path", "")
    return _json(404, {"error": "NotFound", "message": f"no route for {event.get('httpMethod')} {path}"})
