"""Ledger throughput: the posting API against the same SQL statements issued directly (the limit), side by side.

Each payment is two ledger transactions, each committed on its own as the saga does: reserve (ReserveBalance),
then post with its fee (CommitLedger). We count ledger transactions ("transfers") per second, with 1, 4 and 16
concurrent writers (threads, one connection each), on two workloads:
  hot     one merchant, one gateway: every transfer locks the same three accounts
  spread  50 merchants x 10 gateways, fee 0 (a fee would lock the one fees-revenue account of the currency)
"direct" runs the identical statement sequence through psycopg without the API's Python (no SQLAlchemy, no
checks), so API/direct shows what the API costs on top of the database's own work.

Starts its own throwaway PostgreSQL cluster (fsync off, like the tests); needs no setup:
    .venv/bin/python bench/ledger_bench.py [--payments 800] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.chart import ensure_chart, fees_revenue_code, gateway_clearing_code, merchant_payable_code
from ledger.posting import INSERT_ENTRIES_SQL, post, reserve
from local.migrate import upgrade
from local.testing.servers import postgres_server
from store.merchants import insert_merchant
from store.payments import insert_payment

CURRENCY = "EUR"
PGLEDGER_TRANSFERS_PER_S = 10_600  # pgledger's README: 20 workers over 50 accounts, on the author's laptop
Job = tuple[int, str, str, int]  # payment_id, merchant_id, gateway, fee_minor


def seed(engine: Engine, workload: str, count: int, first_id: int) -> list[Job]:
    merchants = 1 if workload == "hot" else 50
    gateways = 1 if workload == "hot" else 10
    fee = 25 if workload == "hot" else 0
    jobs: list[Job] = []
    with engine.begin() as conn:
        for m in range(merchants):
            insert_merchant(
                conn,
                merchant_id=f"mer_{workload}_{m}",
                name=f"m{m}",
                api_key_sha256=f"{workload}{m}".encode().ljust(32, b"."),
                api_key_prefix="k",
                max_amount_minor=10**9,
                currencies=[CURRENCY],
                gateway="sandbox",
            )
            for g in range(gateways):
                ensure_chart(conn, merchant_id=f"mer_{workload}_{m}", gateway=f"gw{g}", currency=CURRENCY)
        for i in range(count):
            merchant = f"mer_{workload}_{i % merchants}"
            insert_payment(conn, payment_id=first_id + i, merchant_id=merchant, amount_minor=10_000, currency=CURRENCY)
            jobs.append((first_id + i, merchant, f"gw{(i // merchants) % gateways}", fee))
    return jobs


def api_worker(engine: Engine) -> Callable[[list[Job]], None]:
    def run(jobs: list[Job]) -> None:
        for payment_id, merchant, gateway, fee in jobs:
            with engine.begin() as conn:
                reserve(
                    conn,
                    payment_id=payment_id,
                    merchant_id=merchant,
                    gateway=gateway,
                    currency=CURRENCY,
                    amount_minor=10_000,
                )
            with engine.begin() as conn:
                post(conn, payment_id=payment_id, amount_minor=9_000, fee_minor=fee)

    return run


LOCK_PAYMENT = "SELECT id FROM payments WHERE id = %s FOR NO KEY UPDATE"
PAYMENT_TXS = "SELECT id, kind, currency, amount_minor, fee_minor FROM ledger_transactions WHERE payment_id = %s"
ACCOUNTS_BY_CODE = "SELECT code, id FROM accounts WHERE code = ANY(%s)"
ACCOUNT_BY_CODE = "SELECT id FROM accounts WHERE code = %s"
LOCK_ACCOUNTS = (
    "SELECT id, debits_must_not_exceed_credits, credits_must_not_exceed_debits, debits_pending, debits_posted,"
    " credits_pending, credits_posted FROM accounts WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
)
INSERT_TX = (
    "INSERT INTO ledger_transactions (payment_id, kind, currency, amount_minor, fee_minor, pending_transaction_id)"
    " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id"
)
ENTRIES_OF = "SELECT account_id, side, effect, amount_minor FROM ledger_entries WHERE transaction_id = %s ORDER BY id"


INSERT_ENTRIES = INSERT_ENTRIES_SQL.format(
    tx="%s", currency="%s", accounts="%s", sides="%s", effects="%s", amounts="%s"
)


def _insert_entries(cur: psycopg.Cursor[tuple[object, ...]], tx: int, entries: list[tuple[int, str, str, int]]) -> None:
    columns = list(zip(*entries, strict=True))
    cur.execute(INSERT_ENTRIES, (tx, CURRENCY, list(columns[0]), list(columns[1]), list(columns[2]), list(columns[3])))


def direct_worker(url: str) -> Callable[[list[Job]], None]:
    def run(jobs: list[Job]) -> None:
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            for payment_id, merchant, gateway, fee in jobs:
                # reserve
                cur.execute(LOCK_PAYMENT, (payment_id,))
                cur.execute(PAYMENT_TXS, (payment_id,))
                codes = [
                    merchant_payable_code(merchant, CURRENCY),
                    gateway_clearing_code(gateway, CURRENCY),
                    fees_revenue_code(CURRENCY),
                ]
                cur.execute(ACCOUNTS_BY_CODE, (codes,))
                found = dict(cur.fetchall())
                payable, clearing, fees = (int(found[c]) for c in codes)
                cur.execute(LOCK_ACCOUNTS, ([clearing, payable],))
                cur.execute(INSERT_TX, (payment_id, "reserve", CURRENCY, 10_000, 0, None))
                row = cur.fetchone()
                assert row is not None
                pending = int(row[0])
                _insert_entries(
                    cur, pending, [(clearing, "debit", "pending", 10_000), (payable, "credit", "pending", 10_000)]
                )
                conn.commit()
                # post
                cur.execute(LOCK_PAYMENT, (payment_id,))
                cur.execute(PAYMENT_TXS, (payment_id,))
                cur.execute(ENTRIES_OF, (pending,))
                entries = [
                    (clearing, "debit", "release", 10_000),
                    (payable, "credit", "release", 10_000),
                    (clearing, "debit", "post", 9_000),
                    (payable, "credit", "post", 9_000),
                ]
                locked = [clearing, payable]
                if fee:
                    cur.execute(ACCOUNT_BY_CODE, (fees_revenue_code(CURRENCY),))
                    entries += [(payable, "debit", "post", fee), (fees, "credit", "post", fee)]
                    locked.append(fees)
                cur.execute(LOCK_ACCOUNTS, (locked,))
                cur.execute(INSERT_TX, (payment_id, "post", CURRENCY, 9_000, fee, pending))
                row = cur.fetchone()
                assert row is not None
                _insert_entries(cur, int(row[0]), entries)
                conn.commit()

    return run


def timed(worker: Callable[[list[Job]], None], jobs: list[Job], writers: int) -> float:
    """Ledger transactions per second for these jobs split over `writers` threads."""
    chunks = [jobs[i::writers] for i in range(writers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers + 1)

    def run(chunk: list[Job]) -> None:
        barrier.wait()
        try:
            worker(chunk)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(chunk,)) for chunk in chunks]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return 2 * len(jobs) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--payments", type=int, default=800, help="payments per measurement (2 transfers each)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per cell; the median is shown")
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"Ledger transfers/s (median of {args.repeats}; {os.cpu_count()} CPUs, throwaway cluster)")
    for column in ("workload", "writers", "posting API", "direct SQL (limit)", "API / direct"):
        table.add_column(column, justify="right")
    with postgres_server() as pg:
        with psycopg.connect(pg.url("postgres", "postgresql"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        upgrade(pg.url("bench"))
        engine = create_engine(pg.url("bench"), pool_size=20, max_overflow=0)
        next_id = 1
        for workload in ("hot", "spread"):
            for writers in (1, 4, 16):
                results: dict[str, list[float]] = {"api": [], "direct": []}
                for _ in range(args.repeats):
                    for mode in ("api", "direct"):  # interleaved, so drift in the machine hits both alike
                        jobs = seed(engine, workload, args.payments, next_id)
                        next_id += args.payments
                        worker = api_worker(engine) if mode == "api" else direct_worker(pg.url("bench", "postgresql"))
                        results[mode].append(timed(worker, jobs, writers))
                api, direct = statistics.median(results["api"]), statistics.median(results["direct"])
                table.add_row(workload, str(writers), f"{api:,.0f}", f"{direct:,.0f}", f"{api / direct:.2f}")
                console.print(f"  {workload:6} {writers:2} writers: api {api:,.0f}/s, direct {direct:,.0f}/s")
        engine.dispose()
    console.print(table)
    console.print(
        f"Reference, NOT measured here: pgledger reports about {PGLEDGER_TRANSFERS_PER_S:,} transfers/s with 20 workers"
        " over 50 accounts on its author's laptop (a different machine; its transfers are single-phase). Ours: one"
        " two-phase payment = 2 transfers (reserve, post), each its own commit, with deferred balance checks."
    )


if __name__ == "__main__":
    main()
