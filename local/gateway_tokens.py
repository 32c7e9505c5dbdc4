"""The test payment-method tokens of each local gateway, by what they make happen: one table for the end-to-end
tests, the simulation and the README's list. The sandbox and the local Adyen server share the sandbox's tokens
(local/sandbox/server.py `SANDBOX_TOKENS`, sent to Adyen as a stored payment method id; Adyen adds an expired card,
local/adyen/tokens.py); Stripe's are PaymentMethod
ids: Stripe's own test ids where Stripe has one, local fault ids (the local Stripe server's) where it has none."""

from __future__ import annotations

import enum
from typing import Final

__all__ = ["TOKENS", "Scenario", "token"]


class Scenario(enum.StrEnum):
    APPROVE = "approve"
    DECLINE = "decline"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    FRAUDULENT = "fraudulent"
    EXPIRED_CARD = "expired_card"
    TIMEOUT_BEFORE_SEND = "timeout_before_send"
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"
    UNAVAILABLE_FIRST = "5xx_then_success"
    SLOW = "slow"
    ASYNC_CAPTURE = "async_capture"  # capture acknowledged, confirmed later (Adyen's model)
    ASYNC_CAPTURE_FAILS = "async_capture_fails"
    CAPTURE_FAILS = "capture_fails"
    REFUND_DECLINED = "refund_declined"  # authorizes and captures; every refund of it is declined


# A sandbox token is its scenario's name (a test keeps this equal to SANDBOX_TOKENS); the sandbox has no expired card.
_SANDBOX: Final[dict[Scenario, str]] = {scenario: f"tok_{scenario.value}" for scenario in Scenario
                                        if scenario is not Scenario.EXPIRED_CARD}

TOKENS: Final[dict[str, dict[Scenario, str]]] = {
    "sandbox": _SANDBOX,
    "adyen": {**_SANDBOX, Scenario.EXPIRED_CARD: "tok_expired_card"},
    # Stripe captures at once and finally: it has no asynchronous or refused capture to ask for.
    "stripe": {
        Scenario.APPROVE: "pm_card_visa",
        Scenario.DECLINE: "pm_card_visa_chargeDeclined",
        Scenario.INSUFFICIENT_FUNDS: "pm_card_chargeDeclinedInsufficientFunds",
        Scenario.FRAUDULENT: "pm_card_chargeDeclinedFraudulent",
        Scenario.EXPIRED_CARD: "pm_card_chargeDeclinedExpiredCard",
        Scenario.TIMEOUT_BEFORE_SEND: "pm_card_visa_timeoutBeforeSend",
        Scenario.TIMEOUT_AFTER_COMMIT: "pm_card_visa_timeoutAfterCommit",
        Scenario.UNAVAILABLE_FIRST: "pm_card_visa_5xxThenSuccess",
        Scenario.SLOW: "pm_card_visa_slow",
    },
}


def token(gateway: str, scenario: Scenario) -> str:
    """The token that makes `scenario` happen at `gateway`; KeyError names what the gateway cannot do."""
    try:
        return TOKENS[gateway][scenario]
    except KeyError:
        raise KeyError(f"the local {gateway} gateway has no token for {scenario.value}") from None
