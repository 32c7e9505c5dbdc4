"""The execution input: the one typed contract between the start path (which builds it) and the step runtime (which
parses it), as the state machine passes it to every step (`"Payload.$": "$"`). The steps read the payment itself
from PostgreSQL; the input names it (ids as decimal strings: 63-bit ids do not survive JSON parsers that read
numbers as doubles) and carries what the payment row does not hold: a partial capture, the lease's fencing token and,
for an operation after checkout (a capture, cancel or refund: steps.operations), the operation's id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ExecutionInput"]


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class ExecutionInput:
    payment_id: int
    merchant_id: str
    capture_amount_minor: int | None = None
    lease_token: int | None = None  # the fencing token of the execution's lease on the payment (store.leases)
    operation_id: int | None = None  # the payment_operations row an operation's execution runs (store.operations)

    def __post_init__(self) -> None:
        assert 0 < self.payment_id < 2**63, self.payment_id
        assert self.capture_amount_minor is None or _positive_int(self.capture_amount_minor)
        assert self.lease_token is None or _positive_int(self.lease_token)
        assert self.operation_id is None or 0 < self.operation_id < 2**63, self.operation_id

    def with_lease(self, token: int) -> ExecutionInput:
        return dataclasses.replace(self, lease_token=token)

    def with_lease_cleared(self) -> ExecutionInput:
        """The input another execution starts from (a replay takes a lease of its own)."""
        return dataclasses.replace(self, lease_token=None)

    def to_payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"payment_id": str(self.payment_id), "merchant_id": self.merchant_id}
        if self.capture_amount_minor is not None:
            data["capture_amount_minor"] = self.capture_amount_minor
        if self.lease_token is not None:
            data["lease_token"] = self.lease_token
        if self.operation_id is not None:
            data["operation_id"] = str(self.operation_id)
        return data

    @classmethod
    def parse(cls, event: Mapping[str, Any], *, leased: bool = True) -> ExecutionInput:
        """The input from a state's JSON (other keys, such as the steps' results, are ignored); ValueError naming
        the field that is wrong. `leased`: the lease token must be there (what every step gets)."""
        raw_id = event.get("payment_id")
        if not isinstance(raw_id, str) or not raw_id.isdigit() or not 0 < int(raw_id) < 2**63:
            raise ValueError(f"execution input needs payment_id as a decimal string, got {raw_id!r}")
        merchant = event.get("merchant_id")
        if not isinstance(merchant, str) or not merchant:
            raise ValueError(f"execution input needs merchant_id, got {merchant!r}")
        capture = event.get("capture_amount_minor")
        if capture is not None and not _positive_int(capture):
            raise ValueError(f"capture_amount_minor must be a positive integer, got {capture!r}")
        token = event.get("lease_token")
        if (token is not None or leased) and not _positive_int(token):
            raise ValueError(f"execution input needs lease_token, the execution's fencing token, got {token!r}")
        raw_operation = event.get("operation_id")
        if raw_operation is not None and (not isinstance(raw_operation, str) or not raw_operation.isdigit()
                                          or not 0 < int(raw_operation) < 2**63):
            raise ValueError(f"operation_id must be a decimal string, got {raw_operation!r}")
        return cls(payment_id=int(raw_id), merchant_id=merchant, capture_amount_minor=capture, lease_token=token,
                   operation_id=None if raw_operation is None else int(raw_operation))
