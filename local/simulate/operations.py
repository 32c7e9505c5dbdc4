"""The operations after checkout in the simulation (DESIGN 8b): manual-capture payments, then captures (full and
partial), cancels, a capture and a cancel of one payment sent at once, refunds of succeeded payments (1-3 each,
partial, some beyond what remains, some of a card whose refunds the gateway declines, a key resent, several refunds of
one payment on threads), each through `saga.operate.operate` with the seed's stepped gate and ids, each with a fault
plan of its own (`plan_for_operation`). Then what an engineer does: replay an unfinished operation's recorded
execution, or run a status-sync pass over its payment, until nothing is pending.

Every draw comes from a stream of its own (`operations-<seed>`), after the seed's checkout requests: a seed's earlier
interleaving is the one it always had, and the operations reproduce with the seed."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from local.gateway_tokens import TOKENS, Scenario
from local.simulate.faults import Plan, plan_for, plan_for_operation
from local.simulate.world import Outcome, RequestPlan
from saga import idempotency
from saga.api.answers import operation_answer
from saga.api.request import CancelRequest, CaptureRequest, OperationBody, RefundRequest, parse_operation_body
from saga.operate import OperationRefused, OperationRequest, operate
from saga.replay import ReplayError, replay
from saga.start import Answered, BackendUnavailable, KeyInFlight, StartRefused
from saga.sync import sync
from steps.registry import Workflow

if TYPE_CHECKING:
    from local.simulate.driver import SeedRun

# The cards of the payments made for the operations (each seed sends its gateway's token; one it lacks is skipped).
CARDS = ((Scenario.APPROVE, 60), (Scenario.REFUND_DECLINED, 15), (Scenario.CAPTURE_FAILS, 7),
         (Scenario.TIMEOUT_AFTER_COMMIT, 6), (Scenario.UNAVAILABLE_FIRST, 6), (Scenario.SLOW, 4), (Scenario.DECLINE, 2))
MANUAL_SHARE = 0.75  # of the payments made for the operations; the others are captured at checkout
# What happens to an authorized manual-capture payment.
MANUAL_ACTIONS: tuple[tuple[str, int], ...] = (("capture_full", 28), ("capture_partial", 20), ("cancel", 20),
                                              ("capture_and_cancel", 17), ("leave", 15))
REFUNDED_SHARE = 0.35  # of the seed's other succeeded payments
RESENT_SHARE = 0.2  # of the refunds: the same key sent again (after the first answer, or at once on a thread)
DOUBLE_START_SHARE = 0.08
MAX_CLIENT_RETRIES = 2  # a 503 is retried with the same key
_BODIES: dict[Workflow, type[OperationBody]] = {Workflow.CAPTURE: CaptureRequest, Workflow.CANCEL: CancelRequest,
                                                 Workflow.REFUND: RefundRequest}


@dataclass
class OperationCall:
    """One request for an operation and what it was answered (several calls share a key when it is resent)."""

    kind: Workflow
    payment_id: int
    key: str
    body: dict[str, Any]
    scenario: str
    answers: list[str] = field(default_factory=list)  # "201", "409 CaptureOrCancelExists", "503", ...
    operation_id: int | None = None  # the operation the answer names


class AfterCheckout:
    def __init__(self, run: SeedRun) -> None:
        self.run = run
        self.rng = random.Random(f"operations-{run.seed}")  # noqa: S311  # reproducible by seed, not secret
        self.calls: list[OperationCall] = []
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._keys = 0
        self.operations = 0  # the seed's operations, once tallied
        cards = TOKENS[run.gateway]
        self.cards = [(cards[card], weight) for card, weight in CARDS if card in cards]

    # -- the payments the operations act on ----------------------------------------------------------------------

    def checkouts(self, count: int) -> None:
        """`count` payments, most of them manual-capture, through the stepped start handler like the others."""
        run = self.run
        for index in range(count):
            names, weights = zip(*self.cards, strict=True)
            token = str(self.rng.choices(names, weights=weights)[0])
            amount = self.rng.choice((self.rng.randint(500, 60_000), self.rng.randint(500, 3_000)))
            manual = self.rng.random() < MANUAL_SHARE
            body: dict[str, Any] = {
                "amount_minor": amount, "currency": self.rng.choice(("EUR", "USD")), "payment_method_token": token,
                "customer_reference": f"cus-{run.seed}-op{index}", "order_reference": f"sim-{run.seed}-op{index}",
                "capture_mode": "manual" if manual else "automatic"}
            plan = plan_for_checkout(self.rng, run)
            outcome = Outcome(key=f"key-{run.seed}-op{index}", merchant_id=run.merchant_id, fingerprint="",
                              scenario="manual" if manual else "for_refunds")
            run._send(outcome, body, RequestPlan(plan), run._via_start)  # the driver's own path
            run.outcomes.append(outcome)
            self.counts["manual_payments" if manual else "payments_for_refunds"] += 1

    # -- the operations --------------------------------------------------------------------------------------------

    def run_all(self) -> None:
        """Captures and cancels of every authorized manual-capture payment, then refunds of succeeded payments."""
        rows = self._payments()
        for row in rows:
            if row.capture_mode == "manual" and row.status == "authorized":
                self._settle_manual(row)
        rows = self._payments()  # a capture just made some succeeded
        made_for_refunds = {o.payment_id for o in self.run.outcomes if o.scenario in ("manual", "for_refunds")}
        for row in rows:
            if row.status == "succeeded" and (row.id in made_for_refunds or self.rng.random() < REFUNDED_SHARE):
                self._refunds(row)

    def _payments(self) -> list[Any]:
        ids = sorted({o.payment_id for o in self.run.outcomes if o.payment_id is not None})
        with self.run.backends.engine.connect() as conn:
            return list(conn.execute(text(
                "SELECT id, status, capture_mode, amount_minor, captured_amount_minor FROM payments"
                " WHERE id = ANY(:ids) ORDER BY id"), {"ids": ids}).all())

    def _settle_manual(self, row: Any) -> None:
        names, weights = zip(*MANUAL_ACTIONS, strict=True)
        action = str(self.rng.choices(names, weights=weights)[0])
        self.counts[f"manual_{action}"] += 1
        pid, amount = int(row.id), int(row.amount_minor)
        if action == "capture_full":
            self._send(self._call(Workflow.CAPTURE, pid, {}, action))
        elif action == "capture_partial":
            self._send(self._call(Workflow.CAPTURE, pid, {"amount_minor": self.rng.randint(1, amount)}, action))
        elif action == "cancel":
            self._send(self._call(Workflow.CANCEL, pid, {"reason": "customer cancelled"}, action))
        elif action == "capture_and_cancel":
            body = {"amount_minor": self.rng.randint(1, amount)} if self.rng.random() < 0.5 else {}
            both = [self._call(Workflow.CAPTURE, pid, body, action), self._call(Workflow.CANCEL, pid, {}, action)]
            self._concurrently(both)

    def _refunds(self, row: Any) -> None:
        pid, captured = int(row.id), int(row.captured_amount_minor or 0)
        if captured <= 0:
            return
        count = self.rng.randint(1, 3)
        calls: list[OperationCall] = []
        for _ in range(count):
            if self.rng.random() < 0.25:  # one that, with the others, may exceed what was captured
                amount = self.rng.randint(max(1, captured // 2), captured)
            else:
                amount = self.rng.randint(1, max(1, captured // count))
            calls.append(self._call(Workflow.REFUND, pid, {"amount_minor": amount, "reason": "returned"}, "refund"))
        self.counts["refunded_payments"] += 1
        if count > 1 and self.rng.random() < 0.4:
            self.counts["refunds_concurrent"] += len(calls)
            resent = [self._resend(c) for c in calls if self.rng.random() < RESENT_SHARE]
            self._concurrently(calls + resent)  # a resent key races its first request
            return
        for call in calls:
            self._send(call)
            if self.rng.random() < RESENT_SHARE:
                self.counts["refunds_resent"] += 1
                self._send(self._resend(call))

    # -- sending ---------------------------------------------------------------------------------------------------

    def _call(self, kind: Workflow, payment_id: int, body: dict[str, Any], scenario: str) -> OperationCall:
        with self._lock:
            self._keys += 1
            key = f"op-{self.run.seed}-{self._keys}"
        call = OperationCall(kind, payment_id, key, body, scenario)
        self.calls.append(call)
        return call

    def _resend(self, call: OperationCall) -> OperationCall:
        again = OperationCall(call.kind, call.payment_id, call.key, dict(call.body), f"{call.scenario}_resent")
        self.calls.append(again)
        return again

    def _plan(self, kind: Workflow) -> RequestPlan:
        faults = plan_for_operation(self.rng, kind) if self.rng.random() < self.run.config.fault_probability \
            else Plan()
        return RequestPlan(faults, double_start=self.rng.random() < DOUBLE_START_SHARE)

    def _concurrently(self, calls: list[OperationCall]) -> None:
        plans = [self._plan(c.kind) for c in calls]  # drawn here, in order: the threads draw nothing
        barrier = threading.Barrier(len(calls))

        def one(call: OperationCall, plan: RequestPlan) -> None:
            barrier.wait(timeout=30)
            self._send(call, plan)

        threads = [threading.Thread(target=one, args=(c, p), name=f"sim-op-{c.key}") for c, p in zip(
            calls, plans, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
            assert not thread.is_alive(), f"{thread.name} still runs after 300 s"

    def _send(self, call: OperationCall, plan: RequestPlan | None = None) -> None:
        run = self.run
        plan = plan if plan is not None else self._plan(call.kind)
        scope = {"operation": call.kind.value, "payment_id": str(call.payment_id)}
        parsed, fingerprint = parse_operation_body(json.dumps(call.body), _BODIES[call.kind], scope=scope)
        request = OperationRequest(kind=call.kind, amount_minor=getattr(parsed, "amount_minor", None),
                                   currency=getattr(parsed, "currency", None), reason=getattr(parsed, "reason", None))
        for attempt in range(1 + MAX_CLIENT_RETRIES):
            with run.sfn.planned(plan if attempt == 0 else RequestPlan()):
                try:
                    answer = operate(run.stepped, merchant=run.merchant, payment_id=call.payment_id, key=call.key,
                                     fingerprint=fingerprint, request=request, render=operation_answer)
                except OperationRefused as refused:
                    call.answers.append(f"{refused.status} {refused.error}")
                    return
                except KeyInFlight:
                    call.answers.append("409 KeyInFlight")
                    return
                except BackendUnavailable:
                    call.answers.append("503")
                    continue
                except StartRefused as refused:
                    call.answers.append(f"refused {type(refused).__name__}")
                    return
            assert isinstance(answer, Answered), "the simulation's answer budget is 0: every answer waits"
            call.answers.append(str(answer.response.status_code))
            call.operation_id = _operation_of(answer.response) or self._recorded(call)
            return

    def _recorded(self, call: OperationCall) -> int | None:
        item = self.run.backends.idempotency_item(idempotency.record_key(self.run.merchant_id, call.key))
        return int(item["payment_id"]["N"]) if item is not None and "payment_id" in item else None

    # -- finishing, as an engineer would -------------------------------------------------------------------------

    def tally(self) -> None:
        """What the operations ended as, and what they were answered, for the summary."""
        ids = sorted({o.payment_id for o in self.run.outcomes if o.payment_id is not None})
        with self.run.backends.engine.connect() as conn:
            for kind, status, count in conn.execute(text(
                    "SELECT kind, status, count(*) FROM payment_operations WHERE payment_id = ANY(:ids)"
                    " GROUP BY 1, 2"), {"ids": ids}).all():
                self.counts[f"ended_{kind}_{status}"] += int(count)
                self.operations += int(count)
        for call in self.calls:
            self.counts[f"answered_{call.kind.value}_{(call.answers or ['none'])[-1].replace(' ', '_')}"] += 1

    def pending(self) -> list[tuple[int, int]]:
        """(operation, payment) of the seed's operations still pending."""
        ids = sorted({o.payment_id for o in self.run.outcomes if o.payment_id is not None})
        with self.run.backends.engine.connect() as conn:
            rows = conn.execute(text("SELECT id, payment_id FROM payment_operations WHERE payment_id = ANY(:ids)"
                                     " AND status = 'pending' ORDER BY id"), {"ids": ids}).all()
        return [(int(r.id), int(r.payment_id)) for r in rows]

    def finish(self, rounds: int) -> None:
        """Replay each pending operation's latest recorded execution, or (every other round, the first one for half
        the seeds) run a status-sync pass over their payments, until nothing is pending."""
        run = self.run
        sync_first = self.rng.random() < 0.5
        for round_ in range(rounds):
            pending = self.pending()
            if not pending:
                return
            payments = sorted({p for _, p in pending})
            run.backends.let_gateway_settle(run.gateway, payments)  # as time passing before a replay would
            if round_ % 2 == (0 if sync_first else 1):
                report = sync(run.services, grace_ms=0, only=payments)
                self.counts["operation_sync_runs"] += len(report.operations)
                continue
            for operation_id, _ in pending:
                with run.backends.engine.connect() as conn:
                    arn = conn.execute(text(
                        "SELECT execution_arn FROM saga_executions WHERE input->>'operation_id' = :op"
                        " ORDER BY started_at DESC LIMIT 1"), {"op": str(operation_id)}).scalar()
                if arn is None:
                    continue
                try:
                    replay(run.services, str(arn))
                    self.counts["operation_replays"] += 1
                except ReplayError:
                    continue
        if self.pending():  # the last round's work may have left some pending: one more pass of each
            run.backends.let_gateway_settle(run.gateway, sorted({p for _, p in self.pending()}))
            sync(run.services, grace_ms=0, only=sorted({p for _, p in self.pending()}))


def plan_for_checkout(rng: random.Random, run: SeedRun) -> Plan:
    return plan_for(rng, rng) if rng.random() < run.config.fault_probability else Plan()


def _operation_of(response: idempotency.StoredResponse) -> int | None:
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    shown = body.get("refund") or body.get("operation") or {}
    found = shown.get("id") if isinstance(shown, dict) else None
    return int(found) if found is not None and str(found).isdigit() else None
