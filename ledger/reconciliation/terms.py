"""What each gateway's contract says: its fees per line and how long it takes to settle. Written once: the matcher
expects these fees and waits this long before calling a movement missing; the sandbox gateway (and the local Stripe
server, which leaves fees out) charge exactly these.

Fees are integers in minor units: `basis_points` of the line's gross, rounded down, plus a fixed part given in
hundredths of the currency's major unit and scaled to its exponent (0.30 is 30 in EUR, 300 in KWD, 0 in JPY: no
fixed part below the currency's smallest unit).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from core.gateways import GATEWAY_NAMES
from core.money import MINOR_UNIT_EXPONENT
from ledger.reconciliation.lines import LineType

__all__ = ["DAY_MS", "GATEWAY_TERMS", "GatewayTerms", "LineFee", "expected_fee_minor"]

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class LineFee:
    basis_points: int = 0
    fixed_hundredths: int = 0  # of the major unit: 30 = 0.30

    def __post_init__(self) -> None:
        assert 0 <= self.basis_points <= 10_000 and self.fixed_hundredths >= 0


@dataclass(frozen=True, slots=True)
class GatewayTerms:
    fees: MappingProxyType[LineType, LineFee]  # line types with no entry cost nothing
    settlement_delay_ms: int  # a capture/refund not settled this long after the ledger booked it is missing

    def __post_init__(self) -> None:
        assert DAY_MS <= self.settlement_delay_ms <= 30 * DAY_MS, "settlement delays run from 1 to 30 days"


def _terms(delay_days: int, **fees: LineFee) -> GatewayTerms:
    return GatewayTerms(MappingProxyType({LineType(k): v for k, v in fees.items()}), delay_days * DAY_MS)


GATEWAY_TERMS: Final[MappingProxyType[str, GatewayTerms]] = MappingProxyType({
    "sandbox": _terms(1, capture=LineFee(120, 20)),
    # Stripe's standard European card pricing: 1.5 % + 0.25 a charge; refunds cost nothing; a dispute 15.00.
    "stripe": _terms(2, capture=LineFee(150, 25), chargeback=LineFee(0, 1500)),
    # Adyen charges per contract (interchange++); this is the blended rate agreed for paysaga's merchant account.
    "adyen": _terms(3, capture=LineFee(160, 11), refund=LineFee(0, 11), chargeback=LineFee(0, 2500)),
})
assert set(GATEWAY_TERMS) == set(GATEWAY_NAMES), "every gateway has terms"


def expected_fee_minor(gateway: str, line_type: LineType, gross_minor: int, currency: str) -> int:
    """The fee the gateway's terms charge on a line of `gross_minor` (its absolute value) in `currency`."""
    fee = GATEWAY_TERMS[gateway].fees.get(line_type)
    if fee is None:
        return 0
    exponent = MINOR_UNIT_EXPONENT[currency]
    fixed = fee.fixed_hundredths * 10 ** (exponent - 2) if exponent >= 2 else 0
    return abs(gross_minor) * fee.basis_points // 10_000 + fixed
