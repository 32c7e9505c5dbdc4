"""Property tests over random sequences of reserve/post/void/reverse, serial (against a reference model) and
concurrent (threads with their own connections). Each example uses a currency of its own on a shared database."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, text

from ledger import LedgerResult, post, reserve, reverse, void
from ledger.reports import balances_at
from store import Reason
from tests.integration.ledger.support import assert_invariants, fresh_currency
from tests.integration.store.support import make_merchant, make_payment

GATEWAY = "sandbox"


@dataclass(frozen=True)
class Op:
    kind: str
    payment: int  # index into the example's payments
    amount_minor: int = 0
    fee_minor: int = 0


ops_strategy = st.lists(
    st.one_of(
        st.builds(Op, st.just("reserve"), st.integers(0, 3), st.integers(1, 100_000)),
        st.builds(Op, st.just("post"), st.integers(0, 3), st.integers(1, 110_000), st.integers(0, 5_000)),
        st.builds(Op, st.just("void"), st.integers(0, 3)),
        st.builds(Op, st.just("reverse"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=30,
)


@dataclass
class Model:
    """The reference: what each operation must answer, and the balances that must result."""

    reserved: dict[int, int] = field(default_factory=dict)
    resolved: dict[int, str] = field(default_factory=dict)
    posted: dict[int, tuple[int, int]] = field(default_factory=dict)
    reversed: set[int] = field(default_factory=set)

    def apply(self, op: Op) -> Reason:
        p = op.payment
        if op.kind == "reserve":
            if p in self.reserved:
                return Reason.ALREADY_APPLIED
            self.reserved[p] = op.amount_minor
            return Reason.APPLIED
        if op.kind in ("post", "void"):
            if p in self.resolved:
                return Reason.ALREADY_APPLIED if self.resolved[p] == op.kind else Reason.ALREADY_RESOLVED
            if p not in self.reserved:
                return Reason.NO_RESERVATION
            if op.kind == "post":
                if op.amount_minor > self.reserved[p]:
                    return Reason.EXCEEDS_RESERVATION
                if op.fee_minor > op.amount_minor:
                    return Reason.FEE_EXCEEDS_AMOUNT
                self.posted[p] = (op.amount_minor, op.fee_minor)
            self.resolved[p] = op.kind
            return Reason.APPLIED
        if p in self.reversed:
            return Reason.ALREADY_APPLIED
        if p not in self.posted:
            return Reason.NOTHING_POSTED
        self.reversed.add(p)
        return Reason.APPLIED

    def balances(self) -> dict[str, tuple[int, int]]:
        """(pending, posted) on each account's normal side."""
        live = [v for p, v in self.posted.items() if p not in self.reversed]
        pending = sum(r for p, r in self.reserved.items() if p not in self.resolved)
        return {
            "merchant_payable": (pending, sum(a - f for a, f in live)),
            "gateway_clearing": (pending, sum(a for a, _ in live)),
            "fees_revenue": (0, sum(f for _, f in live)),
        }


def run_op(conn: Connection, op: Op, payment_id: int, merchant: str, currency: str) -> LedgerResult:
    if op.kind == "reserve":
        return reserve(
            conn,
            payment_id=payment_id,
            merchant_id=merchant,
            gateway=GATEWAY,
            currency=currency,
            amount_minor=op.amount_minor,
        )
    if op.kind == "post":
        return post(conn, payment_id=payment_id, amount_minor=op.amount_minor, fee_minor=op.fee_minor)
    if op.kind == "void":
        return void(conn, payment_id=payment_id)
    return reverse(conn, payment_id=payment_id)


def setup_example(engine: Engine) -> tuple[str, str, list[int]]:
    currency = fresh_currency()
    with engine.begin() as conn:
        merchant = make_merchant(conn, currencies=(currency,))
        payments = [make_payment(conn, merchant_id=merchant, amount_minor=100_000, currency=currency) for _ in range(4)]
    return currency, merchant, payments


def snapshot(conn: Connection, currency: str) -> tuple[datetime, dict[int, tuple[int, ...]]]:
    at = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    totals = conn.execute(
        text(
            "SELECT id, debits_pending, debits_posted, credits_pending, credits_posted FROM accounts"
            " WHERE currency = :c"
        ),
        {"c": currency},
    ).all()
    return at, {int(r[0]): tuple(int(x) for x in r[1:]) for r in totals}


def normal_balances(conn: Connection, currency: str) -> dict[str, tuple[int, int]]:
    rows = conn.execute(
        text("SELECT kind, pending_balance_minor, posted_balance_minor FROM v_account_balances WHERE currency = :c"),
        {"c": currency},
    ).all()
    found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
    return {kind: found.get(kind, (0, 0)) for kind in ("merchant_payable", "gateway_clearing", "fees_revenue")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_strategy)
def test_serial_sequences_match_the_model(shared_engine: Engine, ops: list[Op]) -> None:
    currency, merchant, payments = setup_example(shared_engine)
    model = Model()
    snapshots: list[tuple[datetime, dict[int, tuple[int, ...]]]] = []
    for op in ops:
        with shared_engine.begin() as conn:
            result = run_op(conn, op, payments[op.payment], merchant, currency)
        assert result.reason is model.apply(op), op
        assert result.applied == (result.reason is Reason.APPLIED)
        with shared_engine.connect() as conn:
            snapshots.append(snapshot(conn, currency))
    with shared_engine.connect() as conn:
        assert normal_balances(conn, currency) == model.balances()
        assert_invariants(conn)
        # Property 6: the balance recomputed from entries up to T equals the balance recorded at T.
        for at, recorded in snapshots:
            at_t = {
                int(r["account_id"]): (
                    r["debits_pending"],
                    r["debits_posted"],
                    r["credits_pending"],
                    r["credits_posted"],
                )
                for r in balances_at(conn, as_of=at)
                if r["currency"] == currency
            }
            assert {k: v for k, v in at_t.items() if k in recorded} == recorded


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=ops_strategy, writers=st.sampled_from([2, 4, 8]))
def test_concurrent_sequences_keep_every_invariant(shared_engine: Engine, ops: list[Op], writers: int) -> None:
    currency, merchant, payments = setup_example(shared_engine)
    results: list[tuple[Op, LedgerResult]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(writers)

    def work(mine: list[Op]) -> None:
        try:
            barrier.wait(timeout=30)
            for op in mine:
                with shared_engine.begin() as conn:
                    result = run_op(conn, op, payments[op.payment], merchant, currency)
                with lock:
                    results.append((op, result))
        except BaseException as error:  # reported below: any database error fails the test
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=work, args=(ops[i::writers],)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert len(results) == len(ops)
    applied: dict[tuple[int, str], list[Any]] = {}
    for op, result in results:
        if result.applied:
            applied.setdefault((op.payment, op.kind), []).append(result.transaction_id)
    assert all(len(ids) == 1 for ids in applied.values())
    with shared_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM ledger_transactions WHERE payment_id = ANY(:ids)"), {"ids": payments}
        ).scalar_one()
        assert count == len(applied)
        assert_invariants(conn)
        balances = normal_balances(conn, currency)
    assert balances["merchant_payable"][1] >= 0
    assert balances["merchant_payable"][1] + balances["fees_revenue"][1] == balances["gateway_clearing"][1]
