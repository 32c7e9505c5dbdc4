"""Errors a step raises. The class name is the error name Step Functions sees (Lambda reports `errorType`), so the
names here are the ones statemachine.asl.json's Retry and Catch match."""

from __future__ import annotations


class StepError(Exception):
    """Base of every error a step raises on purpose."""


class TransientError(StepError):
    """A fault a retry can fix (connection lost, a timeout, a serialization failure or deadlock, throttling, a 5xx):
    the one error name the state machine retries with backoff for every step. steps.error_classes decides which
    library faults are transient; nothing else may be."""


class InvariantViolated(StepError):
    """PostgreSQL refused a write: an integrity, check, restrict, foreign-key, unique or not-null violation, whether
    a constraint or a ledger/lifecycle trigger (RAISE ... USING ERRCODE) said so. The database is the last safety
    net, so the code above it has a bug: a retry gets the same refusal. Never retried; the state machine compensates
    before the pivot and parks the payment (ParkPayment) after it."""


class ConfigurationError(StepError):
    """The deployment is wrong, not the moment: AWS denied access, does not know our credentials, has no such
    resource (a missing queue, secret, key) or calls the request invalid; Redis refused our user. Never retried
    (the same call gets the same answer until someone fixes the deployment); routed like InvariantViolated."""


class BusinessError(StepError):
    """A final business outcome: the saga compensates and ends in a Fail state with this name."""


class ValidationRejected(BusinessError):
    """The request breaks a business rule (other than the two below)."""


class CurrencyNotSupported(BusinessError):
    """The merchant does not accept this currency."""


class AmountAboveLimit(BusinessError):
    """The amount exceeds the merchant's single-payment limit."""


class FraudRejected(BusinessError):
    """The fraud score is above the reject threshold."""


class PaymentDeclined(BusinessError):
    """The gateway declined the authorization."""


class InsufficientFunds(BusinessError):
    """The gateway declined for insufficient funds."""


class GatewayUnavailable(BusinessError):
    """The gateway could not be reached (retried first by the state machine: see its Retry)."""


class ServiceUnavailable(BusinessError):
    """Our own infrastructure stayed down through every retry before the pivot: nothing was charged."""


class CaptureFailed(BusinessError):
    """The gateway refused the capture: nothing was charged."""


class CapturePending(StepError):
    """The gateway acknowledged the capture but has not confirmed it yet: the state machine asks again later."""


class ExecutionSuperseded(StepError):
    """Another execution holds the payment (it took the lease over, or it is the one moving the payment now): this
    execution ends at once, without effect and without compensating; the holder decides the payment's outcome."""


class CapturedAtGateway(StepError):
    """A compensation found money captured at the gateway that the saga never recorded: park, never fail."""


class RefundFailed(BusinessError):
    """A refund did not happen: the gateway refused it, or the merchant's balance cannot cover it. Nothing went back."""


class CommitRejected(BusinessError):
    """The ledger refused to post the captured payment for a business reason: money goes back."""


BUSINESS_ERRORS = frozenset(cls.__name__ for cls in BusinessError.__subclasses__())
# Faults no retry fixes, named so the execution history says what happened; they are in no Retry list.
NOT_RETRIED = frozenset(cls.__name__ for cls in (InvariantViolated, ConfigurationError))
# What a step raises as the saga's answer, not as a fault: a business outcome, a capture to wait for, an execution
# that another one superseded, money found captured at the gateway (parked). Anything else a step raises
# (TransientError, InvariantViolated, ConfigurationError, FenceHeld, a bug) is a fault: steps.runtime counts it as
# StepFaults and X-Ray records it on the step's subsegment.
OUTCOMES: tuple[type[StepError], ...] = (BusinessError, CapturePending, ExecutionSuperseded, CapturedAtGateway)
# The failures that were not the card's: our backends or the gateway stayed down. The payment.failed event says
# `retryable: true` for these (seed 001's rule retries them); a decline, a fraud refusal, a limit are final.
RETRYABLE_FAILURES = frozenset(cls.__name__ for cls in (GatewayUnavailable, ServiceUnavailable))
