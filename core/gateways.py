"""The payment gateways paysaga speaks to, named once: settings, merchant records and the database check read this."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = ["GATEWAY_NAMES", "GatewayName"]

GatewayName = Literal["sandbox", "stripe", "adyen"]
GATEWAY_NAMES: Final[tuple[str, ...]] = get_args(GatewayName)
