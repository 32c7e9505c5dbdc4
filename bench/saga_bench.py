"""The whole payment saga on the local stack, beside its PostgreSQL limit, in one run; then a paper AWS cost model.

1. The full saga through the start handler (HTTP API -> idempotency gate -> local ASL runtime -> six steps), sandbox
   gateway at 0 ms, at 1/4/16 concurrent checkouts: payments/s, p50/p95/p99, and per-step medians from each
   execution's history (saga_executions.history: TaskScheduled -> TaskSucceeded per state).
2. The limit, interleaved with 1 at each level: the PostgreSQL statements one payment issues (captured in-process
   through SQLAlchemy's cursor events while one saga runs), replayed with psycopg directly, fresh ids, same
   concurrency, same server. saga / limit is printed as a ratio. PostgreSQL server CPU per payment for both.
3. Gateway at a realistic latency (200 ms per call): p95/p99 end to end minus gateway time (calls x latency, calls
   counted per payment from the sandbox's call log) = what the orchestrator adds.
4. A paper cost model for AWS at 3M payments/day (bench/cost_model.py) from the measured figures.

Starts its own throwaway stack (`paysaga stack up` in a temp dir). Writes bench/out/saga_bench.png and .json.
    .venv/bin/python bench/saga_bench.py [--payments 120] [--repeats 2] [--latency-payments 48] [--latency-ms 200]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/: cost_model and report

import cost_model
from report import history as hist
from report import pgcpu
from report.load import Batch, http_batch, replay_batch
from report.plot import plot
from report.sql_replay import Capture, Replayer, capturing

from local.stack.state import load
from local.testing.live import TEST_ENV, LiveStack, live_stack

OUT = Path(__file__).resolve().parent / "out"
STEPS = ("ValidatePayment", "ReserveBalance", "AuthorizeGateway", "CaptureOrVoid", "CommitLedger", "NotifyMerchant")
COMPARABLE_USD_PER_TRANSACTION = 0.00036  # reported by a comparable AWS payment platform (the figure)
PAYMENTS_PER_DAY = 3_000_000
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = p / 100 * (len(ordered) - 1)  # linear interpolation between closest ranks
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(latencies: list[float], rates: list[float]) -> dict[str, float]:
    return {"p50": pct(latencies, 50), "p95": pct(latencies, 95), "p99": pct(latencies, 99),
            "per_s": statistics.median(rates)}


def capture_one(stack: LiveStack, merchant_id: str, api_key: str) -> tuple[Capture, dict[str, Any]]:
    """Run one payment through the start handler in this process and record its PostgreSQL statements."""
    for line in stack.cli("stack", "env").stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        os.environ[name] = value.strip("'")
    os.environ.update(TEST_ENV)
    from ulid import ULID

    from core.settings import settings
    from local.http.apigateway import new_context, to_event
    from local.saga_runtime import local_services
    from saga.handler import make_handler

    settings.cache_clear()
    services = local_services(settings())
    handler = make_handler(services)
    body = json.dumps({"amount_minor": 1999, "currency": "EUR", "payment_method_token": "tok_approve",
                       "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"}).encode()
    event = to_event(method="POST", path="/v1/payments", body=body, query=[], source_ip="127.0.0.1",
                     headers=[("Authorization", f"Bearer {api_key}"), ("Idempotency-Key", str(ULID())),
                              ("Content-Type", "application/json")])
    with capturing() as capture:
        result = handler(event, new_context("paysaga-start"))
    services.close()  # stop its heartbeat and give the worker slot back before the stack goes away
    assert result["statusCode"] == 201, result
    answer = json.loads(result["body"])
    capture.payment_id = int(answer["id"])
    capture.keep = frozenset(re.findall(r"[0-9A-HJKMNP-TV-Z]{26}", merchant_id))
    return capture, answer


def check_replay(stack: LiveStack, capture: Capture) -> None:
    """One replayed payment must leave what the captured one left: same status, same ledger rows."""
    replayer = Replayer(capture, stack.urls["postgres"].replace("postgresql+psycopg", "postgresql"))
    try:
        new_id = replayer.run()
    finally:
        replayer.close()
    query = text("SELECT p.status, (SELECT count(*) FROM ledger_entries e JOIN ledger_transactions t "
                 "ON t.id = e.transaction_id WHERE t.payment_id = p.id) FROM payments p WHERE p.id = :id")
    with stack.engine.connect() as conn:
        original = conn.execute(query, {"id": capture.payment_id}).one()
        replayed = conn.execute(query, {"id": new_id}).one()
    assert tuple(original) == tuple(replayed), (original, replayed)


BETWEEN = "runtime between steps"  # execution minus its tasks: the ASL runtime's own work, per execution
OUTSIDE = "outside the execution (HTTP, auth, gate, rows)"  # end to end minus execution, per payment
E2E = "end to end"


def step_medians(stack: LiveStack, batch: Batch) -> tuple[dict[str, float], float]:
    """Per-state median ms over this batch's executions, the per-payment remainders (BETWEEN, OUTSIDE, E2E; each a
    median of per-payment differences, since medians do not add), and the median history size in bytes."""
    with stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT payment_id, history FROM saga_executions WHERE payment_id = ANY(:ids)"),
                            {"ids": batch.payment_ids}).all()
    e2e = dict(zip(batch.payment_ids, batch.latencies_ms, strict=True))
    per_state: dict[str, list[float]] = {}
    sizes: list[float] = []
    for payment_id, events in rows:
        sizes.append(len(json.dumps(events, separators=(",", ":"))))
        durations = hist.step_durations_ms(events)
        durations[BETWEEN] = durations[hist.EXECUTION] - sum(durations.get(n, 0.0) for n in STEPS)
        durations[OUTSIDE] = e2e[payment_id] - durations[hist.EXECUTION]
        durations[E2E] = e2e[payment_id]
        for state, ms in durations.items():
            per_state.setdefault(state, []).append(ms)
    return {state: statistics.median(v) for state, v in per_state.items()}, statistics.median(sizes)


def gateway_calls(stack: LiveStack, payment_ids: list[int]) -> list[int]:
    with httpx.Client(base_url=stack.gateway_url, timeout=10) as client:
        return [len(client.get("/_sandbox/calls", params={"payment_id": str(p)}).json()["calls"])
                for p in payment_ids]


def db_bytes(stack: LiveStack) -> int:
    with stack.engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=120, help="payments per level and repeat, gateway at 0 ms")
    parser.add_argument("--repeats", type=int, default=2, help="saga + limit runs per level (interleaved)")
    parser.add_argument("--latency-payments", type=int, default=48, help="payments per level at --latency-ms")
    parser.add_argument("--latency-ms", type=int, default=200, help="realistic sandbox gateway latency per call")
    parser.add_argument("--levels", default="1,4,16", help="concurrent checkouts")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    console = Console(width=160)
    started = time.perf_counter()
    results: dict[str, Any] = {"args": vars(args), "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with live_stack() as stack:
        merchant_id, api_key = stack.new_merchant(max_amount_minor=10**9)
        console.print(f"stack up in {time.perf_counter() - started:.0f} s; warm-up")
        http_batch(stack.api_url, api_key, 30, 4)  # imports, pools, worker slot, ledger ids above account ids
        capture, _ = capture_one(stack, merchant_id, api_key)
        check_replay(stack, capture)
        statements = capture.statements
        writes = sum(1 for op in statements if WRITE.match(op.statement))
        console.print(f"captured one payment: {len(statements)} statements ({writes} writes), {capture.commits} "
                      f"commits, {capture.slots} connection(s); a replay leaves the same rows")
        pg_url = stack.urls["postgres"].replace("postgresql+psycopg", "postgresql")
        with stack.engine.connect() as conn:
            postmaster = pgcpu.postmaster_of(int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()))
        parts = {name: part.pid for name, part in load(stack.root).parts.items() if part.pid is not None}

        zero: dict[int, dict[str, Any]] = {}
        grown_bytes, grown_payments = 0, 0
        for level in levels:
            saga_lat: list[float] = []
            limit_lat: list[float] = []
            saga_rates: list[float] = []
            limit_rates: list[float] = []
            saga_batches: list[Batch] = []
            failures: list[str] = []
            cpu = {"saga": 0.0, "limit": 0.0}
            parts_cpu = dict.fromkeys(parts, 0.0)
            client_cpu = 0.0
            done = {"saga": 0, "limit": 0}
            for _ in range(args.repeats):  # interleaved, so drift in the machine hits both alike
                size_before = db_bytes(stack)
                backends = pgcpu.children(postmaster)
                cpu_before = pgcpu.server_cpu_s(postmaster)
                parts_before = {name: pgcpu.process_cpu_s(pid) for name, pid in parts.items()}
                client_before = sum(os.times()[:2])
                saga = http_batch(stack.api_url, api_key, args.payments, level)
                client_cpu += sum(os.times()[:2]) - client_before
                for name, pid in parts.items():
                    parts_cpu[name] += pgcpu.process_cpu_s(pid) - parts_before[name]
                pgcpu.settle(postmaster, backends)
                cpu["saga"] += pgcpu.server_cpu_s(postmaster) - cpu_before
                grown_bytes += db_bytes(stack) - size_before
                grown_payments += len(saga.latencies_ms)
                backends = pgcpu.children(postmaster)
                cpu_before = pgcpu.server_cpu_s(postmaster)
                limit: Batch = replay_batch(lambda: Replayer(capture, pg_url), args.payments, level)
                pgcpu.settle(postmaster, backends)
                cpu["limit"] += pgcpu.server_cpu_s(postmaster) - cpu_before
                for name, batch in (("saga", saga), ("limit", limit)):
                    done[name] += len(batch.latencies_ms)
                saga_lat += saga.latencies_ms
                limit_lat += limit.latencies_ms
                saga_rates.append(saga.per_s)
                limit_rates.append(limit.per_s)
                saga_batches.append(saga)
                failures += saga.failures + limit.failures
            merged = Batch(level, latencies_ms=[x for b in saga_batches for x in b.latencies_ms],
                           payment_ids=[x for b in saga_batches for x in b.payment_ids])
            steps, history_bytes = step_medians(stack, merged)
            zero[level] = {"saga": summary(saga_lat, saga_rates), "limit": summary(limit_lat, limit_rates),
                           "steps_ms": steps, "failures": failures, "history_bytes": history_bytes,
                           "pg_cpu_ms": {k: cpu[k] / max(done[k], 1) * 1000 for k in cpu},
                           "cpu_ms_per_payment": {"postgres": cpu["saga"] / max(done["saga"], 1) * 1000,
                                                  **{n: v / max(done["saga"], 1) * 1000 for n, v in parts_cpu.items()},
                                                  "bench client": client_cpu / max(done["saga"], 1) * 1000}}
            s, lim = zero[level]["saga"], zero[level]["limit"]
            console.print(f"  {level:2} concurrent: saga {s['per_s']:.1f}/s p50 {s['p50']:.0f} ms | limit "
                          f"{lim['per_s']:.1f}/s p50 {lim['p50']:.1f} ms | failures {len(failures)}")

        stack.configure_gateway(latency_ms=args.latency_ms)
        real: dict[int, dict[str, Any]] = {}
        for level in levels:
            batch = http_batch(stack.api_url, api_key, args.latency_payments, level)
            calls = gateway_calls(stack, batch.payment_ids)
            added = [lat - n * args.latency_ms for lat, n in zip(batch.latencies_ms, calls, strict=True)]
            steps, history_bytes = step_medians(stack, batch)
            real[level] = {"saga": summary(batch.latencies_ms, [batch.per_s]), "steps_ms": steps,
                           "added": summary(added, [batch.per_s]), "calls_median": statistics.median(calls),
                           "failures": batch.failures, "history_bytes": history_bytes,
                           "response_bytes": statistics.median(batch.response_bytes or [0])}
            console.print(f"  {level:2} concurrent at {args.latency_ms} ms: {batch.per_s:.1f}/s, "
                          f"p95 {real[level]['saga']['p95']:.0f} ms, failures {len(batch.failures)}")
        results |= {"zero": zero, "real": real, "statements": len(statements), "writes": writes,
                    "commits": capture.commits, "db_bytes_per_payment": grown_bytes / max(grown_payments, 1)}
    results["elapsed_s"] = time.perf_counter() - started
    results["load_after"] = os.getloadavg()[0]
    report(console, results, args, levels)


def report(console: Console, r: dict[str, Any], args: argparse.Namespace, levels: list[int]) -> None:
    zero, real = r["zero"], r["real"]
    table = Table(title=f"Saga vs PostgreSQL limit, gateway 0 ms ({args.payments} payments x {args.repeats} repeats "
                        f"per level; {r['cpus']} CPUs; payments/s = median of repeats)")
    for column in ("concurrent", "saga /s", "limit /s", "saga/limit", "saga p50", "p95", "p99", "limit p50",
                   "p95", "p99", "PG CPU ms/pay saga", "limit", "failed"):
        table.add_column(column, justify="right")
    for level in levels:
        s, lim, cpu = zero[level]["saga"], zero[level]["limit"], zero[level]["pg_cpu_ms"]
        table.add_row(str(level), f"{s['per_s']:.1f}", f"{lim['per_s']:.1f}", f"{s['per_s'] / lim['per_s']:.3f}",
                      *(f"{s[p]:.0f}" for p in ("p50", "p95", "p99")),
                      *(f"{lim[p]:.1f}" for p in ("p50", "p95", "p99")),
                      f"{cpu['saga']:.2f}", f"{cpu['limit']:.2f}", str(len(zero[level]["failures"])))
    console.print(table)
    console.print(f"limit = the {r['statements']} statements ({r['writes']} writes, {r['commits']} commits) of one "
                  "payment replayed with psycopg on the same server; no DynamoDB, Redis, SQS, gateway or Python.")

    steps = Table(title="Where the time goes: median ms per step (from saga_executions.history)")
    steps.add_column("step")
    for level in levels:
        steps.add_column(f"0 ms, c={level}", justify="right")
    for level in levels:
        steps.add_column(f"{args.latency_ms} ms, c={level}", justify="right")
    for name in (*STEPS, hist.EXECUTION, BETWEEN, OUTSIDE, E2E):
        steps.add_row(name, *(f"{d[c]['steps_ms'].get(name, float('nan')):.1f}" for d in (zero, real) for c in levels))
    console.print(steps)

    cpu = Table(title="CPU ms per payment by process, saga at gateway 0 ms (/proc; a 2-core machine has 2,000 ms/s)")
    cpu.add_column("process")
    for level in levels:
        cpu.add_column(f"c={level}", justify="right")
    for name in zero[levels[0]]["cpu_ms_per_payment"]:
        cpu.add_row(name, *(f"{zero[c]['cpu_ms_per_payment'][name]:.1f}" for c in levels))
    console.print(cpu)

    added = Table(title=f"Gateway at {args.latency_ms} ms per call: what the orchestrator adds "
                        f"({args.latency_payments} payments per level)")
    for column in ("concurrent", "payments/s", "e2e p50", "p95", "p99", "gateway calls", "e2e - gateway p50",
                   "p95", "p99", "failed"):
        added.add_column(column, justify="right")
    for level in levels:
        s, a = real[level]["saga"], real[level]["added"]
        added.add_row(str(level), f"{s['per_s']:.1f}", *(f"{s[p]:.0f}" for p in ("p50", "p95", "p99")),
                      f"{real[level]['calls_median']:.0f}", *(f"{a[p]:.0f}" for p in ("p50", "p95", "p99")),
                      str(len(real[level]["failures"])))
    console.print(added)

    deployment, source = cost_model.deployment_from_infra()
    base = real[levels[0]]  # one at a time: no local CPU contention, the closest to one Lambda per request
    measured = cost_model.Measured(
        end_to_end_ms=base["steps_ms"][E2E], execution_ms=base["steps_ms"][hist.EXECUTION],
        step_ms={n: base["steps_ms"][n] for n in STEPS}, history_bytes=base["history_bytes"],
        response_bytes=base["response_bytes"], pg_cpu_s=zero[levels[0]]["pg_cpu_ms"]["saga"] / 1000,
        pg_write_statements=r["writes"], pg_commits=r["commits"], pg_bytes=r["db_bytes_per_payment"])
    rows = cost_model.cost_per_payment(measured, deployment, PAYMENTS_PER_DAY)
    costs = Table(title=f"PAPER cost model, AWS us-east-1 list prices, {PAYMENTS_PER_DAY:,} payments/day "
                        "(not measured on AWS)")
    for column in ("service", "counted per payment", "$ / payment", "$ / day"):
        costs.add_column(column, justify="left" if column != "$ / payment" and column != "$ / day" else "right")
    total = 0.0
    for service, what, usd in rows:
        total += usd
        costs.add_row(service, what, f"{usd:.8f}", f"{usd * PAYMENTS_PER_DAY:,.2f}")
    costs.add_row("total", "", f"{total:.8f}", f"{total * PAYMENTS_PER_DAY:,.2f}")
    costs.add_row("comparable AWS payment platform", "reported", f"{COMPARABLE_USD_PER_TRANSACTION:.8f}",
                  f"{COMPARABLE_USD_PER_TRANSACTION * PAYMENTS_PER_DAY:,.2f}")
    costs.add_row("ratio", "ours / comparable", f"{total / COMPARABLE_USD_PER_TRANSACTION:.3f}", "")
    console.print(costs)
    peak = cost_model.peak_acu(measured, PAYMENTS_PER_DAY)
    console.print(
        f"Deployment: {source}. Durations from the {args.latency_ms} ms run at c={levels[0]}; PostgreSQL CPU "
        f"{measured.pg_cpu_s * 1000:.2f} ms/payment (saga, c={levels[0]}); peak hour ({cost_model.PEAK_TO_AVERAGE:g}x "
        f"average) needs ~{peak:.1f} writer ACU (CDK max {deployment.aurora_max_acu:g}). A Standard workflow would "
        f"cost {cost_model.standard_transitions_per_payment(measured)} transitions = "
        f"${cost_model.standard_transitions_per_payment(measured) * cost_model.SFN_STANDARD_USD_PER_TRANSITION:.6f}"
        "/payment. Left out: free tiers, cold starts, retries, data transfer out, backups, monthly fixed fees "
        "(WAF ACL/rules, alarms), the notification consumers (SNS, webhooks, EventBridge).")

    series = {"saga, gateway 0 ms": {c: zero[c]["saga"] for c in levels},
              "PostgreSQL limit (replay)": {c: zero[c]["limit"] for c in levels},
              f"saga, gateway {args.latency_ms} ms": {c: real[c]["saga"] for c in levels},
              f"saga {args.latency_ms} ms minus gateway": {c: real[c]["added"] for c in levels}}
    png = OUT / "saga_bench.png"
    plot(png, series, f"paysaga saga on the local stack, {r['cpus']} CPUs; "
                      f"$ {total:.6f}/payment (paper) vs {COMPARABLE_USD_PER_TRANSACTION}",
         no_throughput=(f"saga {args.latency_ms} ms minus gateway",))
    r["cost_usd_per_payment"] = total
    (OUT / "saga_bench.json").write_text(json.dumps(r, indent=1, default=str))
    console.print(f"wrote {png} and saga_bench.json; whole run {r['elapsed_s']:.0f} s; 1-min load average "
                  f"{r['load_before']:.1f} before, {r['load_after']:.1f} after (others' work here adds noise)")


if __name__ == "__main__":
    main()
