"""The crash-injection driver: many payments through the real local stack, faults by seed, replays the way an
engineer runs them, then every property of DESIGN 12 checked from the stores themselves (local.simulate.checks)."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from core.aws import LambdaHandler
from local.gateway_tokens import TOKENS, Scenario
from local.http.apigateway import new_context, to_event
from local.simulate import checks
from local.simulate.checks import Checkpoint, Violation
from local.simulate.faults import Injector, Plan, plan_for
from local.simulate.gateway_events import GatewayEvents
from local.simulate.ids import IdSource, SteppedClock
from local.simulate.notifications import NotificationRun
from local.simulate.operations import AfterCheckout
from local.simulate.settlement import SettlementRun, settle_seed
from local.simulate.world import Backends, HolderDiedError, Outcome, RequestPlan, SimStepFunctions
from saga import idempotency
from saga.api.request import parse_body
from saga.bootstrap import bootstrap
from saga.handler import make_handler
from saga.merchant_keys import create_merchant
from saga.replay import ReplayError, replay
from store import lifecycle
from store.merchants import get_merchant
from store.schema import payments, saga_executions

# (what the card does, weight): mostly approvals, every business outcome and every gateway fault present; each seed
# sends the token of its gateway for each (a gateway that cannot do one, Stripe a refused capture, never draws it).
CARDS = (
    (Scenario.APPROVE, 55), (Scenario.DECLINE, 8), (Scenario.INSUFFICIENT_FUNDS, 5), (Scenario.CAPTURE_FAILS, 7),
    (Scenario.UNAVAILABLE_FIRST, 7), (Scenario.TIMEOUT_BEFORE_SEND, 6), (Scenario.TIMEOUT_AFTER_COMMIT, 6),
    (Scenario.SLOW, 3), (Scenario.FRAUDULENT, 3),
)
# Each seed's merchant pays through one gateway, drawn from a stream of its own (the seed's other draws unchanged).
GATEWAYS = (("sandbox", 2), ("stripe", 1), ("adyen", 1))
SCENARIOS = (("plain", 62), ("double_start", 12), ("holder_crash", 10), ("same_key", 8), ("stepped_ids", 8))
MAX_AMOUNT_MINOR = 100_000
SAME_KEY_REQUESTS = 3
MAX_CLIENT_RETRIES = 2  # a 503 is retried with the same key, as the API tells clients to
CHECKPOINT_EVERY = 4


@dataclass
class SimulationConfig:
    seeds: Sequence[int]
    payments_per_seed: int = 10
    max_replays: int = 4
    fault_probability: float = 0.75
    # Every seed's merchant on this gateway; None: each seed draws its own (GATEWAYS). Pinned findings keep theirs.
    gateway: str | None = None
    # Payments made after the checkout requests for the operations (mostly manual-capture; local.simulate.operations),
    # then the captures, cancels and refunds of those and of the seed's other payments. 0: no operations at all.
    after_checkout_payments: int = 4


@dataclass
class SeedResult:
    seed: int
    payments: int = 0
    operations: int = 0
    replays: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    """One name of `table`, drawn by weight."""
    names, weights = zip(*table, strict=True)
    return str(rng.choices(names, weights=weights)[0])


class SeedRun:
    """One seed: its own merchant, fault plans, runtime and clocks; deterministic in what it chooses."""

    def __init__(self, backends: Backends, seed: int, config: SimulationConfig) -> None:
        self.backends = backends
        self.seed = seed
        self.config = config
        self.rng = random.Random(seed)  # noqa: S311  # reproducible by seed, not secret
        self.more_rng = random.Random(f"execution-faults-{seed}")  # noqa: S311  # the faults added later
        self.gateway = config.gateway or _weighted(random.Random(f"gateway-{seed}"), GATEWAYS)  # noqa: S311
        self.cards = [(TOKENS[self.gateway][card], weight) for card, weight in CARDS if card in TOKENS[self.gateway]]
        self.events: GatewayEvents | None = None
        self.result = SeedResult(seed)
        self.started = datetime.now(UTC)
        self.settlement: SettlementRun | None = None  # a sandbox seed's (property 17)
        self.outcomes: list[Outcome] = []
        self.checkpoints: list[Checkpoint] = []
        self.injector = Injector(admin_dsn=backends.admin_dsn, redis_pid=backends.redis_pid,
                                 aws_pid=backends.aws_pid)
        # Every start waits for its saga, in the request's thread (START_ANSWER_BUDGET_MS 0): the fault plans are
        # per thread, and the checks compare each answer with the payment's final state.
        settings = backends.settings.model_copy(update={"start_answer_budget_ms": 0})
        dynamodb = backends.dynamodb
        self.gate_clock = SteppedClock()
        self.gate = idempotency.IdempotencyGate(dynamodb, settings.idempotency_table,
                                                in_progress_ttl_ms=settings.idempotency_in_progress_ttl_ms,
                                                clock_ms=self.gate_clock.ms)
        self.ids = IdSource(dynamodb, settings.worker_slots_table, random.Random(f"ids-{seed}"))  # noqa: S311
        self.sfn = SimStepFunctions(backends, self.injector, seed)
        step_functions = (self.sfn, self.sfn.arn)
        # Two front doors to the same runtime: the handler as deployed (a gate on the real clock, a Snowflake
        # generator holding a real worker slot), and one whose gate and ids run on clocks this seed steps.
        machines = self.sfn.machines
        self.services = bootstrap(settings, step_functions=step_functions, operation_machines=machines)
        self.stepped = bootstrap(settings, step_functions=step_functions, gate=self.gate, ids=self.ids,
                                 operation_machines=machines)
        self._handler = make_handler(self.services)
        self._stepped_handler = make_handler(self.stepped)
        self.same_key_answers: list[tuple[Outcome, list[int]]] = []
        self.holder_checks: list[tuple[Outcome, list[str]]] = []
        self.probe_results: list[tuple[str, bool, str]] = []
        self.after = AfterCheckout(self)
        with backends.engine.begin() as conn:
            self.merchant_id, self.api_key = create_merchant(
                conn, name=f"sim-{seed}", currencies=["EUR", "USD"], gateway=self.gateway,
                max_amount_minor=MAX_AMOUNT_MINOR)
            merchant = get_merchant(conn, merchant_id=self.merchant_id)
        assert merchant is not None
        self.merchant = merchant
        # The merchant's webhook endpoint and the simulation's subscribers, before any event exists.
        self.notifications = NotificationRun(backends, seed, self.merchant_id)

    # -- requests ----------------------------------------------------------------------------------------------

    def _body(self, index: int) -> dict[str, Any]:
        amount = self.rng.choice((self.rng.randint(500, 60_000), self.rng.randint(500, 3_000)))
        if self.rng.random() < 0.03:
            amount = MAX_AMOUNT_MINOR + self.rng.randint(1, 1000)  # AmountAboveLimit
        body: dict[str, Any] = {
            "amount_minor": amount, "currency": self.rng.choice(("EUR", "EUR", "USD")),
            "payment_method_token": _weighted(self.rng, self.cards),
            "customer_reference": f"cus-{self.seed}-{index}", "order_reference": f"sim-{self.seed}-{index}",
        }
        if self.rng.random() < 0.1:
            body["capture_amount_minor"] = self.rng.randint(1, amount)  # a partial capture
        return body

    def _plan(self) -> Plan:
        return plan_for(self.rng, self.more_rng) if self.rng.random() < self.config.fault_probability else Plan()

    def _post(self, handler: LambdaHandler, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = [("Authorization", f"Bearer {self.api_key}"), ("Content-Type", "application/json")]
        if key is not None:
            headers.append(("Idempotency-Key", key))
        event = to_event(method="POST", path="/v1/payments", headers=headers, query=[],
                         body=json.dumps(body).encode(), source_ip="127.0.0.1")
        result = handler(event, new_context("paysaga-start"))
        return int(result["statusCode"]), json.loads(result["body"])

    def _via_handler(self, key: str | None, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return self._post(self._handler, key, body)

    def _via_start(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Through this seed's gate (on a clock it can move) and stepped-clock Snowflake source."""
        return self._post(self._stepped_handler, key, body)

    def _payment_of(self, order_ref: str) -> int | None:
        with self.backends.engine.connect() as conn:
            found = conn.execute(select(payments.c.id).where(payments.c.merchant_id == self.merchant_id,
                                                             payments.c.order_ref == order_ref)).scalars().all()
        # More than one is a violation of property 7, which the checks report with every payment of the order.
        return min(int(p) for p in found) if found else None

    def _send(self, outcome: Outcome, body: dict[str, Any], request: RequestPlan,
              send: Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]]) -> None:
        for attempt in range(1 + MAX_CLIENT_RETRIES):
            with self.sfn.planned(request if attempt == 0 else RequestPlan()):
                status, _ = send(outcome.key, body)
            outcome.http_status = status
            if status != 503:
                break
            outcome.notes.append("503, retried with the same key")
        outcome.payment_id = self._payment_of(body["order_reference"])

    def plain(self, index: int, *, double_start: bool = False) -> None:
        body = self._body(index)
        outcome = Outcome(key=f"key-{self.seed}-{index}", merchant_id=self.merchant_id,
                          fingerprint="", scenario="double_start" if double_start else "plain")
        self._send(outcome, body, RequestPlan(self._plan(), double_start=double_start), self._via_handler)
        self.outcomes.append(outcome)

    def stepped_ids(self, index: int) -> None:
        body = self._body(index)
        outcome = Outcome(key=f"key-{self.seed}-{index}", merchant_id=self.merchant_id, fingerprint="",
                          scenario="stepped_ids")
        self._send(outcome, body, RequestPlan(self._plan()), self._via_start)
        self.outcomes.append(outcome)

    def holder_crash(self, index: int) -> None:
        """The start handler dies holding the key: 409 until the in-progress expiry, never before; then a retry
        resumes the same payment (property 9)."""
        body = self._body(index)
        body["payment_method_token"] = TOKENS[self.gateway][Scenario.APPROVE]
        key = f"key-{self.seed}-{index}"
        outcome = Outcome(key=key, merchant_id=self.merchant_id, fingerprint="", scenario="holder_crash")
        when = self.rng.choice(("before", "after"))
        notes: list[str] = []
        try:
            with self.sfn.planned(RequestPlan(self._plan(), holder_crash=when)):
                self._via_start(key, body)
            notes.append("the holder did not die")
        except HolderDiedError:
            pass
        crashed_payment = self._payment_of(body["order_reference"])
        _, fingerprint = parse_body(json.dumps(body))
        self._expect_in_flight(key, fingerprint, notes, "right after the crash")
        record = self.backends.idempotency_item(idempotency.record_key(self.merchant_id, key))
        expires_ms = int(record["in_progress_expires_ms"]["N"]) if record and "in_progress_expires_ms" in record \
            else None
        if expires_ms is None:
            notes.append(f"the dead holder's key has no in-progress record: {record}")
        else:
            self.gate_clock.freeze()  # the gate's time moves only where this check moves it
            try:
                self.gate_clock.step(expires_ms - self.gate_clock.ms())  # the last millisecond of the expiry
                self._expect_in_flight(key, fingerprint, notes, "at the in-progress expiry")
                self.gate_clock.step(1)
                if crashed_payment is not None:  # the key's hold outlasts the lease: that lapsed too
                    self.backends.expire_lease(crashed_payment)
            finally:
                self.gate_clock.thaw()
        status, answer = self._via_start(key, body)
        outcome.http_status = status
        outcome.payment_id = self._payment_of(body["order_reference"])
        answered = answer.get("id") or answer.get("payment", {}).get("id")
        if crashed_payment is not None and answered is not None and int(answered) != crashed_payment:
            notes.append(f"the retry answered payment {answered}, not the crashed holder's {crashed_payment}")
        if status == 409:
            notes.append("the retry after the in-progress expiry was still refused (409)")
        self.result.faults[f"holder_died_{when}"] += 1
        self.holder_checks.append((outcome, notes))
        self.outcomes.append(outcome)

    def _expect_in_flight(self, key: str, fingerprint: str, notes: list[str], when: str) -> None:
        decision = self.gate.begin(self.merchant_id, key, fingerprint, new_payment_id=self.ids.next_id)
        if not isinstance(decision, idempotency.InFlight):
            notes.append(f"{when} the key answered {type(decision).__name__}, not InFlight")

    def same_key(self, index: int) -> None:
        """Concurrent requests with one key: one saga, one authorization (property 7)."""
        body = self._body(index)
        body["payment_method_token"] = TOKENS[self.gateway][Scenario.APPROVE]
        key = f"key-{self.seed}-{index}"
        answers: list[int] = []
        barrier = threading.Barrier(SAME_KEY_REQUESTS)

        def one() -> None:
            barrier.wait(timeout=30)
            status, _ = self._via_start(key, body)
            answers.append(status)

        threads = [threading.Thread(target=one, name=f"sim-same-key-{i}") for i in range(SAME_KEY_REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        outcome = Outcome(key=key, merchant_id=self.merchant_id, fingerprint="", scenario="same_key",
                          http_status=next((s for s in answers if s != 409), 409))
        outcome.payment_id = self._payment_of(body["order_reference"])
        self.result.faults["same_key_concurrent"] += 1
        self.same_key_answers.append((outcome, answers))
        self.outcomes.append(outcome)

    # -- after the requests ----------------------------------------------------------------------------------

    def replay_until_final(self) -> None:
        """What an engineer does: replay the latest execution of every unfinished payment, a bounded number of
        times (the first rounds may still meet planned faults; the plan fires once per step and payment)."""
        for _ in range(self.config.max_replays):
            unfinished = self._unfinished()
            if not unfinished:
                return
            self.backends.let_gateway_settle(self.gateway, unfinished)  # as time passing before a replay would
            for payment_id in unfinished:
                with self.backends.engine.connect() as conn:
                    arn = conn.execute(
                        select(saga_executions.c.execution_arn).where(saga_executions.c.payment_id == payment_id)
                        .order_by(saga_executions.c.started_at.desc()).limit(1)).scalar_one()
                try:
                    replay(self.services, arn)
                    self.result.replays += 1
                except ReplayError:
                    continue

    def settle(self) -> None:
        """Let everything still running end: twin executions, invocations Step Functions stopped waiting for."""
        self.sfn.join_twins()
        self.injector.join_orphans()
        self.sfn.join_twins()  # an orphan's step may have started a twin

    def _unfinished(self) -> list[int]:
        ids = [o.payment_id for o in self.outcomes if o.payment_id is not None]
        with self.backends.engine.connect() as conn:
            rows = conn.execute(select(payments.c.id, payments.c.status, payments.c.capture_mode)
                                .where(payments.c.id.in_(ids))).all()
        # A manual-capture payment the saga authorized is done with its checkout: it waits for its merchant.
        return sorted(int(r.id) for r in rows if r.status not in lifecycle.FINAL
                      and not lifecycle.awaiting_capture(r.status, r.capture_mode))

    def probes(self) -> None:
        """Property 8 through the start handler: another body under a used key is 422, no key is 400; neither
        leaves a trace in the database or at the gateway."""
        used = next((o for o in self.outcomes if o.scenario == "plain" and o.http_status in (201, 202, 402)), None)
        before = checks.trace_counts(self.backends, self.gateway)
        body = self._body(10_000)
        if used is not None:
            status, answer = self._via_handler(used.key, body)
            self.probe_results.append(("reused key, other body -> 422", status == 422, f"{status} {answer}"))
        status, answer = self._via_handler(None, body)
        self.probe_results.append(("missing key -> 400", status == 400, f"{status} {answer}"))
        after = checks.trace_counts(self.backends, self.gateway)
        self.probe_results.append(("rejected requests leave no trace", before == after, f"{before} -> {after}"))

    def gateway_events(self) -> None:
        """Chargebacks and redelivered webhooks (local.simulate.gateway_events), for a Stripe or Adyen seed."""
        if self.gateway == "sandbox":
            return
        ids = sorted({o.payment_id for o in self.outcomes if o.payment_id is not None})
        self.backends.let_gateway_settle(self.gateway, ids)
        self.events = GatewayEvents(self.backends, self.gateway, random.Random(f"webhooks-{self.seed}"))  # noqa: S311
        self.events.chargebacks(ids)
        self.events.redeliver(ids)
        report = self.events.report
        self.result.faults["chargebacks"] += len(report.disputes)
        self.result.faults["webhooks_sent"] += report.sent
        self.result.faults["webhooks_redelivered"] += report.redelivered

    def checkpoint(self) -> None:
        self.checkpoints.append(checks.take_checkpoint(self.backends))

    # -- the whole seed ------------------------------------------------------------------------------------------

    def run(self) -> SeedResult:
        entries_before = checks.entries_digest(self.backends)
        with self.injector.installed():
            try:
                for index in range(self.config.payments_per_seed):
                    scenario = _weighted(self.rng, SCENARIOS)
                    if scenario == "plain":
                        self.plain(index)
                    elif scenario == "double_start":
                        self.plain(index, double_start=True)
                    elif scenario == "holder_crash":
                        self.holder_crash(index)
                    elif scenario == "same_key":
                        self.same_key(index)
                    else:
                        self.stepped_ids(index)
                    if index % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                        self.checkpoint()
                self.after.checkouts(self.config.after_checkout_payments)
                self.injector.freezer.thaw_all()
                self.settle()
                self.replay_until_final()
                if self.config.after_checkout_payments:
                    self.after.run_all()
                    self.injector.freezer.thaw_all()
                    self.settle()
                    self.checkpoint()  # once the twins and orphaned invocations of the operations have ended
                    self.after.finish(self.config.max_replays)
                    self.after.tally()
                self.gateway_events()
                self.probes()
                self.notifications.run()
                if self.gateway == "sandbox":
                    self.settlement = settle_seed(self.backends, self.started)
            finally:
                self.notifications.close()
                self.injector.freezer.thaw_all()
                self.services.close()
                self.ids.close()
                self.sfn.close()
        self.result.faults.update(self.injector.fired)
        self.result.faults.update({f"ids_{k}": v for k, v in self.ids.events.items()})
        self.result.faults["double_start"] += self.sfn.double_starts
        self.result.payments = len(self.outcomes)
        self.result.operations = self.after.operations
        self.result.faults.update({f"ops_{k}": v for k, v in self.after.counts.items()})
        self.result.faults["operation_requests"] += len(self.after.calls)
        self.result.faults[f"gateway_{self.gateway}_payments"] += len(self.outcomes)
        self.result.faults["notification_consumer_crashes"] += self.notifications.crashes
        self.result.faults["outbox_rows_relayed"] += self.notifications.relayed
        self.result.faults["notifications_redriven_from_dlq"] += self.notifications.redriven
        self.result.faults["webhooks_resent_after_failing"] += self.notifications.resent
        self.result.faults["webhook_requests_failed"] += sum(
            r.answer != "200" for r in self.notifications.receiver.requests)
        self.result.violations, self.result.checked, self.result.statuses = checks.check_all(
            self, entries_before=entries_before)
        return self.result


def run_seed(backends: Backends, seed: int, config: SimulationConfig) -> SeedResult:
    return SeedRun(backends, seed, config).run()


def violations_text(results: Sequence[SeedResult]) -> str:
    lines = [f"seed {v.seed}: property {v.property} (payment {v.payment_id}): {v.detail}"
             for r in results for v in r.violations]
    return "\n".join(lines)


def summary(results: Sequence[SeedResult]) -> dict[str, Any]:
    faults: Counter[str] = Counter()
    checked: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for r in results:
        faults.update(r.faults)
        checked.update(r.checked)
        statuses.update(r.statuses)
    return {"seeds": len(results), "payments": sum(r.payments for r in results),
            "operations": sum(r.operations for r in results),
            "replays": sum(r.replays for r in results), "faults": dict(faults), "checked": dict(checked),
            "statuses": dict(statuses), "violations": sum(len(r.violations) for r in results)}

