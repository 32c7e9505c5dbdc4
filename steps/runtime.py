"""What every step handler shares: reading its input, naming infrastructure faults by what a retry can do about
them (steps.error_classes): TransientError, which the state machine's Retry handles, only for faults a retry can fix;
InvariantViolated and ConfigurationError, never retried, for a database refusal and a misconfigured deployment; and
its telemetry (core.observability): log lines that carry the Lambda context and the payment id as correlation_id,
StepLatency and StepFaults by step, and a subsegment `## <step>` annotated with the payment and merchant ids."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import observability
from core import telemetry_names as names
from steps import error_classes
from steps.contract import ExecutionInput
from steps.errors import OUTCOMES, StepError, TransientError
from steps.fence import FenceError

logger = observability.logger(names.SERVICE_STEPS)

StepResult = dict[str, Any]
StepHandler = Callable[[dict[str, Any], Any], StepResult]


@dataclass(frozen=True)
class StepInput:
    payment_id: int
    merchant_id: str
    capture_amount_minor: int | None
    lease_token: int  # the fencing token of the execution's lease on the payment (store.leases)
    operation_id: int | None  # an operation's execution: the operation it runs (steps.operations)
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
        operation_id=saga_input.operation_id,
        error=error if isinstance(error, dict) else None,
        raw=event,
    )


def is_outcome(error: BaseException) -> bool:
    """The saga's answer (steps.errors.OUTCOMES), not a fault."""
    return isinstance(error, OUTCOMES)


def _run(name: str, body: Callable[[StepInput], StepResult], step_input: StepInput) -> StepResult:
    try:
        return body(step_input)
    except error_classes.LIBRARY_FAULTS as error:
        # The class name is the retry contract: only TransientError is retried. A fault it does not name
        # (a programming error) goes on as it is, under its own name, and is not retried either.
        named = error_classes.named(name, error)
        if named is None:
            raise
        raise named from error


def _log_raised(error: Exception) -> None:
    what = {"error": type(error).__name__}
    if is_outcome(error):
        logger.info(f"step ended with {type(error).__name__}", extra={**what, "detail": str(error)})
    elif isinstance(error, TransientError | FenceError):
        logger.warning(str(error), extra=what)  # retried by the state machine: an error only if it lasts
    elif isinstance(error, StepError):
        logger.error(str(error), extra=what)  # InvariantViolated, ConfigurationError: never retried
    # Anything else (a bug) the Lambda runtime reports with its stack trace and request id, as it always did.


def step(name: str) -> Callable[[Callable[[StepInput], StepResult]], StepHandler]:
    """Make a Lambda handler of a function of the step's input."""

    def wrap(body: Callable[[StepInput], StepResult]) -> StepHandler:
        @functools.wraps(body)
        def handler(event: dict[str, Any], context: Any) -> StepResult:
            with observability.invocation(name, context, service=names.SERVICE_STEPS, is_outcome=is_outcome,
                                          step=name) as call:
                try:
                    step_input = parse_input(event)
                    call.correlate(payment_id=step_input.payment_id, merchant_id=step_input.merchant_id)
                    result = _run(name, body, step_input)
                except Exception as error:
                    # What the body counted (a payment finished, parked, declined) was in a transaction that did
                    # not commit, or is followed by a retry that counts it again: only the fault counts.
                    call.discard_metrics()
                    _log_raised(error)
                    if not is_outcome(error):
                        call.count(names.STEP_FAULTS, step=name)
                    raise
                finally:
                    call.milliseconds(names.STEP_LATENCY_MS, call.elapsed_ms(), step=name)
                logger.debug("step done", extra={"result": result})
                return result

        return handler

    return wrap
