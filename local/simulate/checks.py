"""The properties of DESIGN 12, numbered as there (13: refunds within the capture, capture and cancel exclusive;
14: gateway webhooks; 15: notifications), checked from where the truth lives: PostgreSQL (ledger, payments,
operations, outbox, executions, webhook deliveries), each gateway's own call log and payment state, the SQS queue,
the notification targets (an SNS subscriber, an EventBridge rule's queue, the merchant's endpoint) and the DynamoDB
idempotency table. Nothing here asks the saga's code what it thinks it did."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from local.saga_runtime import PROJECT_ROOT
from local.simulate.faults import Where
from local.simulate.world import Backends
from saga.idempotency import COMPLETED, record_key
from steps import registry
from steps.errors import ExecutionSuperseded
from store import lifecycle
from store.payments import transition_payment

if TYPE_CHECKING:
    from local.simulate.driver import SeedRun

COMPENSATED = lifecycle.COMPENSATED
Totals = tuple[int, int, int, int]  # debits_pending, debits_posted, credits_pending, credits_posted
# Per step: result keys that say whether this run acted, not what the effect is (property 3 compares the rest).
RUN_KEYS = frozenset({"replayed", "reasons"})
# A void answers "voided" the first time and "nothing_to_void" after: one effect, told from two sides.
# An answer that is no result: the state machine retries it (the names in the step's Retry list, read from the state
# machine itself), or the execution ends without effect because another one holds the payment.
NO_RESULT = frozenset({ExecutionSuperseded.__name__})


def _retried_errors() -> dict[str, frozenset[str]]:
    """Per step (the function a Task invokes, in any workflow's definition): the error names its Task's Retry list
    covers."""
    retried: dict[str, frozenset[str]] = {}
    for file in registry.DEFINITION_FILES.values():
        definition = json.loads((PROJECT_ROOT / file).read_text())
        for state in definition["States"].values():
            function = state.get("Parameters", {}).get("FunctionName", "")
            if state.get("Type") == "Task" and function:
                step = registry.step_of_substitution(function)
                retried[step] = retried.get(step, frozenset()) | frozenset(
                    name for rule in state.get("Retry", []) for name in rule["ErrorEquals"])
    return retried


RETRIED = _retried_errors()


def _no_result(step: str, answer: Any) -> bool:
    error = answer.get("error") if isinstance(answer, dict) and set(answer) == {"error"} else None
    return error is not None and (error in NO_RESULT or error in RETRIED.get(step, frozenset()))
SAME_VOID = {"voided": "no_open_authorization", "nothing_to_void": "no_open_authorization"}
# An operation's step that finds its operation decided answers from the record: the outcome, told in the record's
# words ("succeeded" for a cancel that answered "canceled", a capture that answered "captured"), with fewer details.
SAME_OPERATION_OUTCOME = {"CancelAuthorization": {"succeeded": "canceled"},
                          "CaptureAuthorization": {"succeeded": "captured"}}
# The operation's events (outbox.operation_id), by the operation's kind and final status.
OPERATION_EVENTS = {("capture", "succeeded"): "payment.captured", ("cancel", "succeeded"): "payment.canceled",
                    ("refund", "succeeded"): "refund.succeeded", ("refund", "failed"): "refund.failed"}


@dataclass(frozen=True)
class Violation:
    seed: int
    property: int
    payment_id: int | None
    detail: str


@dataclass(frozen=True)
class Checkpoint:
    at: datetime
    totals: dict[int, Totals]


# -- snapshots taken while the simulation runs ---------------------------------------------------------------------

# The snapshot's instant T, and whether any transaction that began before T could still write: one in progress in the
# snapshot, or any client transaction other than ours that started before T and is open now.
_CHECKPOINT_AT = text(
    "SELECT clock_timestamp() AS at,"
    " cardinality(ARRAY(SELECT pg_snapshot_xip(pg_current_snapshot()))) AS in_progress,"
    " (SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database()"
    "    AND backend_type = 'client backend' AND xact_start < clock_timestamp()) AS open_before")
CHECKPOINT_WAIT_S = 30.0
CHECKPOINT_POLL_S = 0.01


def take_checkpoint(backends: Backends) -> Checkpoint:
    """Every account's recorded totals at one instant T. Requests are sent one at a time, but a twin execution or an
    invocation Step Functions stopped waiting for may still be committing in the background; a ledger entry carries
    its transaction's start time, so balance_at(T) counts a transaction that began before T and committed after it,
    which T's snapshot could not see. So T is taken where no transaction that began before it is still open
    (retried for up to CHECKPOINT_WAIT_S, then taken as it is: the check then reports what it saw)."""
    deadline = time.monotonic() + CHECKPOINT_WAIT_S
    while True:
        with backends.engine.connect() as conn:
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            instant = conn.execute(_CHECKPOINT_AT).one()  # the first statement: it takes the snapshot
            rows = conn.execute(text("SELECT id, debits_pending, debits_posted, credits_pending, credits_posted"
                                     " FROM accounts")).all()
            conn.rollback()
        quiet = instant.in_progress == 0 and instant.open_before == 0
        if quiet or time.monotonic() >= deadline:
            return Checkpoint(instant.at, {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows})
        time.sleep(CHECKPOINT_POLL_S)


def entries_digest(backends: Backends) -> dict[int, tuple[Any, ...]]:
    with backends.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, transaction_id, account_id, currency, side, effect, amount_minor,"
                                 " created_at FROM ledger_entries")).all()
    return {int(r[0]): tuple(r[1:]) for r in rows}


def trace_counts(backends: Backends, gateway: str) -> tuple[int, ...]:
    """Rows and gateway calls anything could have written: a rejected request must change none of them."""
    with backends.engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM payments), (SELECT count(*) FROM saga_executions),"
            " (SELECT count(*) FROM ledger_transactions), (SELECT count(*) FROM outbox)")).one()
    return (*(int(c) for c in counts), len(backends.gateway_calls(gateway=gateway)))


# -- the checks ------------------------------------------------------------------------------------------------

class _Checker:
    def __init__(self, run: SeedRun) -> None:
        self.run = run
        self.backends = run.backends
        self.seed = run.seed
        self.violations: list[Violation] = []
        self.checked: Counter[str] = Counter()
        self.payment_ids = sorted({o.payment_id for o in run.outcomes if o.payment_id is not None})

    def expect(self, prop: int, ok: bool, detail: str, payment_id: int | None = None) -> None:
        self.checked[f"P{prop}"] += 1
        if not ok:
            self.violations.append(Violation(self.seed, prop, payment_id, detail))

    # 1 ----------------------------------------------------------------------------------------------------------
    def balanced(self, conn: Connection) -> None:
        unbalanced = conn.execute(text(
            "SELECT t.id, t.payment_id, e.effect,"
            "       sum(e.amount_minor) FILTER (WHERE e.side = 'debit') AS d,"
            "       sum(e.amount_minor) FILTER (WHERE e.side = 'credit') AS c"
            "  FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id"
            " GROUP BY t.id, t.payment_id, e.effect, e.currency"
            " HAVING e.effect IS NULL OR coalesce(sum(e.amount_minor) FILTER (WHERE e.side = 'debit'), 0)"
            "       <> coalesce(sum(e.amount_minor) FILTER (WHERE e.side = 'credit'), 0)")).all()
        total = conn.execute(text("SELECT count(*) FROM ledger_transactions")).scalar_one()
        self.checked["P1"] += int(total)
        for row in unbalanced:
            self.violations.append(Violation(self.seed, 1, int(row.payment_id),
                                             f"transaction {row.id} {row.effect}: debits {row.d} != credits {row.c}"))

    # 2 ----------------------------------------------------------------------------------------------------------
    def append_only(self, conn: Connection, before: dict[int, tuple[Any, ...]]) -> None:
        now = entries_digest(self.backends)
        changed = [i for i, row in before.items() if now.get(i) != row]
        self.expect(2, not changed, f"ledger entries changed or vanished: {changed[:5]}")
        for statement in ("UPDATE ledger_entries SET amount_minor = amount_minor WHERE id = :id",
                          "DELETE FROM ledger_entries WHERE id = :id"):
            refused = False
            some = next(iter(now), None)
            if some is None:
                continue
            with conn.begin_nested() as nested:
                try:
                    conn.execute(text(statement), {"id": some})
                except DBAPIError:
                    refused = True
                nested.rollback()
            self.expect(2, refused, f"the database accepted {statement.split()[0]} on ledger_entries")
        self.compensations_net_zero(conn)

    def compensations_net_zero(self, conn: Connection) -> None:
        rows = conn.execute(text(
            "SELECT p.id, p.status, e.account_id,"
            "  coalesce(sum(e.amount_minor) FILTER (WHERE e.effect = 'pending' AND e.side = 'debit'), 0)"
            "  - coalesce(sum(e.amount_minor) FILTER (WHERE e.effect = 'release' AND e.side = 'debit'), 0) AS dp,"
            "  coalesce(sum(e.amount_minor) FILTER (WHERE e.effect = 'pending' AND e.side = 'credit'), 0)"
            "  - coalesce(sum(e.amount_minor) FILTER (WHERE e.effect = 'release' AND e.side = 'credit'), 0) AS cp,"
            "  coalesce(sum(e.amount_minor) FILTER (WHERE e.effect = 'post' AND e.side = 'debit'), 0)"
            "  - coalesce(sum(e.amount_minor) FILTER (WHERE e.effect = 'post' AND e.side = 'credit'), 0) AS net"
            "  FROM payments p JOIN ledger_transactions t ON t.payment_id = p.id"
            "  JOIN ledger_entries e ON e.transaction_id = t.id"
            " WHERE p.id = ANY(:ids) AND p.status IN ('rejected', 'failed', 'refunded', 'review', 'canceled')"
            " GROUP BY p.id, p.status, e.account_id"), {"ids": self.payment_ids}).all()
        for r in rows:
            self.expect(2, (r.dp, r.cp, r.net) == (0, 0, 0),
                        f"{r.status} payment leaves account {r.account_id} at pending {r.dp}/{r.cp}, posted {r.net}",
                        int(r.id))

    # 3 ----------------------------------------------------------------------------------------------------------
    def one_effect(self, conn: Connection, calls: dict[int, list[dict[str, Any]]],
                   queue: list[dict[str, Any]]) -> None:
        for dup in self.run.injector.duplicates:
            first, second = _normal(dup.first), _normal(dup.second)
            if _no_result(dup.step, first) or _no_result(dup.step, second):
                continue  # "try again" is no result (a concurrent run moved the payment); its effect is checked below
            if dup.step in registry.OPERATION_STEPS:
                first, second = _operation_outcome(dup.step, first), _operation_outcome(dup.step, second)
                shared = set(first) & set(second)  # a step answering from the record tells fewer details
                first, second = {k: first[k] for k in shared}, {k: second[k] for k in shared}
            self.expect(3, first == second, f"{dup.step} delivered twice answered {dup.first} then {dup.second}",
                        dup.payment_id)
        kinds = conn.execute(text("SELECT payment_id, kind, operation_id, count(*) AS n FROM ledger_transactions"
                                  " WHERE payment_id = ANY(:ids) GROUP BY 1, 2, 3"), {"ids": self.payment_ids}).all()
        for row in kinds:
            whose = "" if row.operation_id is None else f" for refund {row.operation_id}"
            self.expect(3, row.n == 1, f"{row.n} ledger transactions of kind {row.kind}{whose}", int(row.payment_id))
        for pid, log in calls.items():
            for operation in ("authorize", "capture", "void"):
                moved = [c for c in log if c["operation"] == operation and c["committed"]
                         and c["outcome"] not in ("capture_failed", "declined")]
                self.expect(3, len(moved) <= 1, f"the gateway took {len(moved)} {operation}s", pid)
            refunds = Counter(c["idempotency_key"] for c in log if c["operation"] == "refund" and c["committed"]
                              and c["outcome"] not in ("refund_failed", "declined"))
            for key, count in refunds.items():
                self.expect(3, count <= 1, f"the gateway took refund {key} {count} times", pid)
        events = conn.execute(text("SELECT id, payment_id, sent_at FROM outbox WHERE payment_id = ANY(:ids)"),
                              {"ids": self.payment_ids}).all()
        by_event = Counter(str(m.get("id")) for m in queue)
        mine = {str(e.id) for e in events}
        for e in events:
            count = by_event.get(str(e.id), 0)
            self.expect(3, count <= 1, f"event {e.id} is {count} times in the queue", int(e.payment_id))
            if e.sent_at is not None:
                self.expect(12, count == 1, f"event {e.id} is marked sent but {count} times in the queue",
                            int(e.payment_id))
        for message in queue:  # each message is an event's one JSON form: {"id", "type", "created_at", "data"}
            announced = str((message.get("data") or {}).get("payment_id"))
            if announced in {str(p) for p in self.payment_ids}:
                self.expect(12, str(message.get("id")) in mine,
                            f"the queue announces {message.get('id')}, which no outbox row holds", int(announced))

    # 4 ----------------------------------------------------------------------------------------------------------
    def reservations(self, conn: Connection) -> None:
        rows = conn.execute(text(
            "SELECT r.payment_id, r.id, r.amount_minor,"
            "  (SELECT count(*) FROM ledger_transactions x WHERE x.pending_transaction_id = r.id) AS resolutions,"
            "  (SELECT coalesce(sum(e.amount_minor), 0) FROM ledger_transactions x JOIN ledger_entries e"
            "     ON e.transaction_id = x.id WHERE x.pending_transaction_id = r.id AND e.effect = 'release'"
            "     AND e.side = 'debit') AS released,"
            "  (SELECT coalesce(max(x.amount_minor), 0) FROM ledger_transactions x"
            "     WHERE x.pending_transaction_id = r.id AND x.kind = 'post') AS posted"
            "  FROM ledger_transactions r WHERE r.kind = 'reserve' AND r.payment_id = ANY(:ids)"),
            {"ids": self.payment_ids}).all()
        for r in rows:
            pid = int(r.payment_id)
            self.expect(4, r.resolutions <= 1, f"reservation {r.id} resolved {r.resolutions} times", pid)
            if r.resolutions == 1:
                self.expect(4, r.released == r.amount_minor and r.posted <= r.amount_minor,
                            f"reservation {r.id} of {r.amount_minor}: released {r.released}, posted {r.posted}", pid)
        self.refund_reservations(conn)

    def refund_reservations(self, conn: Connection) -> None:
        """A refund's reservation resolves at most once, in full: a decided refund that reserved has exactly one
        refund_post or refund_void of the reserve's amount, releasing all of it; a pending one none; a succeeded one
        reserved and posted."""
        rows = conn.execute(text(
            "SELECT o.id, o.payment_id, o.status, o.amount_minor AS asked, r.id AS reserve, r.amount_minor AS held,"
            "  array_remove(array_agg(x.kind ORDER BY x.id), NULL) AS resolutions,"
            "  coalesce(sum(x.amount_minor), 0) AS resolved,"
            "  (SELECT coalesce(sum(e.amount_minor), 0) FROM ledger_transactions y JOIN ledger_entries e"
            "     ON e.transaction_id = y.id WHERE y.pending_transaction_id = r.id AND e.effect = 'release'"
            "     AND e.side = 'debit') AS released"
            "  FROM payment_operations o"
            "  LEFT JOIN ledger_transactions r ON r.operation_id = o.id AND r.kind = 'refund_reserve'"
            "  LEFT JOIN ledger_transactions x ON x.pending_transaction_id = r.id"
            " WHERE o.kind = 'refund' AND o.payment_id = ANY(:ids)"
            " GROUP BY o.id, o.payment_id, o.status, o.amount_minor, r.id, r.amount_minor"),
            {"ids": self.payment_ids}).all()
        for r in rows:
            pid, kinds = int(r.payment_id), list(r.resolutions)
            if r.reserve is None:
                self.expect(4, r.status != "succeeded" and not kinds,
                            f"refund {r.id} is {r.status} with no reservation (resolutions {kinds})", pid)
                continue
            self.expect(4, r.held == r.asked, f"refund {r.id} of {r.asked} reserved {r.held}", pid)
            if r.status == "pending":
                self.expect(4, not kinds, f"refund {r.id} is pending, its reservation resolved by {kinds}", pid)
                continue
            expected = "refund_post" if r.status == "succeeded" else "refund_void"
            self.expect(4, kinds == [expected] and r.resolved == r.held == r.released,
                        f"refund {r.id} {r.status}: reservation of {r.held} resolved by {kinds} for {r.resolved}, "
                        f"released {r.released}", pid)

    # 5 ----------------------------------------------------------------------------------------------------------
    def accounts(self, conn: Connection) -> None:
        rows = conn.execute(text(
            "SELECT a.id, a.debits_must_not_exceed_credits AS dnc, a.credits_must_not_exceed_debits AS cnd,"
            "  a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,"
            "  coalesce(b.debits_pending, 0) AS rdp, coalesce(b.debits_posted, 0) AS rdpo,"
            "  coalesce(b.credits_pending, 0) AS rcp, coalesce(b.credits_posted, 0) AS rcpo"
            "  FROM accounts a LEFT JOIN balance_at(clock_timestamp()) b ON b.account_id = a.id")).all()
        for r in rows:
            recorded = (r.debits_pending, r.debits_posted, r.credits_pending, r.credits_posted)
            self.expect(5, recorded == (r.rdp, r.rdpo, r.rcp, r.rcpo),
                        f"account {r.id} records {recorded}, its entries add up to {(r.rdp, r.rdpo, r.rcp, r.rcpo)}")
            if r.dnc:
                self.expect(5, r.debits_pending + r.debits_posted <= r.credits_posted, f"account {r.id} is negative")
            if r.cnd:
                self.expect(5, r.credits_pending + r.credits_posted <= r.debits_posted,
                            f"account {r.id} is negative")
        if not self.payment_ids:
            return
        pid = self.payment_ids[0]
        with conn.begin_nested() as nested:
            before = conn.execute(text("SELECT status, version FROM payments WHERE id = :id"), {"id": pid}).one()
            stale = transition_payment(conn, payment_id=pid, expected_version=before.version - 1
                                       if before.version > 0 else before.version + 1, to_status="needs_attention")
            after = conn.execute(text("SELECT status, version FROM payments WHERE id = :id"), {"id": pid}).one()
            nested.rollback()
        self.expect(5, not stale.applied and tuple(before) == tuple(after),
                    f"a stale version wrote: {tuple(before)} -> {tuple(after)}", pid)

    # 6 ----------------------------------------------------------------------------------------------------------
    def points_in_time(self, conn: Connection) -> None:
        for point in self.run.checkpoints:
            rows = conn.execute(text("SELECT account_id, debits_pending, debits_posted, credits_pending,"
                                     " credits_posted FROM balance_at(:t)"), {"t": point.at}).all()
            recomputed = {int(r[0]): (int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}
            for account_id, totals in point.totals.items():
                self.expect(6, recomputed.get(account_id) == totals,
                            f"account {account_id} at {point.at.isoformat()}: recorded {totals}, "
                            f"recomputed {recomputed.get(account_id)}")

    # 7, 8, 9 ----------------------------------------------------------------------------------------------------
    def keys(self, conn: Connection, calls: dict[int, list[dict[str, Any]]]) -> None:
        per_order = conn.execute(text(
            "SELECT order_ref, count(*), array_agg(id::text || ' ' || status || ' ' || created_at::text ORDER BY id)"
            " FROM payments WHERE merchant_id = :m GROUP BY order_ref"), {"m": self.run.merchant_id}).all()
        for order, count, made in per_order:
            self.expect(7, count == 1, f"request {order} (one key) made {count} payments: {list(made)}")
        for outcome, answers in self.run.same_key_answers:
            pid = outcome.payment_id
            executions = conn.execute(text("SELECT count(*) FROM saga_executions WHERE payment_id = :id"
                                           " AND replay_of IS NULL AND input->>'operation_id' IS NULL"),
                                      {"id": pid}).scalar_one()
            self.expect(7, executions == 1, f"{len(answers)} concurrent requests, one key: {executions} sagas", pid)
            authorized = [c for c in calls.get(pid or -1, []) if c["operation"] == "authorize" and c["committed"]]
            self.expect(7, len(authorized) <= 1, f"one key, {len(authorized)} authorizations", pid)
            winners = [a for a in answers if a != 409]
            self.expect(7, len(winners) >= 1, f"concurrent requests with one key all answered {answers}", pid)
        for name, ok, detail in self.run.probe_results:
            self.expect(8, ok, f"{name}: {detail}")
        for twin in self.run.sfn.twins:
            if twin.where is Where.REPLAY_RUNNING:
                self.expect(7, twin.refused, f"a replay of a running execution was not refused: {twin.detail}",
                            twin.payment_id)
        for outcome, notes in self.run.holder_checks:
            self.expect(9, not notes, "; ".join(notes), outcome.payment_id)
        self.idempotency_records(conn)

    def idempotency_records(self, conn: Connection) -> None:
        manual = self._manual(conn)
        statuses: dict[int, str] = {int(r[0]): str(r[1]) for r in conn.execute(
            text("SELECT id, status FROM payments WHERE id = ANY(:ids)"), {"ids": self.payment_ids}).all()}
        for outcome in self.run.outcomes:
            item = self.backends.idempotency_item(record_key(outcome.merchant_id, outcome.key))
            answered = outcome.http_status in (201, 202, 402)
            if item is None:
                self.expect(9, not answered, f"key {outcome.key} answered {outcome.http_status} but has no record",
                            outcome.payment_id)
                continue
            pid = int(item["payment_id"]["N"])
            self.expect(9, pid == outcome.payment_id,
                        f"key {outcome.key} records payment {pid}, the request made {outcome.payment_id}", pid)
            if item["status"]["S"] == COMPLETED:
                code, status = int(item["response_status"]["N"]), statuses.get(pid)
                consistent = (code == 201 and _checked_out(status, pid in manual)) or code == 202 or \
                    (code == 402 and status in COMPENSATED)
                self.expect(9, consistent, f"key {outcome.key} stored {code} for a payment now {status}", pid)

    def _manual(self, conn: Connection) -> set[int]:
        return {int(r[0]) for r in conn.execute(text(
            "SELECT id FROM payments WHERE id = ANY(:ids) AND capture_mode = 'manual'"), {"ids": self.payment_ids})}

    # 10 ---------------------------------------------------------------------------------------------------------
    def snowflakes(self) -> None:
        minted = self.run.ids.all_ids()
        duplicates = [i for i, n in Counter(minted).items() if n > 1]
        self.expect(10, not duplicates, f"{len(duplicates)} Snowflake ids minted twice: {duplicates[:3]}")
        for process in self.run.ids.processes:
            ordered = all(a < b for a, b in zip(process.minted, process.minted[1:], strict=False))
            self.expect(10, ordered, f"process {process.name} minted ids out of order")

    # 11 ---------------------------------------------------------------------------------------------------------
    def gateway_keys(self, conn: Connection, calls: dict[int, list[dict[str, Any]]]) -> None:
        """One key per authorization, capture and void of a payment; each refund asked under its own key only,
        `{payment}:refund:{refund}` (the saga's own refund of a whole payment: `{payment}:refund`)."""
        refunds: dict[int, set[int]] = defaultdict(set)
        succeeded: dict[int, set[int]] = defaultdict(set)
        for op_id, pid, status in conn.execute(text(
                "SELECT id, payment_id, status FROM payment_operations WHERE kind = 'refund'"
                " AND payment_id = ANY(:ids)"), {"ids": self.payment_ids}).all():
            refunds[int(pid)].add(int(op_id))
            if status == "succeeded":
                succeeded[int(pid)].add(int(op_id))
        for pid, log in calls.items():
            for operation in ("authorize", "capture", "void"):
                keys = {c["idempotency_key"] for c in log if c["operation"] == operation}
                self.expect(11, len(keys) <= 1, f"{operation} asked with keys {sorted(keys)}", pid)
            allowed = {f"{pid}:refund"} | {f"{pid}:refund:{r}" for r in refunds.get(pid, set())}
            asked = {c["idempotency_key"] for c in log if c["operation"] == "refund"}
            self.expect(11, asked <= allowed, f"refunds asked under keys {sorted(asked - allowed)}, which name no "
                                              f"refund of the payment", pid)
            took = {c["idempotency_key"] for c in log if c["operation"] == "refund" and c["committed"]}
            for refund in succeeded.get(pid, set()):
                self.expect(11, f"{pid}:refund:{refund}" in took,
                            f"refund {refund} succeeded, but the gateway never took it under its key", pid)

    # 12 ---------------------------------------------------------------------------------------------------------
    def answers(self, conn: Connection) -> None:
        """What the merchant was told agrees with the money: 201 only for a payment that succeeded, 402 only for a
        compensated one, and a twin that answered from a final status saw the one the payment has."""
        final: dict[int, str] = {int(r[0]): str(r[1]) for r in conn.execute(
            text("SELECT id, status FROM payments WHERE id = ANY(:ids)"), {"ids": self.payment_ids}).all()}
        manual = self._manual(conn)
        for outcome in self.run.outcomes:
            status = final.get(outcome.payment_id or -1)
            if outcome.http_status == 201:
                self.expect(12, _checked_out(status, outcome.payment_id in manual),
                            f"answered 201 for a payment now {status}", outcome.payment_id)
            elif outcome.http_status == 402:
                self.expect(12, status in COMPENSATED, f"answered 402 for a payment now {status}",
                            outcome.payment_id)
        for twin in self.run.sfn.twins:
            if twin.status in lifecycle.FINAL:
                now = final.get(twin.payment_id)
                self.expect(12, twin.status == now, f"a twin ({twin.where} at {twin.step}) answered from status "
                                                     f"{twin.status}; the payment is {now}", twin.payment_id)

    def money(self, conn: Connection, statuses: Counter[str]) -> None:
        rows = conn.execute(text(
            "SELECT p.id, p.status, p.capture_mode, p.captured_amount_minor,"
            "  array_remove(array_agg(t.kind ORDER BY t.id), NULL) AS kinds,"
            "  max(t.amount_minor) FILTER (WHERE t.kind = 'post') AS posted,"
            "  (SELECT count(*) FROM outbox o WHERE o.payment_id = p.id) AS events,"
            "  (SELECT array_agg(o.kind || ' ' || o.id ORDER BY o.id) FROM payment_operations o"
            "     WHERE o.payment_id = p.id AND o.status = 'pending') AS pending"
            "  FROM payments p LEFT JOIN ledger_transactions t ON t.payment_id = p.id"
            " WHERE p.id = ANY(:ids) GROUP BY p.id"), {"ids": self.payment_ids}).all()
        for r in rows:
            pid, status = int(r.id), str(r.status)
            statuses[status] += 1
            gateway = self.backends.gateway_snapshot(str(pid), self.run.gateway)
            held = gateway is not None and gateway["status"] == "authorized"
            captured = 0 if gateway is None else int(gateway["captured_minor"])
            charged = captured - (0 if gateway is None else int(gateway["refunded_minor"]))
            # Disputes: property 14; the operations' refunds: property 13 (what the gateway gave back).
            kinds = [k for k in r.kinds if not k.startswith(("dispute_", "refund_"))]
            self.expect(12, not r.pending, f"{status} with operations still pending after the finishing replays and "
                                           f"sync passes: {list(r.pending or [])}", pid)
            if status == "succeeded":
                self.expect(12, kinds == ["reserve", "post"] and r.posted == r.captured_amount_minor == captured
                            and r.events >= 1,
                            f"succeeded with ledger {kinds} posted {r.posted}, captured {r.captured_amount_minor}, "
                            f"gateway captured {captured}, {r.events} events", pid)
            elif status == "canceled":  # a manual capture cancelled, or refused: the authorization ended, released
                ended = gateway is not None and gateway["status"] in ("voided", "canceled", "cancelled")
                self.expect(12, r.capture_mode == "manual" and ended and captured == 0 and kinds == ["reserve", "void"],
                            f"canceled but gateway {gateway and gateway['status']} captured {captured}, ledger {kinds}",
                            pid)
            elif lifecycle.awaiting_capture(status, str(r.capture_mode)):  # left for its merchant: still held
                self.expect(12, held and kinds == ["reserve"],
                            f"authorized, awaiting capture, but gateway {gateway and gateway['status']}, "
                            f"ledger {kinds}", pid)
            elif status in COMPENSATED or status == "review":
                resolved = "reserve" not in kinds or "void" in kinds or "reverse" in kinds
                self.expect(12, not held and charged == 0 and resolved,
                            f"{status} but gateway {gateway and gateway['status']} charges {charged}, ledger {kinds}",
                            pid)
            else:
                self.expect(12, False, f"still {status} after {self.run.config.max_replays} replay rounds "
                                       f"(ledger {kinds}, gateway {gateway and gateway['status']})", pid)

    def operation_answers(self, conn: Connection) -> None:
        """What the merchant was told about an operation agrees with its record: 200/201 only for one that succeeded,
        402 only for one that failed; calls that resent a key named the same operation."""
        statuses = {int(r.id): (str(r.kind), str(r.status)) for r in conn.execute(text(
            "SELECT id, kind, status FROM payment_operations WHERE payment_id = ANY(:ids)"),
            {"ids": self.payment_ids}).all()}
        by_key: dict[str, set[int]] = defaultdict(set)
        for call in self.run.after.calls:
            if call.operation_id is not None:
                by_key[call.key].add(call.operation_id)
            final = call.answers[-1] if call.answers else "none"
            kind, status = statuses.get(call.operation_id or -1, (call.kind.value, None))
            if final in ("200", "201"):
                self.expect(12, status == "succeeded", f"{kind} {call.operation_id} ({call.key}) answered {final}, "
                                                       f"now {status}", call.payment_id)
            elif final == "402":
                self.expect(12, status == "failed", f"{kind} {call.operation_id} ({call.key}) answered 402, "
                                                    f"now {status}", call.payment_id)
        for key, named in by_key.items():
            self.expect(7, len(named) == 1, f"key {key} answered for operations {sorted(named)}")

    # 13 ---------------------------------------------------------------------------------------------------------
    def operations_bounded(self, conn: Connection) -> None:
        """Refunds never exceed the capture, capture and cancel exclude each other (DESIGN 8b), and the gateway gave
        back exactly what the ledger posted as refunded."""
        rows = conn.execute(text(
            "SELECT p.id, p.status, p.captured_amount_minor AS captured, p.refund_reserved_minor AS reserved,"
            "  coalesce(sum(o.amount_minor) FILTER (WHERE o.kind = 'refund' AND o.status <> 'failed'), 0) AS held,"
            "  count(*) FILTER (WHERE o.kind IN ('capture', 'cancel') AND o.status <> 'failed') AS exclusive,"
            "  count(*) FILTER (WHERE o.kind = 'capture' AND o.status = 'succeeded') AS captures,"
            "  count(*) FILTER (WHERE o.kind = 'cancel' AND o.status = 'succeeded') AS cancels,"
            "  (SELECT coalesce(sum(t.amount_minor), 0) FROM ledger_transactions t"
            "     WHERE t.payment_id = p.id AND t.kind = 'refund_post') AS refunded"
            "  FROM payments p LEFT JOIN payment_operations o ON o.payment_id = p.id"
            " WHERE p.id = ANY(:ids) GROUP BY p.id"), {"ids": self.payment_ids}).all()
        for r in rows:
            pid = int(r.id)
            self.expect(13, r.held <= (r.captured or 0),
                        f"refunds not failed hold {r.held}, more than the captured {r.captured}", pid)
            self.expect(13, r.reserved == r.held,
                        f"refund_reserved_minor is {r.reserved}, its refunds not failed hold {r.held}", pid)
            self.expect(13, r.exclusive <= 1, f"{r.exclusive} captures or cancels not failed", pid)
            self.expect(13, not (r.captures and r.cancels), f"{r.captures} captures and {r.cancels} cancels "
                                                            "succeeded", pid)
            gateway = self.backends.gateway_snapshot(str(pid), self.run.gateway)
            if gateway is not None and (r.refunded or r.status == "succeeded"):
                self.expect(13, int(gateway["refunded_minor"]) == r.refunded,
                            f"the gateway refunded {gateway['refunded_minor']}, the ledger posted {r.refunded} "
                            f"as refunded", pid)

    # 14 ---------------------------------------------------------------------------------------------------------
    def gateway_events(self, conn: Connection) -> None:
        """Webhooks (local.simulate.gateway_events): every event answered 200 and applied; a dispute opened once
        and decided at most once, as sent, with its ledger movement once; a redelivery changed nothing."""
        events = self.run.events
        if events is None:
            return
        report = events.report
        for refused in report.refused:
            self.expect(14, False, f"a genuine webhook was answered {refused}")
        changes = report.before_redelivery.changed_by(report.after_redelivery)
        self.expect(14, not changes, f"redelivering {report.redelivered} notices changed: {'; '.join(changes)}")
        waiting = conn.execute(text(
            "SELECT event_id, kind, payment_id, last_error FROM gateway_notices"
            " WHERE gateway = :g AND applied_at IS NULL AND payment_id = ANY(:ids)"),
            {"g": self.run.gateway, "ids": self.payment_ids}).all()
        for row in waiting:
            self.expect(14, False, f"notice {row.event_id} ({row.kind}) never applied: {row.last_error}",
                        int(row.payment_id))
        for sent in report.disputes:
            kinds = conn.execute(text("SELECT kind FROM ledger_transactions WHERE payment_id = :p"),
                                 {"p": sent.payment_id}).scalars().all()
            recorded = conn.execute(text("SELECT status FROM disputes WHERE gateway = :g AND reference = :r"),
                                    {"g": self.run.gateway, "r": sent.reference}).scalar_one_or_none()
            expected = ["dispute_opened"] + ([f"dispute_{sent.decision}"] if sent.decision else [])
            moved = sorted(k for k in kinds if k.startswith("dispute_"))
            self.expect(14, moved == sorted(expected) and recorded == (sent.decision or "open"),
                        f"dispute {sent.reference} sent {sent.decision or 'open'}: ledger {moved}, "
                        f"recorded {recorded}", sent.payment_id)

    # 15 ---------------------------------------------------------------------------------------------------------
    def notifications(self, conn: Connection) -> None:
        """DESIGN 8 (12.15): every outbox event of the seed's payments reached SNS, EventBridge and the merchant's
        endpoint at least once (webhook: answered 2xx at least once, every request of one event the same bytes, the
        outbox row's, signed with the endpoint's secret; no delivery failed); nothing was announced on any target that
        no outbox row of that payment holds, or that the payment's record contradicts (payment.succeeded without a
        posted capture or for a payment not succeeded; payment.failed for a payment not compensated)."""
        self.operation_events(conn)
        notified = self.run.notifications
        if not notified.ran:
            return
        rows = conn.execute(text(
            "SELECT o.id, o.payment_id, o.event_type, o.payload, o.created_at, p.status,"
            "  EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.payment_id = p.id AND t.kind = 'post') AS posted"
            "  FROM outbox o JOIN payments p ON p.id = o.payment_id WHERE o.payment_id = ANY(:ids)"),
            {"ids": self.payment_ids}).all()
        outbox = {str(r.id): r for r in rows}
        mine = {str(p) for p in self.payment_ids}
        bodies = {i: json.dumps({"id": i, "type": r.event_type, "created_at": r.created_at.isoformat(),
                                 "data": r.payload}, sort_keys=True, separators=(",", ":")) for i, r in outbox.items()}
        sns: dict[str, list[str]] = defaultdict(list)
        for message in notified.sns:
            sns[str(message.get("id"))].append(json.dumps(message, sort_keys=True, separators=(",", ":")))
        bus: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for event in notified.events:
            raw = event.get("detail") or {}
            detail: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
            bus[str(detail.get("id"))].append((str(event.get("detail-type")), detail))
        hooks: dict[str, list[Any]] = defaultdict(list)
        for request in notified.receiver.requests:
            hooks[request.event_id].append(request)
        failed = {str(r[0]) for r in conn.execute(text(
            "SELECT event_id FROM webhook_deliveries WHERE endpoint_id = :e AND status <> 'succeeded'"),
            {"e": notified.endpoint_id}).all()}
        for event_id, row in outbox.items():
            pid, body = int(row.payment_id), bodies[event_id]
            self.expect(15, event_id in sns, f"{row.event_type} {event_id} never reached SNS", pid)
            self.expect(15, all(b == body for b in sns.get(event_id, [])),
                        f"SNS carried {event_id} with bytes other than its outbox row's", pid)
            own = [d for t, d in bus.get(event_id, []) if t == row.event_type]
            self.expect(15, bool(own), f"{row.event_type} {event_id} never reached EventBridge", pid)
            self.expect(15, all(d == json.loads(body) for d in own),
                        f"EventBridge carried {event_id} with a detail other than its outbox row's", pid)
            requests = hooks.get(event_id, [])
            self.expect(15, any(r.answer == "200" for r in requests),
                        f"{row.event_type} {event_id} never reached the merchant's endpoint "
                        f"({[r.answer for r in requests]}; delivery {'not ' if event_id in failed else ''}done)", pid)
            self.expect(15, event_id not in failed, f"the webhook delivery of {event_id} is not succeeded", pid)
            self.expect(15, all(r.body == body.encode() for r in requests),
                        f"the webhook of {event_id} was sent with {len({r.body for r in requests})} bodies, "
                        "not its outbox row's bytes each time", pid)
            self.expect(15, all(notified.signature_ok(r) for r in requests),
                        f"a webhook of {event_id} has no valid signature", pid)
        announced: list[tuple[str, str, str, Any]] = []  # (target, event id, type said, payment id said)
        for event_id, texts in sns.items():
            for sent in texts:
                said = json.loads(sent)
                announced.append(("SNS", event_id, str(said.get("type")), (said.get("data") or {}).get("payment_id")))
        for event_id, entries in bus.items():
            for detail_type, detail in entries:
                announced.append((f"EventBridge {detail_type}", event_id, str(detail.get("type")),
                                  (detail.get("data") or {}).get("payment_id")))
        for event_id, requests in hooks.items():
            for request in requests:
                said = json.loads(request.body) if request.body else {}
                announced.append(("the merchant's endpoint", event_id, str(said.get("type")),
                                  (said.get("data") or {}).get("payment_id", "?")))
        for target, event_id, said_type, said_payment in announced:
            if target != "the merchant's endpoint" and str(said_payment) not in mine:
                continue  # another seed's payment (the endpoint is this seed's merchant's alone)
            held = outbox.get(event_id)
            said_pid = int(said_payment) if str(said_payment).isdigit() else None
            if held is None or str(held.payment_id) != str(said_payment) or held.event_type != said_type:
                self.expect(15, False, f"{target} announced {said_type} {event_id}, which no outbox row of payment "
                                       f"{said_payment} holds", said_pid)
                continue
            self.expect(15, _agrees(said_type, str(held.status), bool(held.posted)),
                        f"{target} announced {said_type} {event_id} for a payment now {held.status} "
                        f"({'a' if held.posted else 'no'} posted capture in the ledger)", said_pid)


    def operation_events(self, conn: Connection) -> None:
        """Every decided operation wrote exactly one event of its type (OPERATION_EVENTS; a refused capture the
        payment.canceled of the authorization it ended, if it ended one), a pending one none, and no event of another
        type; the notifications check above follows each to every target."""
        rows = conn.execute(text(
            "SELECT o.id, o.payment_id, o.kind, o.status, p.status AS payment_status,"
            "  array_remove(array_agg(e.event_type ORDER BY e.id), NULL) AS events"
            "  FROM payment_operations o JOIN payments p ON p.id = o.payment_id"
            "  LEFT JOIN outbox e ON e.operation_id = o.id"
            " WHERE o.payment_id = ANY(:ids) GROUP BY o.id, o.payment_id, o.kind, o.status, p.status"),
            {"ids": self.payment_ids}).all()
        for r in rows:
            events = list(r.events)
            expected = OPERATION_EVENTS.get((str(r.kind), str(r.status)))
            if (r.kind, r.status) == ("capture", "failed") and events:
                expected = "payment.canceled"  # the refused capture ended the authorization
            wanted = [expected] if expected else []
            self.expect(15, events == wanted, f"{r.kind} {r.id} {r.status} wrote events {events}, not {wanted}",
                        int(r.payment_id))
            if (r.kind, r.status) == ("capture", "failed") and events:
                self.expect(15, r.payment_status == "canceled",
                            f"refused capture {r.id} announced payment.canceled, the payment is {r.payment_status}",
                            int(r.payment_id))


    # 17 ---------------------------------------------------------------------------------------------------------
    def settlement(self, conn: Connection) -> None:
        """A sandbox seed's settlement (local/simulate/settlement.py): imported whole or not at all, once under
        concurrency; posted as its lines say, balanced; a batch whose lines all matched nets the clearing account to
        zero; and the ledger agrees with the gateway about this seed's payments."""
        done = getattr(self.run, "settlement", None)
        if done is None:
            return
        self.expect(17, not done.errors, "; ".join(done.errors))
        self.expect(17, done.crashed_import_left == 0,
                    f"an import that crashed before committing left {done.crashed_import_left} rows behind")
        fresh = [r for r in done.concurrent if not r.imported_before]
        self.expect(17, len(done.concurrent) == 2 and len(fresh) <= 1,
                    f"two importers of one feed: {[(r.imported_before, r.new_line_count) for r in done.concurrent]}")
        self.expect(17, done.again is not None and done.again.new_line_count == 0,
                    f"the feed imported again added lines: {done.again}")
        for row in conn.execute(text(_POSTED_AS_SETTLED)).all():
            self.expect(17, False, f"batch {row.batch_id} {row.currency}: lines gross {row.lines_gross}, posted to"
                                   f" the clearing account {row.posted_gross}")
        self.checked["P17"] += 1
        for row in conn.execute(text(_MATCHED_BATCHES)).all():
            self.expect(17, int(row.clearing_net_minor) == 0,
                        f"batch {row.batch_id} {row.currency} matched in full but leaves {row.clearing_net_minor}"
                        " in the gateway clearing account")
        for row in conn.execute(text(_DISAGREEMENTS), {"ids": self.payment_ids}).all():
            explained = row.kind == "unknown_to_ledger" and row.settled_net == 0 and not row.posted
            self.expect(17, explained, f"{row.kind} {row.subject}: {row.detail} (payment {row.status})",
                        int(row.payment_id))


# Per batch and currency, what the settlement transactions credited the clearing account with against the gross of
# the batch's lines (payouts aside): they must be the same.
_POSTED_AS_SETTLED = """
WITH lines AS (
    SELECT batch_id, currency, sum(gross_minor) AS gross FROM settlement_lines WHERE type <> 'payout'
     GROUP BY batch_id, currency
), posted AS (
    SELECT t.settlement_batch_id AS batch_id, t.currency,
           sum(CASE e.side WHEN 'credit' THEN e.amount_minor ELSE -e.amount_minor END) AS gross
      FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id
      JOIN accounts a ON a.id = e.account_id AND a.kind = 'gateway_clearing'
     WHERE t.kind = 'settlement' GROUP BY t.settlement_batch_id, t.currency
)
SELECT coalesce(l.batch_id, p.batch_id) AS batch_id, coalesce(l.currency, p.currency) AS currency,
       l.gross AS lines_gross, p.gross AS posted_gross
  FROM lines l FULL JOIN posted p ON p.batch_id = l.batch_id AND p.currency = l.currency
 WHERE coalesce(l.gross, 0) <> coalesce(p.gross, 0)
"""
# The batches none of whose lines a discrepancy names, and whose lines all name their payment.
_MATCHED_BATCHES = """
SELECT c.batch_id, c.currency, c.clearing_net_minor FROM v_batch_clearing c
 WHERE NOT EXISTS (SELECT 1 FROM recon_discrepancies d WHERE d.batch_id = c.batch_id OR d.line_ids &&
                   ARRAY(SELECT l.id FROM settlement_lines l WHERE l.batch_id = c.batch_id))
   AND NOT EXISTS (SELECT 1 FROM settlement_lines l WHERE l.batch_id = c.batch_id AND l.payment_id IS NULL
                   AND l.type <> 'payout')
"""
# What the reconciliation found about these payments: only a capture the gateway refunded in full, which the ledger
# never posted (a compensation before CommitLedger), is explained; anything else is the ledger and the gateway
# disagreeing about money.
_DISAGREEMENTS = """
SELECT d.kind, d.subject, d.detail, d.payment_id, p.status,
       (SELECT coalesce(sum(l.gross_minor), 0) FROM settlement_lines l
         WHERE l.payment_id = d.payment_id AND l.type <> 'payout') AS settled_net,
       EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.payment_id = d.payment_id AND t.kind = 'post') AS posted
  FROM recon_discrepancies d LEFT JOIN payments p ON p.id = d.payment_id
 WHERE d.gateway = 'sandbox' AND d.payment_id = ANY(:ids)
"""


def _agrees(event_type: str, status: str, posted: bool) -> bool:
    """Whether an announced event agrees with the payment's record."""
    if event_type == "payment.succeeded":
        return posted and status in ("succeeded", "refunded")
    if event_type == "payment.failed":
        return status in COMPENSATED
    if event_type == "payment.review":
        return not posted and status == "review"
    if event_type == "payment.captured":  # a manual capture committed
        return posted and status == "succeeded"
    if event_type == "payment.canceled":
        return not posted and status == "canceled"
    if event_type.startswith("refund."):  # only of a captured payment; each refund's own: operation_events
        return posted and status == "succeeded"
    return True  # later events (a dispute) are checked by their own property


def _checked_out(status: str | None, manual: bool) -> bool:
    """Whether a checkout answered 201 agrees with the payment's status: succeeded; for a manual capture, authorized
    (the merchant captures or cancels it later), or what it became after: succeeded or canceled."""
    return status == "succeeded" or (manual and status in ("authorized", "canceled"))


def _operation_outcome(step: str, result: Any) -> Any:
    """An operation step's answer with its outcome in the record's words (SAME_OPERATION_OUTCOME)."""
    if not isinstance(result, dict):
        return result
    same = SAME_OPERATION_OUTCOME.get(step, {})
    return {k: same.get(v, v) if k in ("status", "action") and isinstance(v, str) else v for k, v in result.items()}


def _normal(result: Any) -> Any:
    if not isinstance(result, dict):
        return result
    shown = {k: v for k, v in result.items() if k not in RUN_KEYS}
    if "outcome" in shown and shown["outcome"] in SAME_VOID:
        shown["outcome"] = SAME_VOID[shown["outcome"]]
    return shown


def _queue_seen(run: SeedRun) -> list[dict[str, Any]]:
    """Every event published to the notifications queue: what the simulation's consumer received (each message once),
    and what another consumer (a stack's notification worker) took first and announced on SNS; without the
    simulation's consumer, the queue drained now."""
    notified = run.notifications
    if not notified.ran:
        return run.backends.drain_queue()
    queue = list(notified.received)
    ids = {str(m.get("id")) for m in queue}
    for event in notified.sns:
        if str(event.get("id")) not in ids:
            ids.add(str(event.get("id")))
            queue.append(event)
    return queue


def check_all(run: SeedRun, *, entries_before: dict[int, tuple[Any, ...]]
              ) -> tuple[list[Violation], Counter[str], Counter[str]]:
    checker = _Checker(run)
    calls: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for pid in checker.payment_ids:
        calls[pid] = run.backends.gateway_calls(str(pid), run.gateway)
    queue = _queue_seen(run)
    statuses: Counter[str] = Counter()
    with run.backends.engine.connect() as conn:
        checker.balanced(conn)
        checker.append_only(conn, entries_before)
        checker.one_effect(conn, calls, queue)
        checker.reservations(conn)
        checker.accounts(conn)
        checker.points_in_time(conn)
        checker.keys(conn, calls)
        checker.snowflakes()
        checker.gateway_keys(conn, calls)
        checker.answers(conn)
        checker.money(conn, statuses)
        checker.operation_answers(conn)
        checker.operations_bounded(conn)
        checker.gateway_events(conn)
        checker.notifications(conn)
        checker.settlement(conn)
        conn.rollback()
    return checker.violations, checker.checked, statuses
