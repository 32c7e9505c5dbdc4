"""What every step handler shares: reading its input, and naming infrastructure faults by what a retry can do about
them (steps.error_classes): TransientError, which the state machine's Retry handles, only for faults a retry can fix;
InvariantViolated and ConfigurationError, never retried, for a database refusal and a misconfigured deployment."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from steps import error_classes
from steps.contract import ExecutionInput
from steps.errors import TransientError

logger = Logger(service="paysaga-steps")

StepResult = dict[str, Any]
StepHandler = Callable[[dict[str, Any], Any], StepResult]


@dataclass(frozen=True)
class StepInput:
    payment_id: int
    merchant_id: str
    capture_amount_minor: int | None
    lease_token: int  # the fencing token of the execution's lease on the payment (store.leases)
    error: dict[str, Any] | None  # what a Catch put at $.error: {"Error": ..., "Cause": ...}
    raw: dict[str, Any]


def parse_input(event: dict[str, Any]) -> StepInput:
    """The step's input: the execution input (steps.contract, lease token required) and what a Catch added."""
    saga_input = ExecutionInput.parse(event, leased=True)
    assert saga_input.lease_token is not None
    error = event.get("error")
    return StepInput(
        payment_id=saga_input.payment_id,
        merchant_id=saga_input.merchant_id,
        capture_amount_minor=saga_input.capture_amount_minor,
        lease_token=saga_input.lease_token,
        error=error if isinstance(error, dict) else None,
        raw=event,
    )


def step(name: str) -> Callable[[Callable[[StepInput], StepResult]], StepHandler]:
    """Make a Lambda handler of a function of the step's input."""

    def wrap(body: Callable[[StepInput], StepResult]) -> StepHandler:
        @functools.wraps(body)
        def handler(event: dict[str, Any], context: Any) -> StepResult:
            step_input = parse_input(event)
            try:
                result = body(step_input)
            except error_classes.LIBRARY_FAULTS as error:
                # The class name is the retry contract: only TransientError is retried. A fault it does not name
                # (a programming error) goes on as it is, under its own name, and is not retried either.
                named = error_classes.named(name, error)
                if named is None:
                    raise
                where = {"step": name, "payment_id": step_input.payment_id, "error": type(named).__name__}
                if isinstance(named, TransientError):
                    logger.warning(str(named), extra=where)
                else:
                    logger.error(str(named), extra=where)
                raise named from error
            logger.debug("step done", extra={"step": name, "payment_id": step_input.payment_id, "result": result})
            return result

        return handler

    return wrap
