"""`paysaga simulate --jobs 2`: two worker processes, each on its own throwaway stack, share the seeds; the summary
covers every seed once and the run ends with its wall time and the command that reproduces it. A worker that dies
fails the run and names the seed it held and every seed not run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.simulate import SeedResult, SimulationConfig
from local.simulate.command import WorkerFailedError, _run_parallel

PAYSAGA = Path(sys.executable).with_name("paysaga")


def _count(output: str, row: str) -> int:
    found = re.search(rf"^\W*{row}\W+(\d+)\W*$", output, re.MULTILINE)
    assert found is not None, f"no '{row}' row in the summary:\n{output}"
    return int(found.group(1))


def test_two_jobs_run_every_seed_once() -> None:
    env = {**os.environ, "COLUMNS": "200"}
    args = ["simulate", "--jobs", "2", "--seeds", "2", "--payments", "3", "--seed-from", "777000"]
    result = subprocess.run([str(PAYSAGA), *args], env=env, capture_output=True, text=True, timeout=150, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert _count(output, "seeds") == 2, output
    made = 2 * (3 + SimulationConfig(seeds=[]).after_checkout_payments)  # and those made for the operations
    assert _count(output, "payments") == made, output
    assert re.search(rf"^{made} payments in \d+ min \d+ s on 2 jobs$", output, re.MULTILINE), output
    assert "paysaga simulate --seeds 2 --seed-from 777000 --payments 3 --jobs 2" in output, output


def _dies_on_seed_3(index: int, root: str, config: Any, inbox: Any, outbox: Any) -> None:
    """A stand-in for the worker (no stack): finishes every seed at once, and dies without a word on seed 3."""
    outbox.put((index, "ready", None))
    while (seed := inbox.get()) is not None:
        if seed == 3:
            os._exit(9)
        outbox.put((index, "done", SeedResult(seed, payments=1)))
    outbox.put((index, "bye", None))


def _seeds(ranges: str) -> set[int]:
    seeds: set[int] = set()
    for part in ranges.split(", "):
        first, _, last = part.partition("-")
        seeds.update(range(int(first), int(last or first) + 1))
    return seeds


def test_a_worker_that_dies_fails_the_run_and_names_its_seeds() -> None:
    done: list[int] = []
    config = SimulationConfig(seeds=range(8), payments_per_seed=1)
    with pytest.raises(WorkerFailedError) as failure:
        _run_parallel(config, 2, on_start=lambda running: None, on_done=lambda r: done.append(r.seed),
                      worker_main=_dies_on_seed_3)
    message = str(failure.value)
    assert re.search(r"worker \d \(pid \d+\) died \(exit code 9\), holding seed 3\b", message), message
    unrun = re.search(r"Seeds not run: ([\d, -]+)\.", message)
    assert unrun is not None, message
    assert 3 in _seeds(unrun.group(1)), message
    # Every seed was either run exactly once or named as not run.
    assert sorted(done) == sorted(set(done)), done
    assert set(done) | _seeds(unrun.group(1)) == set(range(8)) and not set(done) & _seeds(unrun.group(1)), message
