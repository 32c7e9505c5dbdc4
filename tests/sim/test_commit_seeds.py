"""A few seeds that move with every commit, so CI explores new interleavings over time instead of the same fixed
range (tests/sim/test_simulation.py). The first seed comes from the commit hash; a failure prints the command that
reproduces it: `paysaga simulate --seed-from S --seeds 3 --payments 9`."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from local.simulate import Backends, SimulationConfig, run_seed, violations_text

SEEDS = 3
PAYMENTS_PER_SEED = 9
SEED_SPACE = 10**9
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def commit_seed() -> int:
    """The first 8 hex digits of HEAD as an int, modulo 10**9; without git, a hash of today's date (UTC)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        return int(head[:8], 16) % SEED_SPACE
    except (OSError, subprocess.SubprocessError, ValueError):
        today = datetime.now(UTC).date().isoformat()
        return int(hashlib.sha256(today.encode()).hexdigest()[:8], 16) % SEED_SPACE


def test_every_property_holds_for_the_commits_seeds(sim_backends: Backends) -> None:
    first = commit_seed()
    seeds = range(first, first + SEEDS)
    reproduce = (f"seeds {first}..{seeds[-1]}: reproduce with "
                 f"`paysaga simulate --seed-from {first} --seeds {SEEDS} --payments {PAYMENTS_PER_SEED}`")
    print(reproduce)
    config = SimulationConfig(seeds=seeds, payments_per_seed=PAYMENTS_PER_SEED)
    results = [run_seed(sim_backends, seed, config) for seed in seeds]
    assert not any(r.violations for r in results), f"{reproduce}\n{violations_text(results)}"
    made = SEEDS * (PAYMENTS_PER_SEED + config.after_checkout_payments)  # and the ones made for the operations
    assert sum(r.payments for r in results) == made, [r.payments for r in results]
