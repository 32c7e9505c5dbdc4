"""Turn an HTTP request into the API Gateway (REST API, proxy integration) event a Lambda handler receives, and the
handler's answer back into an HTTP response: the local server feeds the start handler exactly what AWS would."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

from core import limits
from local.asl.lambda_invoke import LambdaContext
from local.aws_names import lambda_arn

LAMBDA_TIMEOUT_MS = limits.START_FUNCTION_TIMEOUT_S * 1_000  # as the CDK stack configures the start function


def new_context(function_name: str, timeout_ms: int = LAMBDA_TIMEOUT_MS) -> LambdaContext:
    """The context the start function's handler gets (the local runtime's own, as a Task's function gets it)."""
    return LambdaContext(function_name=function_name, invoked_function_arn=lambda_arn(function_name),
                         aws_request_id=str(uuid.uuid4()), deadline_monotonic_s=time.monotonic() + timeout_ms / 1000,
                         monotonic=time.monotonic)


def to_event(
    *, method: str, path: str, headers: list[tuple[str, str]], query: list[tuple[str, str]], body: bytes,
    source_ip: str,
) -> dict[str, Any]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value  # API Gateway keeps the last value in `headers`
        multi.setdefault(name, []).append(value)
    qs_single: dict[str, str] = {}
    qs_multi: dict[str, list[str]] = {}
    for name, value in query:
        qs_single[name] = value
        qs_multi.setdefault(name, []).append(value)
    try:
        text: str | None = body.decode("utf-8") if body else None
        is_b64 = False
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode("ascii"), True
    now_ms = int(time.time() * 1000)
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": qs_single or None,
        "multiValueQueryStringParameters": qs_multi or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            # The path as the client sent it: the local server has no stage in its URLs (on AWS this is
            # "/<stage><path>" on the execute-api domain; the console writes its links under that prefix).
            "path": path,
            "stage": "local",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": now_ms,
            "identity": {"sourceIp": source_ip},
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def from_result(result: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body) from a proxy-integration result, as API Gateway would send it."""
    status = int(result.get("statusCode", 200))
    headers: list[tuple[str, str]] = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values if (name, str(v)) not in headers)
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return status, headers, body
