"""The handler registry: every Lambda function of the saga, by name, the Python handler it runs, and its role.

Pure data, importing nothing: the CDK app (infra) reads it to create one Lambda function per entry, to size and alarm
each by its role and to build the state machine's DefinitionSubstitutions; the local runtime reads it to resolve
FunctionName to the same handlers; the simulation reads the roles to choose where faults land.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Role(enum.StrEnum):
    FORWARD = "forward"  # a step of the happy path (CaptureOrVoid is the pivot)
    COMPENSATION = "compensation"  # undoes a forward step's effect before the pivot, or gives money back after it
    RECOVERY = "recovery"  # parks what could not finish (a payment, a notification) for an engineer's replay


@dataclass(frozen=True)
class Step:
    handler: str  # "module:function"
    role: Role
    compensates: str | None = None  # the forward step whose effect this compensation undoes


# In the saga's order: each forward step, then what compensates or recovers it.
STEPS: Final[dict[str, Step]] = {
    "ValidatePayment": Step("steps.validate:handler", Role.FORWARD),
    "RejectPayment": Step("steps.validate:reject_payment", Role.COMPENSATION, compensates="ValidatePayment"),
    "ReserveBalance": Step("steps.reserve:handler", Role.FORWARD),
    "ReleaseReservation": Step("steps.reserve:release_reservation", Role.COMPENSATION, compensates="ReserveBalance"),
    "AuthorizeGateway": Step("steps.authorize:handler", Role.FORWARD),
    "VoidAuthorization": Step("steps.authorize:void_authorization", Role.COMPENSATION,
                              compensates="AuthorizeGateway"),
    "CaptureOrVoid": Step("steps.capture:handler", Role.FORWARD),
    "RefundCapture": Step("steps.capture:refund_capture", Role.COMPENSATION, compensates="CaptureOrVoid"),
    "CommitLedger": Step("steps.commit:handler", Role.FORWARD),
    "ReverseLedger": Step("steps.commit:reverse_ledger", Role.COMPENSATION, compensates="CommitLedger"),
    "NotifyMerchant": Step("steps.notify:handler", Role.FORWARD),
    "ParkNotification": Step("steps.notify:park_notification", Role.RECOVERY),
    "ParkPayment": Step("steps.park:handler", Role.RECOVERY),
}
# Function name -> "module:function" of its handler.
HANDLERS: Final[dict[str, str]] = {name: step.handler for name, step in STEPS.items()}
PIVOT: Final[str] = "CaptureOrVoid"

FUNCTION_NAME_PREFIX: Final[str] = "paysaga"


def with_role(*roles: Role) -> tuple[str, ...]:
    """The steps of these roles, in the saga's order."""
    return tuple(name for name, step in STEPS.items() if step.role in roles)


def function_name(step: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    """The deployed Lambda function's name, e.g. 'paysaga-ValidatePayment'."""
    return f"{prefix}-{step}"


def substitution_key(step: str) -> str:
    """The `${...}` name used in statemachine.asl.json, e.g. 'ValidatePaymentFunctionArn'."""
    return f"{step}FunctionArn"


def step_of_substitution(placeholder: str) -> str:
    """'${ValidatePaymentFunctionArn}' (a Task's FunctionName in statemachine.asl.json) -> 'ValidatePayment'."""
    step = placeholder.removeprefix("${").removesuffix("}").removesuffix("FunctionArn")
    if substitution_key(step) != placeholder[2:-1] or step not in STEPS:
        raise KeyError(f"{placeholder!r} names no registered step")
    return step


def function_arn(step: str, *, region: str, account: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function_name(step, prefix)}"


def definition_substitutions(*, region: str, account: str, prefix: str = FUNCTION_NAME_PREFIX) -> dict[str, str]:
    """The DefinitionSubstitutions both the CDK app and the local runtime apply to statemachine.asl.json."""
    return {
        substitution_key(step): function_arn(step, region=region, account=account, prefix=prefix) for step in STEPS
    }


def step_of_function(name_or_arn: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    """'arn:...:function:paysaga-ValidatePayment' (or the bare name, or with a ':qualifier') -> 'ValidatePayment'."""
    name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
    step = name.removeprefix(f"{prefix}-")
    if step not in STEPS:
        raise KeyError(f"no handler registered for Lambda function {name_or_arn!r}")
    return step


assert PIVOT in STEPS and STEPS[PIVOT].role is Role.FORWARD
assert all(s.compensates is None or STEPS[s.compensates].role is Role.FORWARD for s in STEPS.values())
assert all((s.role is Role.COMPENSATION) == (s.compensates is not None) for s in STEPS.values())
