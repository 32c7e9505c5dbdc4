"""The card tokens the local Adyen server knows: the sandbox's (``SANDBOX_TOKENS``, one table for both servers) plus
the decline only Adyen's adapter maps (an expired card). A token is sent as a stored card:
``paymentMethod: {"type": "scheme", "storedPaymentMethodId": <token>}``."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from local.sandbox.server import SANDBOX_TOKENS, Fault, TokenBehaviour
from steps.gateway.port import DeclineReason

__all__ = ["ADYEN_ONLY_TOKENS", "TOKENS", "Fault", "TokenBehaviour", "behaviour_of"]

ADYEN_ONLY_TOKENS: Mapping[str, TokenBehaviour] = MappingProxyType(
    {"tok_expired_card": TokenBehaviour(decline_reason=DeclineReason.EXPIRED_CARD)}
)
assert not set(ADYEN_ONLY_TOKENS) & set(SANDBOX_TOKENS), "an Adyen-only token must not shadow a sandbox token"
TOKENS: Mapping[str, TokenBehaviour] = MappingProxyType({**SANDBOX_TOKENS, **ADYEN_ONLY_TOKENS})


def behaviour_of(card_token: str) -> TokenBehaviour:
    """The token's behaviour; KeyError for a token neither table knows."""
    return TOKENS[card_token]
