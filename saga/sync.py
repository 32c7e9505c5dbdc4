"""The payment-status sync: nothing stays pending.

Run on a schedule (an EventBridge rule on AWS, the local stack's sync worker, `paysaga sync`), one pass:
1. every webhook notice not applied yet is tried again (saga.webhooks.apply_pending): an event that outran the
   saga's own record applies once the record is there;
2. every payment left unfinished with no execution running (parked as `needs_attention`, or `capture_submitted`,
   `authorized`, ... under a lease that lapsed: its execution died), untouched for `grace_ms`, is replayed. The
   replay's steps ask the gateway (lookup: Stripe's PaymentIntent, Adyen's stored notices, the sandbox's record)
   and resolve it: a capture confirmed meanwhile is committed, a refused one compensated, an authorization still
   open is captured (automatic capture mode: the merchant's policy) before it can lapse;
3. a payment that already ran `max_executions` executions is not replayed again: it stays parked, and an error
   log line (an alarm on AWS) asks an engineer to look;
4. every operation after checkout (capture, cancel, refund: saga.operate) still pending after `grace_ms` with no
   execution running it (parked, pending at the gateway, or its execution died) runs again: its steps ask the
   gateway (a refund by its own key) and settle it;
5. a manual-capture payment still authorized shortly before its authorization would lapse (AUTHORIZATION_LIFETIME_MS
   less AUTHORIZATION_SAFETY_MS after it was made) is captured in full or cancelled, as its merchant's
   `expiring_authorization_action` says, never left to lapse. A manual-capture payment waiting for its merchant is
   otherwise left alone: it is not stuck.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, not_, or_, select
from sqlalchemy.exc import SQLAlchemyError
from ulid import ULID

from core import limits, observability
from core import telemetry_names as names
from core.settings import settings
from saga.bootstrap import Services, bootstrap
from saga.execution import PaymentBusyError, run_execution
from saga.operate import OperationRefused, OperationRequest, admit
from saga.replay import ReplayError, replay
from saga.webhooks import apply_pending
from steps.contract import ExecutionInput
from steps.registry import Workflow
from store import lifecycle
from store.lifecycle import PaymentStatus as Status
from store.merchants import get_merchant
from store.operations import Operation, get_operation, pending_operations
from store.schema import payments, saga_executions

__all__ = ["SyncReport", "sync"]

logger = observability.logger(names.SERVICE_SYNC)
MAX_PAYMENTS_PER_PASS = 200  # a backlog is worked off over several passes, never loaded at once


@dataclass
class SyncReport:
    notices_applied: int = 0
    notices_waiting: int = 0
    replayed: dict[int, str] = field(default_factory=dict)  # payment id -> its status after the replay
    given_up: list[int] = field(default_factory=list)  # parked for an engineer: too many executions already
    operations: dict[int, str] = field(default_factory=dict)  # operation id -> its status after the run
    expiring: dict[int, str] = field(default_factory=dict)  # payment id -> "capture" | "cancel" (its merchant's)
    not_started: list[int] = field(default_factory=list)  # no execution recorded: the client's retry resumes it
    errors: dict[int, str] = field(default_factory=dict)


def _stuck(services: Services, grace_ms: int, only: Sequence[int] | None) -> list[tuple[int, int, str | None]]:
    """(payment id, executions so far, its latest execution's ARN) of the payments the sync should look at."""
    latest = (select(saga_executions.c.execution_arn).where(saga_executions.c.payment_id == payments.c.id)
              .order_by(saga_executions.c.started_at.desc()).limit(1).scalar_subquery())
    count = (select(func.count()).select_from(saga_executions)
             .where(saga_executions.c.payment_id == payments.c.id).scalar_subquery())
    query = (
        select(payments.c.id, count.label("executions"), latest.label("latest"))
        .where(payments.c.status.not_in(sorted(lifecycle.FINAL)),
               not_(and_(payments.c.capture_mode == "manual", payments.c.status == Status.AUTHORIZED)),
               or_(payments.c.lease_holder.is_(None), payments.c.lease_expires_at < func.clock_timestamp()),
               payments.c.updated_at < func.clock_timestamp() - func.make_interval(0, 0, 0, 0, 0, 0,
                                                                                  grace_ms / 1000))
        .order_by(payments.c.updated_at)
        .limit(MAX_PAYMENTS_PER_PASS)
    )
    if only is not None:
        query = query.where(payments.c.id.in_(list(only)))
    with services.engine.connect() as conn:
        return [(int(r.id), int(r.executions), r.latest) for r in conn.execute(query)]


def sync(services: Services, *, grace_ms: int = limits.SYNC_GRACE_MS,
         max_executions: int = limits.SYNC_MAX_EXECUTIONS, only: Sequence[int] | None = None) -> SyncReport:
    """One pass (see the module docstring); `only` limits the payments looked at to these ids."""
    assert grace_ms >= 0 and max_executions > 0
    report = SyncReport()
    report.notices_applied, report.notices_waiting = apply_pending(services.engine)
    for payment_id, executions, latest in _stuck(services, grace_ms, only):
        if latest is None:
            report.not_started.append(payment_id)
            continue
        with observability.correlated(payment_id):
            if executions >= max_executions:
                logger.error("payment left parked after the sync's last attempt; an engineer must look",
                             extra={"payment_id": payment_id, "executions": executions})
                report.given_up.append(payment_id)
                continue
            try:
                with observability.subsegment("replay", remote=False, payment_id=str(payment_id)):
                    outcome = replay(services, latest)
            except ReplayError as error:  # another execution took it meanwhile, or it finished
                report.errors[payment_id] = str(error)
                continue
            report.replayed[payment_id] = outcome.payment_status
    for operation in _pending_operations(services, grace_ms, only):
        with observability.correlated(operation.payment_id):
            _run_operation(services, operation, report)
    for payment_id in _expiring(services, only):
        with observability.correlated(payment_id):
            _settle_expiring(services, payment_id, report)
    logger.info("sync pass", extra={"applied": report.notices_applied, "waiting": report.notices_waiting,
                                    "replayed": len(report.replayed), "given_up": len(report.given_up),
                                    "operations": len(report.operations), "expiring": len(report.expiring)})
    return report


def _pending_operations(services: Services, grace_ms: int, only: Sequence[int] | None) -> list[Operation]:
    with services.engine.connect() as conn:
        found = pending_operations(conn, untouched_for_ms=grace_ms, limit=MAX_PAYMENTS_PER_PASS)
    return [o for o in found if only is None or o.payment_id in only]


def _run_operation(services: Services, operation: Operation, report: SyncReport) -> None:
    """Run the operation's workflow again (a new execution, under the payment's lease if it is free)."""
    saga_input = ExecutionInput(payment_id=operation.payment_id, merchant_id=operation.merchant_id,
                                operation_id=operation.id)
    try:
        run_execution(services, name=f"sync-{operation.kind}-{operation.id}-{ULID()}", saga_input=saga_input,
                      wait_ms=0, workflow=Workflow(operation.kind))
        with services.engine.connect() as conn:
            after = get_operation(conn, operation_id=operation.id)
    except PaymentBusyError as error:  # an execution is running the payment: it is not stuck
        report.errors[operation.payment_id] = str(error)
        return
    report.operations[operation.id] = after.status if after is not None else "unknown"


def _expiring(services: Services, only: Sequence[int] | None) -> list[int]:
    """Manual-capture payments still authorized past the point where the sync must act on them."""
    act_after_ms = limits.AUTHORIZATION_LIFETIME_MS - limits.AUTHORIZATION_SAFETY_MS
    query = (select(payments.c.id)
             .where(payments.c.capture_mode == "manual", payments.c.status == Status.AUTHORIZED,
                    payments.c.created_at < func.clock_timestamp()
                    - func.make_interval(0, 0, 0, 0, 0, 0, act_after_ms / 1000))
             .order_by(payments.c.created_at).limit(MAX_PAYMENTS_PER_PASS))
    if only is not None:
        query = query.where(payments.c.id.in_(list(only)))
    with services.engine.connect() as conn:
        return [int(r.id) for r in conn.execute(query)]


def _settle_expiring(services: Services, payment_id: int, report: SyncReport) -> None:
    """Capture or cancel the payment as its merchant's policy says, through the same operation a merchant starts."""
    try:
        with services.engine.begin() as conn:
            merchant_id = conn.execute(select(payments.c.merchant_id).where(payments.c.id == payment_id)).scalar_one()
            merchant = get_merchant(conn, merchant_id=merchant_id)
            assert merchant is not None
            kind = Workflow(merchant.expiring_authorization_action)
            operation = admit(conn, operation_id=services.ids.next_id(), payment_id=payment_id, merchant=merchant,
                              request=OperationRequest(kind=kind, amount_minor=None, currency=None,
                                                       reason="authorization nearing expiry"),
                              initiator="expiry_policy")
    except (OperationRefused, SQLAlchemyError) as error:  # a capture or cancel got there first: nothing to do
        report.errors[payment_id] = str(error)
        return
    logger.warning("manual-capture authorization nearing expiry settled by the merchant's policy",
                   extra={"payment_id": payment_id, "action": kind.value})
    report.expiring[payment_id] = kind.value
    _run_operation(services, operation, report)


def handler(event: object, context: Any) -> dict[str, object]:
    """The sync on AWS: an EventBridge schedule invokes this once a minute (infra/gateways.py)."""
    with observability.invocation("sync", context, service=names.SERVICE_SYNC):
        services = bootstrap(settings())
        try:
            report = sync(services)
        finally:
            services.close()
    return {"notices_applied": report.notices_applied, "notices_waiting": report.notices_waiting,
            "replayed": len(report.replayed), "given_up": report.given_up}
