"""`paysaga simulate`: the crash-injection simulation on a throwaway local stack, with a progress bar and a summary
table. Its own stack, because faults freeze its Redis and emulator and kill its database connections."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import settings
from saga.simulate.driver import SeedResult, SimulationConfig, run_seed, summary, violations_text
from saga.simulate.world import Backends
from saga.stack import local

# Short client timeouts: gateway timeouts are injected on purpose, and a dead holder's key must expire quickly.
SIM_ENV = {"GATEWAY_TIMEOUT_MS": "300", "IDEMPOTENCY_IN_PROGRESS_TTL_MS": "6000", "LOG_LEVEL": "ERROR"}
BACKEND_VARS = ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "SANDBOX_GATEWAY_URL", "STATE_MACHINE_ARN")


@contextlib.contextmanager
def throwaway_stack() -> Iterator[Backends]:
    root = Path(tempfile.mkdtemp(prefix="paysaga-sim-"))
    root.chmod(0o755)  # PostgreSQL runs as 'postgres' when we are root and must reach the folder
    saved = dict(os.environ)
    try:
        for name in BACKEND_VARS:
            os.environ.pop(name, None)
        state = local.up(root, with_api=False)
        os.environ.update({**state.env(), **SIM_ENV})
        settings.cache_clear()
        yield Backends(settings(), redis_pid=state.parts["redis"].pid, aws_pid=state.parts["aws"].pid)
    finally:
        local.down(root)
        shutil.rmtree(root, ignore_errors=True)
        os.environ.clear()
        os.environ.update(saved)
        settings.cache_clear()


def summary_table(results: list[SeedResult]) -> Table:
    totals = summary(results)
    table = Table(title="paysaga crash-injection simulation")
    table.add_column("what")
    table.add_column("count", justify="right")
    for name in ("seeds", "payments", "replays"):
        table.add_row(name, str(totals[name]))
    for kind, count in sorted(totals["faults"].items()):
        table.add_row(f"fault: {kind}", str(count))
    for status, count in sorted(totals["statuses"].items()):
        table.add_row(f"final status: {status}", str(count))
    for prop, count in sorted(totals["checked"].items(), key=lambda item: int(item[0][1:])):
        table.add_row(f"checks of property {prop[1:]}", str(count))
    colour = "red" if totals["violations"] else "green"
    table.add_row("violations", f"[{colour}]{totals['violations']}[/]")
    return table


def simulate(*, seeds: int, seed_from: int, payments_per_seed: int, console: Console) -> bool:
    """Run seeds seed_from .. seed_from+seeds-1; True when every property held."""
    config = SimulationConfig(seeds=range(seed_from, seed_from + seeds), payments_per_seed=payments_per_seed)
    results: list[SeedResult] = []
    with throwaway_stack() as backends, Progress(
        TextColumn("[bold]seed {task.fields[seed]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[violations]} violations"), console=console,
    ) as progress:
        task = progress.add_task("simulate", total=seeds, seed=seed_from, violations=0)
        for seed in config.seeds:
            progress.update(task, seed=seed)
            results.append(run_seed(backends, seed, config))
            progress.update(task, advance=1, violations=sum(len(r.violations) for r in results))
    console.print(summary_table(results))
    text = violations_text(results)
    if text:
        console.print("[bold red]violations[/] (rerun one with --seed-from S --seeds 1):")
        console.print(text, highlight=False, soft_wrap=True)
    return not text
