"""Calling a Python Lambda handler the way the Lambda service and its Python runtime do: the event and the
result cross a JSON boundary, an exception becomes Lambda's error document, and the Step Functions integration
result is wrapped like Lambda's Invoke response."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.aws import LambdaHandler
from local.asl.errors import StatesError

Resolver = Callable[[str], LambdaHandler]

_MEMORY_MB = 128


@dataclass
class LambdaContext:
    """The attributes of the Python runtime's context object that handlers (and Powertools) read."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    deadline_monotonic_s: float
    monotonic: Callable[[], float] = field(repr=False)
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = _MEMORY_MB
    log_group_name: str = ""
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline_monotonic_s - self.monotonic()) * 1000))


def function_name_of(name_or_arn: str) -> str:
    """`my-fn`, `123456789012:function:my-fn` or a full ARN (optionally qualified) -> `my-fn`."""
    parts = name_or_arn.split(":")
    if "function" in parts:
        return parts[parts.index("function") + 1]
    return parts[0]


def function_arn_of(name_or_arn: str, region: str, account: str) -> str:
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return f"arn:aws:lambda:{region}:{account}:function:{function_name_of(name_or_arn)}"


class LambdaFunctionError(StatesError):
    """A handler raised: error is the exception's class name, cause Lambda's JSON error document."""


def error_document(exc: BaseException, request_id: str) -> dict[str, Any]:
    """What the Python runtime reports for an unhandled exception (its key order and content)."""
    frames = traceback.extract_tb(exc.__traceback__)
    # Drop this module's own frames: the runtime reports only the handler's stack.
    frames = traceback.StackSummary.from_list([f for f in frames if f.filename != __file__])
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def _marshal_error(exc: Exception, request_id: str) -> dict[str, Any]:
    return {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
            "requestId": request_id, "stackTrace": []}


def invoke(handler: LambdaHandler, event_json: str, context: LambdaContext) -> Any:
    """Run handler on a fresh copy of the event and return its JSON-round-tripped result.
    Raises LambdaFunctionError as Lambda reports a function error."""
    event = json.loads(event_json)
    try:
        result = handler(event, context)
    except Exception as exc:
        document = error_document(exc, context.aws_request_id)
        raise LambdaFunctionError(document["errorType"], json.dumps(document)) from None
    try:
        return json.loads(json.dumps(result))
    except (TypeError, ValueError) as exc:
        document = _marshal_error(exc, context.aws_request_id)
        raise LambdaFunctionError(document["errorType"], json.dumps(document)) from None


def invoke_response(payload: Any, request_id: str, date_header: str) -> dict[str, Any]:
    """The result of `arn:aws:states:::lambda:invoke`: Lambda's Invoke response as Step Functions returns it."""
    headers = {
        "Connection": "keep-alive",
        "Content-Type": "application/json",
        "Date": date_header,
        "X-Amz-Executed-Version": "$LATEST",
        "x-amzn-Remapped-Content-Length": "0",
        "x-amzn-RequestId": request_id,
        "X-Amzn-Trace-Id": "Root=" + request_id,
    }
    return {
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {key: [value] for key, value in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    }


def resource_not_found(function_name: str, region: str, account: str, request_id: str) -> StatesError:
    arn = function_arn_of(function_name, region, account)
    return StatesError(
        "Lambda.ResourceNotFoundException",
        f"Function not found: {arn} (Service: Lambda, Status Code: 404, Request ID: {request_id})",
    )


def python_version() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"
