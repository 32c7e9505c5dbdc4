"""Findings of the simulation, each pinned by a deterministic reproduction (the fault plan the seed chose).

Finding 1 (seed 15): AuthorizeGateway's process dies after its effect, VoidAuthorization voids at the gateway and
its process dies too, so the saga parks the payment (needs_attention, status was `voided`). Every replay then finds
the recorded gateway_reference, goes forward, and CaptureOrVoid asks the gateway to capture a voided authorization:
409 invalid_state -> GatewayRejected -> ParkPayment again. The payment never finishes and its reservation stays
pending in the ledger: money stranded (property 12).

Finding 2 (seed 1016, a double start): two executions of one payment interleave. Execution 1's ReserveBalance dies,
its ReleaseReservation finds nothing reserved yet, its twin's ReserveBalance then reserves, execution 1's
RejectPayment marks the payment `failed`, and the client gets 402 ("nothing charged", stored for the key). The twin
goes on: AuthorizeGateway, CaptureOrVoid and CommitLedger act on a `failed` payment and it ends `succeeded`: the
customer is charged for a payment answered as failed (properties 9 and 12). Only ValidatePayment refuses a payment
in FINAL_FAILED; the other forward steps do not look.

Finding 3 (seed 2002, a double start, the other interleaving): execution 1 captures at the gateway and dies before
recording it; its twin, compensating its own crash, runs VoidAuthorization (the gateway says captured:
"not_voidable_captured", a silent no-op), ReleaseReservation (voids the ledger reservation) and RejectPayment
(`failed`). ParkPayment then leaves a failed payment alone and a replay of a failed payment changes nothing: the
customer is charged, the merchant is never credited, the payment says failed (property 12)."""

from __future__ import annotations

from itertools import count

import pytest
from sqlalchemy import text

from local.simulate import Backends, SimulationConfig
from local.simulate.checks import check_all, entries_digest
from local.simulate.driver import SeedRun
from local.simulate.faults import Plan, StepFault, Where
from local.simulate.world import Outcome, RequestPlan
from steps import authorize, capture, commit, park, reserve, validate
from steps.errors import ExecutionSuperseded
from steps.gateway.sandbox import SandboxGateway
from store import lifecycle
from store.leases import Lease, take_lease
from store.payments import insert_payment

_ids = count(9_300_000_000_000_000)


def test_a_payment_parked_after_its_authorization_was_voided_is_finished_by_replay(sim_backends: Backends) -> None:
    run = SeedRun(sim_backends, 700_001, SimulationConfig(seeds=[700_001], payments_per_seed=0, gateway="sandbox"))
    before = entries_digest(sim_backends)
    plan = Plan([StepFault("AuthorizeGateway", Where.AFTER), StepFault("VoidAuthorization", Where.AFTER)])
    body = {"amount_minor": 1263, "currency": "EUR", "payment_method_token": "tok_approve",
            "customer_reference": "cus-finding-1", "order_reference": "finding-1"}
    outcome = Outcome(key="finding-1", merchant_id=run.merchant_id, fingerprint="")
    with run.injector.installed():
        run._send(outcome, body, RequestPlan(plan), run._via_handler)
        run.outcomes.append(outcome)
        assert outcome.http_status == 202  # parked: needs_attention
        run.replay_until_final()
    run.ids.close()
    assert run.injector.fired == {"crash_after:AuthorizeGateway": 1, "crash_after:VoidAuthorization": 1}
    violations, _, _ = check_all(run, entries_before=before)
    assert not violations, "\n".join(str(v) for v in violations)


def test_forward_steps_refuse_a_payment_another_execution_already_failed(sim_backends: Backends) -> None:
    run = SeedRun(sim_backends, 700_002, SimulationConfig(seeds=[700_002], payments_per_seed=0, gateway="sandbox"))
    run.ids.close()
    payment_id = next(_ids)
    with sim_backends.engine.begin() as conn:
        insert_payment(conn, payment_id=payment_id, merchant_id=run.merchant_id, amount_minor=2656, currency="EUR",
                       gateway="sandbox", customer_ref="cus-finding-2", order_ref="finding-2",
                       payment_method_token="tok_approve")
        lease = take_lease(conn, payment_id=payment_id, holder="finding", lease_ms=60_000)
    assert isinstance(lease, Lease)  # both "executions" below share it: a duplicated delivery of one execution
    event = {"payment_id": str(payment_id), "merchant_id": run.merchant_id, "lease_token": lease.token}
    crashed = {**event, "error": {"Error": "Runtime.ExitError", "Cause": "{}"}}
    # The interleaving seed 1016 produced, one step at a time (execution 1 | its twin):
    validate.handler(dict(event), None)  # both validated
    reserve.release_reservation(dict(crashed), None)  # 1: ReserveBalance died; nothing reserved yet
    reserve.handler(dict(event), None)  # twin: reserves
    # 1: RejectPayment finds the payment reserved, not its to fail (before the fix: `failed`, answered 402)
    with pytest.raises(ExecutionSuperseded):
        validate.reject_payment(dict(crashed), None)
    for step in (authorize.handler, capture.handler, commit.handler):  # twin goes on
        try:
            step(dict(event), None)
        except Exception:  # a step that refuses (any error) is what the fix does
            break
    with sim_backends.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM payments WHERE id = :id"), {"id": payment_id}).scalar_one()
    charged = [c for c in sim_backends.gateway_calls(str(payment_id)) if c["operation"] == "capture" and c["committed"]]
    assert not (status in lifecycle.FAILED and charged), f"a payment answered 'failed' ended {status}: {charged}"


def test_a_capture_at_the_gateway_is_never_left_behind_a_failed_payment(sim_backends: Backends) -> None:
    run = SeedRun(sim_backends, 700_003, SimulationConfig(seeds=[700_003], payments_per_seed=0, gateway="sandbox"))
    run.ids.close()
    payment_id = next(_ids) + 1_000
    with sim_backends.engine.begin() as conn:
        insert_payment(conn, payment_id=payment_id, merchant_id=run.merchant_id, amount_minor=1963, currency="EUR",
                       gateway="sandbox", customer_ref="cus-finding-3", order_ref="finding-3",
                       payment_method_token="tok_approve")
        lease = take_lease(conn, payment_id=payment_id, holder="finding", lease_ms=60_000)
    assert isinstance(lease, Lease)  # both "executions" below share it: a duplicated delivery of one execution
    event = {"payment_id": str(payment_id), "merchant_id": run.merchant_id, "lease_token": lease.token}
    crashed = {**event, "error": {"Error": "Runtime.ExitError", "Cause": "{}"}}
    validate.handler(dict(event), None)
    reserve.handler(dict(event), None)
    reference = authorize.handler(dict(event), None)["gateway_reference"]
    # Execution 1's CaptureOrVoid: the gateway captures, the process dies before recording it.
    with SandboxGateway(base_url=sim_backends.gateways.urls["sandbox"]) as gateway:
        gateway.capture(payment_id=str(payment_id), gateway_reference=reference, amount_minor=1963, currency="EUR")
    # The twin compensates its own crash; then execution 1 parks; then an engineer replays.
    for step in (authorize.void_authorization, reserve.release_reservation, validate.reject_payment, park.handler):
        try:
            step(dict(crashed), None)
        except Exception:  # a compensation that refuses to go on is one way to fix this
            break
    with sim_backends.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM payments WHERE id = :id"), {"id": payment_id}).scalar_one()
    snapshot = sim_backends.gateway_snapshot(str(payment_id))
    assert snapshot is not None
    charged = int(snapshot["captured_minor"]) - int(snapshot["refunded_minor"])
    assert not (status in ("failed", "rejected") and charged > 0), \
        f"payment says {status} while the gateway charged {charged}: nothing will ever refund it"


# Found by the operations' simulation (`paysaga simulate --seed-from 32006 --seeds 1`; tests/sim seeds 8 and 10): a
# manual-capture payment whose CaptureOrVoid process dies is parked (needs_attention, authorized at the gateway, its
# reservation held). Every replay then ends at CaptureOrVoid's {"action": "held"} without moving the payment back to
# `authorized`: it stayed needs_attention, its merchant could not capture or cancel it (both need `authorized`), the
# expiry policy (saga.sync) never saw it, and its reservation stayed pending (property 12). Fixed in steps/capture.py:
# a replay asks the gateway and holds the payment again (or turns back when the authorization or reservation is gone).
def test_a_parked_manual_capture_is_authorized_again_by_replay(sim_backends: Backends) -> None:
    run = SeedRun(sim_backends, 700_004, SimulationConfig(seeds=[700_004], payments_per_seed=0, gateway="sandbox",
                                                          after_checkout_payments=0))
    before = entries_digest(sim_backends)
    body = {"amount_minor": 894, "currency": "EUR", "payment_method_token": "tok_approve", "capture_mode": "manual",
            "customer_reference": "cus-finding-4", "order_reference": "finding-4"}
    outcome = Outcome(key="finding-4", merchant_id=run.merchant_id, fingerprint="")
    with run.injector.installed():
        run._send(outcome, body, RequestPlan(Plan([StepFault("CaptureOrVoid", Where.BEFORE)])), run._via_handler)
        run.outcomes.append(outcome)
        run.replay_until_final()
    run.ids.close()
    assert run.injector.fired == {"crash_before:CaptureOrVoid": 1}
    violations, _, _ = check_all(run, entries_before=before)
    assert not violations, "\n".join(str(v) for v in violations)
