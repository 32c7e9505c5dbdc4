"""Several OS processes mint a million Snowflake IDs over shared worker slots in the real moto server."""

from __future__ import annotations

import itertools
import multiprocessing
from array import array

from core.settings import Settings
from saga.snowflake import decode
from tests.integration.saga.ids import minting_worker

PROCESSES = 4
IDS_PER_PROCESS = 250_000
CHURN_EVERY = 10_000  # 25 slot hand-overs per process
RESULT_TIMEOUT_S = 120.0


def test_a_million_ids_from_four_processes_are_unique(dynamo_settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    workers = [
        context.Process(
            target=minting_worker.mint,
            args=(dynamo_settings, IDS_PER_PROCESS, CHURN_EVERY, barrier, results),
        )
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        # Read before join: a child cannot exit while its 2 MB result sits in the pipe.
        outcomes = [results.get(timeout=RESULT_TIMEOUT_S) for _ in workers]
    finally:
        for worker in workers:
            worker.join(RESULT_TIMEOUT_S)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    everything: set[int] = set()
    claims = 0
    slots_seen: set[int] = set()
    for payload, slots_used in outcomes:
        ids = array("q")
        ids.frombytes(payload)
        assert len(ids) == IDS_PER_PROCESS
        assert all(earlier < later for earlier, later in itertools.pairwise(ids))
        assert {decode(snowflake).slot for snowflake in ids} == set(slots_used)
        everything.update(ids)
        claims += len(slots_used)
        slots_seen.update(slots_used)
    assert len(everything) == PROCESSES * IDS_PER_PROCESS
    # Probing from slot 0 with at most 2 slots held per process keeps claims within a few slots: they were reused.
    assert claims == PROCESSES * (IDS_PER_PROCESS // CHURN_EVERY)
    assert len(slots_seen) <= 2 * PROCESSES + 1 < claims
