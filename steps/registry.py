"""The handler registry: every state machine (the payment saga and the operations after checkout, each from its own
`*.asl.json`), every Lambda function their Tasks invoke, by name, the Python handler it runs, and its role.

Pure data, importing nothing: the CDK app (infra) reads it to create one Lambda function per entry and one Express
state machine per workflow, to size and alarm each by its role and to build the DefinitionSubstitutions; the local
runtime reads it to create the same machines and resolve FunctionName to the same handlers; the simulation reads the
roles to choose where faults land.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final


class Workflow(enum.StrEnum):
    """A state machine. An operation's kind (store.schema.OPERATION_KINDS) is the name of the workflow that runs it."""

    PAYMENT = "payment"  # the checkout saga
    CAPTURE = "capture"  # capture all or part of a manual-capture authorization
    CANCEL = "cancel"  # void a manual-capture authorization
    REFUND = "refund"  # give back part or all of a captured payment


# Each workflow's definition, a file at the repository's root.
DEFINITION_FILES: Final[dict[Workflow, str]] = {
    Workflow.PAYMENT: "statemachine.asl.json",
    Workflow.CAPTURE: "capture.asl.json",
    Workflow.CANCEL: "cancel.asl.json",
    Workflow.REFUND: "refund.asl.json",
}
OPERATIONS: Final[tuple[Workflow, ...]] = (Workflow.CAPTURE, Workflow.CANCEL, Workflow.REFUND)


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
# The operations' steps (capture.asl.json, cancel.asl.json, refund.asl.json), each workflow's in its order.
OPERATION_STEPS: Final[dict[str, Step]] = {
    "CaptureAuthorization": Step("steps.operations.capture:handler", Role.FORWARD),
    "CommitCapture": Step("steps.operations.capture:commit_capture", Role.FORWARD),
    "CancelAuthorization": Step("steps.operations.cancel:handler", Role.FORWARD),
    "ReserveRefund": Step("steps.operations.refund:handler", Role.FORWARD),
    "RefundAtGateway": Step("steps.operations.refund:refund_at_gateway", Role.FORWARD),
    "PostRefund": Step("steps.operations.refund:post_refund_step", Role.FORWARD),
    # Ends an operation the gateway refused: a refund's reservation released, the operation failed, its event.
    "FailOperation": Step("steps.operations.outcome:fail_operation", Role.COMPENSATION, compensates="ReserveRefund"),
    "ParkOperation": Step("steps.operations.outcome:park_operation", Role.RECOVERY),
}
# Function name -> "module:function" of its handler, every workflow's.
HANDLERS: Final[dict[str, str]] = {name: step.handler for name, step in (STEPS | OPERATION_STEPS).items()}
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
    if substitution_key(step) != placeholder[2:-1] or step not in HANDLERS:
        raise KeyError(f"{placeholder!r} names no registered step")
    return step


def function_arn(step: str, *, region: str, account: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function_name(step, prefix)}"


def definition_substitutions(*, region: str, account: str, prefix: str = FUNCTION_NAME_PREFIX) -> dict[str, str]:
    """The DefinitionSubstitutions both the CDK app and the local runtime apply to statemachine.asl.json."""
    return {
        substitution_key(step): function_arn(step, region=region, account=account, prefix=prefix)
        for step in HANDLERS
    }


def step_of_function(name_or_arn: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    """'arn:...:function:paysaga-ValidatePayment' (or the bare name, or with a ':qualifier') -> 'ValidatePayment'."""
    name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
    step = name.removeprefix(f"{prefix}-")
    if step not in HANDLERS:
        raise KeyError(f"no handler registered for Lambda function {name_or_arn!r}")
    return step


_ALL: Final = STEPS | OPERATION_STEPS
assert not set(STEPS) & set(OPERATION_STEPS)
assert set(DEFINITION_FILES) == set(Workflow) and set(OPERATIONS) == set(Workflow) - {Workflow.PAYMENT}
assert PIVOT in STEPS and STEPS[PIVOT].role is Role.FORWARD
assert all(s.compensates is None or _ALL[s.compensates].role is Role.FORWARD for s in _ALL.values())
assert all((s.role is Role.COMPENSATION) == (s.compensates is not None) for s in _ALL.values())
