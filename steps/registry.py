"""The handler registry: every Lambda function of the saga, by name, and the Python handler it runs.

Pure data, importing nothing: the CDK app (infra) reads it to create one Lambda function per entry and to build the
state machine's DefinitionSubstitutions; the local runtime reads it to resolve FunctionName to the same handlers.
"""

from __future__ import annotations

from typing import Final

# Function name -> "module:function" of its handler.
HANDLERS: Final[dict[str, str]] = {
    "ValidatePayment": "steps.validate:handler",
    "RejectPayment": "steps.validate:reject_payment",
    "ReserveBalance": "steps.reserve:handler",
    "ReleaseReservation": "steps.reserve:release_reservation",
    "AuthorizeGateway": "steps.authorize:handler",
    "VoidAuthorization": "steps.authorize:void_authorization",
    "CaptureOrVoid": "steps.capture:handler",
    "RefundCapture": "steps.capture:refund_capture",
    "CommitLedger": "steps.commit:handler",
    "ReverseLedger": "steps.commit:reverse_ledger",
    "NotifyMerchant": "steps.notify:handler",
    "ParkNotification": "steps.notify:park_notification",
    "ParkPayment": "steps.park:handler",
}

FUNCTION_NAME_PREFIX: Final[str] = "paysaga"


def function_name(step: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    """The deployed Lambda function's name, e.g. 'paysaga-ValidatePayment'."""
    return f"{prefix}-{step}"


def substitution_key(step: str) -> str:
    """The `${...}` name used in statemachine.asl.json, e.g. 'ValidatePaymentFunctionArn'."""
    return f"{step}FunctionArn"


def function_arn(step: str, *, region: str, account: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function_name(step, prefix)}"


def definition_substitutions(*, region: str, account: str, prefix: str = FUNCTION_NAME_PREFIX) -> dict[str, str]:
    """The DefinitionSubstitutions both the CDK app and the local runtime apply to statemachine.asl.json."""
    return {
        substitution_key(step): function_arn(step, region=region, account=account, prefix=prefix) for step in HANDLERS
    }


def step_of_function(name_or_arn: str, prefix: str = FUNCTION_NAME_PREFIX) -> str:
    """'arn:...:function:paysaga-ValidatePayment' (or the bare name, or with a ':qualifier') -> 'ValidatePayment'."""
    name = name_or_arn.split(":function:", 1)[-1].split(":", 1)[0]
    step = name.removeprefix(f"{prefix}-")
    if step not in HANDLERS:
        raise KeyError(f"no handler registered for Lambda function {name_or_arn!r}")
    return step
