"""Load over HTTP while PostgreSQL restarts (pg_ctl restart of the stack's cluster) and Redis stops and starts:
afterwards nothing is lost (every payment is final, or parked and finished by a replay), nothing is charged twice,
and the ledger balances. Its own stack (the faults hit every process using it); bounded in requests and time;
loopback only. Faults are timed by progress (responses received), never by sleeping."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import text

from core.settings import settings
from local.saga_runtime import local_services
from local.stack.postgres import find_bindir
from local.stack.process import unprivileged_user
from local.stack.state import load
from local.testing.live import TEST_ENV, LiveStack, live_stack
from saga.replay import ReplayError, replay

DISTINCT_REQUESTS = 48
DUPLICATED = 12  # of those keys, sent a second time at once (same body)
CLIENTS = 8
MAX_TRIES = 6  # per request: 503 / 409 are retried with the same key, as the API asks
PG_RESTART_AFTER = 10  # responses
REDIS_STOP_AFTER = 25
REDIS_STOPPED_FOR = 6  # responses while Redis is stopped (bounded by FAULT_WAIT_S too)
FAULT_WAIT_S = 60.0
FINAL = {"succeeded", "review", "rejected", "failed", "refunded"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LiveStack]:
    with live_stack() as own:
        yield own


class Progress:
    def __init__(self) -> None:
        self.responses = 0
        self.cond = threading.Condition()
        self.calm = threading.Event()  # cleared while a fault is on: a client told 503 waits for it, not a timer
        self.calm.set()

    def one_more(self) -> None:
        with self.cond:
            self.responses += 1
            self.cond.notify_all()

    def wait_for(self, count: int) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.responses >= count, timeout=FAULT_WAIT_S)


def _restart_postgres(stack: LiveStack) -> None:
    datadir = stack.root / "postgres" / "data"
    logfile = stack.root / "postgres" / "log" / "postgres.log"
    # -l: the new postmaster writes to the stack's log, not to our pipe (which would then never reach EOF).
    result = subprocess.run([str(find_bindir() / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-m", "fast",
                             "-w", "-t", "60", "restart"], user=unprivileged_user(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr


def _faults(stack: LiveStack, progress: Progress, log: list[str]) -> None:
    try:
        _inject(stack, progress, log)
    except BaseException as error:  # the test thread reads the log: a failure here must show there
        log.append(f"fault injection failed: {error!r}")


def _inject(stack: LiveStack, progress: Progress, log: list[str]) -> None:
    redis_pid = load(stack.root).parts["redis"].pid
    assert redis_pid is not None
    if progress.wait_for(PG_RESTART_AFTER):
        progress.calm.clear()
        try:
            _restart_postgres(stack)
            log.append("postgres restarted")
        finally:
            progress.calm.set()
    if progress.wait_for(REDIS_STOP_AFTER):
        progress.calm.clear()
        os.kill(redis_pid, signal.SIGSTOP)
        try:
            log.append("redis stopped")
            progress.wait_for(progress.responses + REDIS_STOPPED_FOR)
        finally:
            os.kill(redis_pid, signal.SIGCONT)
            log.append("redis started")
            progress.calm.set()


def _pay(client: httpx.Client, api_key: str, key: str, body: dict[str, object], progress: Progress) -> list[int]:
    statuses: list[int] = []
    for _ in range(MAX_TRIES):
        try:
            response = client.post("/v1/payments", json=body,
                                   headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key})
            statuses.append(response.status_code)
        except httpx.TransportError:
            statuses.append(0)
        progress.one_more()
        if statuses[-1] not in (0, 409, 503):
            break
        if statuses[-1] == 409:  # the same key is in flight elsewhere: wait for some request to finish
            progress.wait_for(progress.responses + 1)
        else:  # a backend is down: retry once the fault is over (Retry-After, told by the condition)
            progress.calm.wait(timeout=FAULT_WAIT_S)
    return statuses


def test_load_while_postgres_restarts_and_redis_stops(stack: LiveStack, monkeypatch: pytest.MonkeyPatch) -> None:
    merchant_id, api_key = stack.new_merchant()
    tokens = ("tok_approve",) * 6 + ("tok_decline", "tok_5xx_then_success")
    requests = [(f"load-{i}", {"amount_minor": 700 + i * 13, "currency": "EUR", "payment_method_token": tokens[i % 8],
                               "customer_reference": f"load-cus-{i}", "order_reference": f"load-{i}"})
                for i in range(DISTINCT_REQUESTS)]
    work = requests + requests[:DUPLICATED]  # the duplicates reuse key and body
    progress, fault_log = Progress(), []
    faults = threading.Thread(target=_faults, args=(stack, progress, fault_log), name="load-faults")
    faults.start()
    try:
        with httpx.Client(base_url=stack.api_url, timeout=120) as client, ThreadPoolExecutor(CLIENTS) as pool:
            answers = list(pool.map(lambda item: (item[0], _pay(client, api_key, item[0], item[1], progress)),
                                    work))
    finally:
        faults.join(timeout=FAULT_WAIT_S * 3)
    assert fault_log == ["postgres restarted", "redis stopped", "redis started"], fault_log
    stack.engine.dispose()  # its pooled connections died with the restart

    # The engineer replays what is parked or was left unfinished, with the stack's own settings.
    for name, value in {**load(stack.root).env(), **TEST_ENV}.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    with stack.engine.connect() as conn:
        unfinished = conn.execute(text(
            "SELECT DISTINCT ON (p.id) p.id, e.execution_arn FROM payments p JOIN saga_executions e"
            " ON e.payment_id = p.id WHERE p.merchant_id = :m AND p.status NOT IN"
            " ('succeeded', 'review', 'rejected', 'failed', 'refunded') ORDER BY p.id, e.started_at DESC"),
            {"m": merchant_id}).all()
    services = local_services(settings())
    for _, arn in unfinished:
        for _ in range(3):
            try:
                if replay(services, arn).payment_status in FINAL:
                    break
            except ReplayError:
                break
    services.close()
    settings.cache_clear()

    with stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, order_ref, status, amount_minor FROM payments WHERE merchant_id = :m"),
                            {"m": merchant_id}).all()
        per_order = Counter(r.order_ref for r in rows)
        unbalanced = conn.execute(text(
            "SELECT t.id FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id"
            " GROUP BY t.id, e.effect HAVING sum(e.amount_minor) FILTER (WHERE e.side = 'debit')"
            " IS DISTINCT FROM sum(e.amount_minor) FILTER (WHERE e.side = 'credit')")).all()
        trial = conn.execute(text("SELECT currency, difference_minor FROM v_trial_balance_totals")).all()
        stranded = conn.execute(text(
            "SELECT r.payment_id FROM ledger_transactions r JOIN payments p ON p.id = r.payment_id"
            " WHERE r.kind = 'reserve' AND p.merchant_id = :m AND NOT EXISTS"
            " (SELECT 1 FROM ledger_transactions x WHERE x.pending_transaction_id = r.id)"), {"m": merchant_id}).all()

    accepted = {key for key, statuses in answers if any(s in (201, 202, 402) for s in statuses)}
    assert len(accepted) >= DISTINCT_REQUESTS * 3 // 4, Counter(s for _, ss in answers for s in ss)
    # Nothing lost: every accepted key has its one payment, and every payment is final.
    orders = {body["order_reference"] for key, body in requests if key in accepted}
    assert orders <= set(per_order), orders - set(per_order)
    assert all(count == 1 for count in per_order.values()), per_order
    assert {r.status for r in rows} <= FINAL, Counter(r.status for r in rows)
    # Nothing charged twice, nothing held: the gateway's own record.
    for r in rows:
        calls = stack.gateway_calls(str(r.id))
        captures = [c for c in calls if c["operation"] == "capture" and c["committed"]
                    and c["outcome"] in ("captured", "capture_submitted")]
        authorizations = [c for c in calls if c["operation"] == "authorize" and c["committed"]]
        assert len(captures) <= 1 and len(authorizations) <= 1, (r.id, calls)
        assert {c["idempotency_key"] for c in calls if c["operation"] == "authorize"} <= {str(r.id)}
    # The ledger balances.
    assert unbalanced == [] and all(d == 0 for _, d in trial) and stranded == [], (unbalanced, trial, stranded)
