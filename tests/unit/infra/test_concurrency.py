"""Reserved concurrency: every function's reservation comes out of the account's pool (1,000 by default), and Lambda
refuses a reservation that leaves fewer than 100 unreserved, so the whole stack's must fit in what is left."""

from __future__ import annotations

from infra.config import ACCOUNT_CONCURRENCY, UNRESERVED_MINIMUM
from tests.unit.infra.support import Synth


def test_the_stacks_reserved_concurrency_fits_the_default_account_pool(synth: Synth) -> None:
    reserved = {logical_id: int(r["Properties"]["ReservedConcurrentExecutions"])
                for logical_id, r in synth.of_type("AWS::Lambda::Function").items()
                if "ReservedConcurrentExecutions" in r["Properties"]}
    total = sum(reserved.values())
    assert len(reserved) >= 16, sorted(reserved)
    assert total <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM, f"{total} reserved of {ACCOUNT_CONCURRENCY}: {reserved}"
