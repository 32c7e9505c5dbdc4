"""The one table of test tokens names only tokens each local gateway server knows, and every sandbox token."""

from __future__ import annotations

import pytest

from local.adyen.tokens import TOKENS as ADYEN_SERVER_TOKENS
from local.gateway_tokens import TOKENS, Scenario, token
from local.sandbox.server import SANDBOX_TOKENS
from local.stripe.front import STRIPE_TOKENS


def test_the_sandbox_row_is_exactly_the_sandbox_server_s_tokens() -> None:
    assert set(TOKENS["sandbox"].values()) == set(SANDBOX_TOKENS)


def test_every_token_of_the_table_is_known_to_its_server() -> None:
    assert set(TOKENS["adyen"].values()) <= set(ADYEN_SERVER_TOKENS)
    assert set(TOKENS["stripe"].values()) <= set(STRIPE_TOKENS)


def test_a_scenario_a_gateway_cannot_play_is_named_in_the_error() -> None:
    assert token("adyen", Scenario.EXPIRED_CARD) == "tok_expired_card"
    with pytest.raises(KeyError, match="stripe gateway has no token for capture_fails"):
        token("stripe", Scenario.CAPTURE_FAILS)
