"""Crash-injection simulation of the payment saga (DESIGN 12): `run_seed` drives payments through the real local
stack under seeded faults, replays what crashed, and checks every property from the stores themselves."""

from local.simulate.checks import Violation
from local.simulate.driver import SeedResult, SimulationConfig, run_seed, summary, violations_text
from local.simulate.world import Backends

__all__ = ["Backends", "SeedResult", "SimulationConfig", "Violation", "run_seed", "summary", "violations_text"]
