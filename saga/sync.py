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
   log line (an alarm on AWS) asks an engineer to look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select

from core import limits, observability
from core import telemetry_names as names
from core.settings import settings
from saga.bootstrap import Services, bootstrap
from saga.replay import ReplayError, replay
from saga.webhooks import apply_pending
from store import lifecycle
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
    logger.info("sync pass", extra={"applied": report.notices_applied, "waiting": report.notices_waiting,
                                    "replayed": len(report.replayed), "given_up": len(report.given_up)})
    return report


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
