"""What every step handler shares: reading its input, and turning infrastructure faults into TransientError so the
state machine's Retry handles them (and a business error is never mistaken for one)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.exc import DBAPIError, OperationalError

from steps.errors import TransientError

logger = Logger(service="paysaga-steps")

StepResult = dict[str, Any]
Handler = Callable[[dict[str, Any], Any], StepResult]


@dataclass(frozen=True)
class StepInput:
    payment_id: int
    merchant_id: str
    capture_amount_minor: int | None
    lease_token: int  # the fencing token of the execution's lease on the payment (ledger.leases)
    error: dict[str, Any] | None  # what a Catch put at $.error: {"Error": ..., "Cause": ...}
    raw: dict[str, Any]


def parse_input(event: dict[str, Any]) -> StepInput:
    raw_id = event.get("payment_id")
    if not isinstance(raw_id, str) or not raw_id.isdigit():
        raise ValueError(f"step input needs payment_id as a decimal string, got {raw_id!r}")
    capture = event.get("capture_amount_minor")
    if capture is not None and (isinstance(capture, bool) or not isinstance(capture, int) or capture <= 0):
        raise ValueError(f"capture_amount_minor must be a positive integer, got {capture!r}")
    token = event.get("lease_token")
    if isinstance(token, bool) or not isinstance(token, int) or token <= 0:
        raise ValueError(f"step input needs lease_token, the execution's positive fencing token, got {token!r}")
    error = event.get("error")
    return StepInput(
        payment_id=int(raw_id),
        merchant_id=str(event.get("merchant_id", "")),
        capture_amount_minor=capture,
        lease_token=token,
        error=error if isinstance(error, dict) else None,
        raw=event,
    )


def step(name: str) -> Callable[[Callable[[StepInput], StepResult]], Handler]:
    """Make a Lambda handler of a function of the step's input."""

    def wrap(body: Callable[[StepInput], StepResult]) -> Handler:
        @functools.wraps(body)
        def handler(event: dict[str, Any], context: Any) -> StepResult:
            step_input = parse_input(event)
            try:
                result = body(step_input)
            except (OperationalError, DBAPIError) as error:
                # Connection lost, server restarting, statement timeout, serialization failure: try again.
                logger.warning("database fault", extra={"step": name, "payment_id": step_input.payment_id})
                raise TransientError(f"{name}: database unavailable: {type(error.orig).__name__}") from error
            except redis.RedisError as error:
                raise TransientError(f"{name}: Redis unavailable: {error}") from error
            except (BotoCoreError, ClientError) as error:
                raise TransientError(f"{name}: AWS service unavailable: {error}") from error
            logger.debug("step done", extra={"step": name, "payment_id": step_input.payment_id, "result": result})
            return result

        return handler

    return wrap
