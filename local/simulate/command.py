"""`paysaga simulate`: the crash-injection simulation on throwaway local stacks, with a progress bar and a summary
table. Its own stacks, because faults freeze their Redis and emulator and kill their database connections.

With `--jobs N` the seeds are shared out among N worker processes (spawned, not forked: each brings up its own stack
and must not inherit the coordinator's clients). The coordinator hands one seed at a time to whichever worker is
free, so it always knows which seed each worker holds: a worker that dies or fails makes the command fail and names
that seed and every seed that was not run, never drops one silently."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import shutil
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import settings
from local.simulate.driver import SeedResult, SimulationConfig, run_seed, summary, violations_text
from local.simulate.world import Backends
from local.stack import local

# Short client timeouts: gateway timeouts are injected on purpose, and a dead holder's key must expire quickly (the
# execution lease no longer than the key's hold, as settings require; the same values as local/testing/live.py).
SIM_ENV = {"GATEWAY_TIMEOUT_MS": "300", "IDEMPOTENCY_IN_PROGRESS_TTL_MS": "6000", "EXECUTION_LEASE_MS": "6000",
           "LEASE_WAIT_MS": "3000", "LOG_LEVEL": "ERROR"}
BACKEND_VARS = ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "SANDBOX_GATEWAY_URL", "STATE_MACHINE_ARN",
                "STRIPE_API_BASE", "ADYEN_CHECKOUT_URL", "PAYSAGA_API_PORT")
MAX_JOBS = 8
POLL_S = 0.2
STOP_GRACE_S = 60.0  # for a worker told to stop (or interrupted) to finish its seed and take its stack down


class WorkerFailedError(RuntimeError):
    """A simulation worker died or failed; the message names it, the seed it held and every seed not run."""

    def __init__(self, message: str, tracebacks: list[str]) -> None:
        super().__init__(message)
        self.tracebacks = tracebacks


@contextlib.contextmanager
def throwaway_stack(root: Path | None = None) -> Iterator[Backends]:
    """A stack of its own in root (default: a new temporary folder), taken down and deleted on the way out."""
    root = root or Path(tempfile.mkdtemp(prefix="paysaga-sim-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # PostgreSQL runs as 'postgres' when we are root and must reach the folder
    saved = dict(os.environ)
    try:
        for name in BACKEND_VARS:
            os.environ.pop(name, None)
        # The API server takes the local gateways' webhooks (Adyen's capture outcomes arrive that way); the
        # simulation runs its own start handler in this process and replays parked payments itself: no sync worker.
        state = local.up(root, with_api=True, with_sync=False)
        os.environ.update({**state.env(), **SIM_ENV})
        settings.cache_clear()
        # The simulation takes worker slots away on purpose and counts it (ids_lease_lost): no warning per event.
        logging.getLogger("saga.snowflake").setLevel(logging.ERROR)
        yield Backends(settings(), redis_pid=state.parts["redis"].pid, aws_pid=state.parts["aws"].pid,
                       api_url=state.parts["api"].url)
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
    for name in ("seeds", "payments", "operations", "replays"):
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


def seed_ranges(seeds: Iterable[int]) -> str:
    """'5, 7-9, 12' for [5, 7, 8, 9, 12]."""
    spans: list[list[int]] = []
    for seed in sorted(seeds):
        if spans and seed == spans[-1][1] + 1:
            spans[-1][1] = seed
        else:
            spans.append([seed, seed])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _run_serial(config: SimulationConfig, *, on_start: Callable[[list[int]], None],
                on_done: Callable[[SeedResult], None]) -> None:
    with throwaway_stack() as backends:
        for seed in config.seeds:
            on_start([seed])
            on_done(run_seed(backends, seed, config))


# -- parallel: one worker process per job, each on its own stack -------------------------------------------------

# Messages from a worker to the coordinator: (worker index, kind, payload) with kind
#   "ready"  the stack is up, payload None           "done"  a seed is finished, payload its SeedResult
#   "error"  it failed, payload the traceback text    "bye"   told to stop, its stack is down, payload None
Message = tuple[int, str, object]


class Outbox:
    """A worker's own channel to the coordinator: a pipe of its own, never a queue shared with the other workers,
    whose write lock a worker killed mid-write would leave held, silencing every other worker."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def put(self, message: Message) -> None:
        self._connection.send(message)

    def close(self) -> None:
        self._connection.close()


WorkerMain = Callable[[int, str, SimulationConfig, "Queue[int | None]", Outbox], None]


def _worker_main(index: int, root: str, config: SimulationConfig, inbox: Queue[int | None],
                 outbox: Outbox) -> None:
    """A worker process: bring up a stack in root, run each seed the coordinator sends until it sends None."""
    try:
        with throwaway_stack(Path(root)) as backends:
            outbox.put((index, "ready", None))
            while (seed := _next_seed(inbox)) is not None:
                outbox.put((index, "done", run_seed(backends, seed, config)))
    except BaseException:  # KeyboardInterrupt too: the coordinator must hear why this worker stopped
        outbox.put((index, "error", traceback.format_exc()))
        outbox.close()
        raise SystemExit(1) from None
    outbox.put((index, "bye", None))


def _next_seed(inbox: Queue[int | None]) -> int | None:
    """The next seed from the coordinator; None when it says stop, or when it is gone (killed: nobody else would
    take this worker's stack down)."""
    parent = multiprocessing.parent_process()
    while True:
        try:
            return inbox.get(timeout=1.0)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return None


@dataclass
class _Worker:
    index: int
    root: Path
    process: BaseProcess
    inbox: Queue[int | None]
    reader: Connection
    holding: int | None = None
    stopping: bool = False  # told there are no more seeds
    finished: bool = False  # said bye, failed or died: sends nothing more


@dataclass
class _Coordinator:
    config: SimulationConfig
    on_start: Callable[[list[int]], None]
    on_done: Callable[[SeedResult], None]
    worker_main: WorkerMain = _worker_main
    pending: deque[int] = field(default_factory=deque)
    workers: list[_Worker] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    tracebacks: list[str] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)  # seeds held by a worker that failed

    def running(self) -> list[int]:
        return sorted(w.holding for w in self.workers if w.holding is not None)

    def _next(self, worker: _Worker) -> None:
        """The next seed for a free worker; None (stop) when there is none or a worker has failed."""
        if self.pending and not self.failures:
            worker.holding = self.pending.popleft()
            worker.inbox.put(worker.holding)
        else:
            worker.holding = None
            worker.stopping = True
            worker.inbox.put(None)
        self.on_start(self.running())

    def _fail(self, worker: _Worker, why: str) -> None:
        worker.finished = True
        held = f"holding seed {worker.holding}" if worker.holding is not None else "holding no seed"
        self.failures.append(f"worker {worker.index} (pid {worker.process.pid}) {why}, {held}")
        if worker.holding is not None:
            self.lost.append(worker.holding)
            worker.holding = None

    def _handle(self, message: Message) -> None:
        index, kind, payload = message
        worker = self.workers[index]
        if kind == "ready":
            self._next(worker)
        elif kind == "done":
            assert isinstance(payload, SeedResult) and payload.seed == worker.holding, (payload, worker.holding)
            worker.holding = None
            self.on_done(payload)
            self._next(worker)
        elif kind == "bye":
            worker.finished = True
        else:
            text = str(payload).strip()
            self.tracebacks.append(f"worker {index}: {text}")
            self._fail(worker, f"failed ({text.splitlines()[-1] if text else 'no traceback'})")

    def _receive(self, timeout_s: float) -> bool:
        """Handle every message that is waiting (up to timeout_s for the first); False when none came."""
        open_readers = {w.reader: w for w in self.workers if not w.finished and not w.reader.closed}
        ready = wait(list(open_readers), timeout=timeout_s)
        for reader in ready:
            assert isinstance(reader, Connection)
            try:
                self._handle(reader.recv())
            except (EOFError, OSError):  # the worker is gone; its death is seen below
                reader.close()
        return bool(ready)

    def run(self, jobs: int, base: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.pending.extend(self.config.seeds)
        writers: list[Connection] = []
        for index in range(jobs):
            root = base / f"worker-{index}"
            inbox: Queue[int | None] = context.Queue()
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(target=self.worker_main, name=f"paysaga-simulate-{index}",
                                      args=(index, str(root), self.config, inbox, Outbox(writer)))
            self.workers.append(_Worker(index, root, process, inbox, reader))
            writers.append(writer)
        try:
            for worker in self.workers:
                worker.process.start()
            for writer in writers:
                writer.close()  # only the worker writes: its end closes when it dies, and recv() says so
            while not all(w.finished for w in self.workers):
                if self._receive(POLL_S):
                    continue
                dead = [w for w in self.workers if not w.finished and not w.process.is_alive()]
                if dead:
                    while self._receive(0):  # what a dead worker wrote before it died is still in the pipe
                        pass
                    for worker in dead:
                        if not worker.finished:
                            self._fail(worker, f"died (exit code {worker.process.exitcode})")
                if self.failures:  # stop the others once they finish the seed they hold
                    for worker in self.workers:
                        if not worker.finished and not worker.stopping and worker.holding is None:
                            self._next(worker)
        finally:
            self._stop_all()

    def _stop_all(self) -> None:
        """Let every worker take its own stack down; whatever a dead or stuck worker left running is stopped here."""
        for worker in self.workers:
            if worker.process.is_alive() and not worker.stopping:
                worker.stopping = True
                with contextlib.suppress(Exception):
                    worker.inbox.put(None)
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self.workers:
            if worker.process.pid is None:
                continue  # never started
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
        for worker in self.workers:
            worker.inbox.cancel_join_thread()
            worker.inbox.close()
            worker.reader.close()
            with contextlib.suppress(Exception):
                local.down(worker.root)  # a no-op when the worker took its stack down itself

    def unrun(self) -> list[int]:
        return sorted([*self.lost, *self.pending])


def _run_parallel(config: SimulationConfig, jobs: int, *, on_start: Callable[[list[int]], None],
                  on_done: Callable[[SeedResult], None], worker_main: WorkerMain = _worker_main) -> None:
    base = Path(tempfile.mkdtemp(prefix="paysaga-sim-jobs-"))
    base.chmod(0o755)  # PostgreSQL runs as 'postgres' when we are root and must reach the workers' folders
    coordinator = _Coordinator(config, on_start, on_done, worker_main)
    try:
        coordinator.run(jobs, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if coordinator.failures:
        unrun = coordinator.unrun()
        raise WorkerFailedError(
            "; ".join(coordinator.failures)
            + (f". Seeds not run: {seed_ranges(unrun)}" if unrun else ". Every other seed was run")
            + ". The summary above covers only the seeds that finished.",
            coordinator.tracebacks,
        )


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def simulate(*, seeds: int, seed_from: int, payments_per_seed: int, console: Console, jobs: int = 1) -> bool:
    """Run seeds seed_from .. seed_from+seeds-1 on `jobs` stacks at once; True when every property held. Raises
    WorkerFailedError (after printing the summary of what finished) when a worker died or failed."""
    assert 1 <= jobs <= MAX_JOBS, jobs
    config = SimulationConfig(seeds=range(seed_from, seed_from + seeds), payments_per_seed=payments_per_seed)
    workers = min(jobs, seeds)
    command = f"paysaga simulate --seeds {seeds} --seed-from {seed_from} --payments {payments_per_seed} --jobs {jobs}"
    results: list[SeedResult] = []
    started = time.monotonic()
    failure: WorkerFailedError | None = None
    with Progress(
        TextColumn("[bold]seed {task.fields[seed]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[violations]} violations"), console=console,
    ) as progress:
        task = progress.add_task("simulate", total=seeds, seed=seed_from, violations=0)

        def on_start(running: list[int]) -> None:
            progress.update(task, seed=", ".join(map(str, running)))

        def on_done(result: SeedResult) -> None:
            results.append(result)
            progress.update(task, advance=1, violations=sum(len(r.violations) for r in results))

        try:
            if workers == 1:
                _run_serial(config, on_start=on_start, on_done=on_done)
            else:
                _run_parallel(config, workers, on_start=on_start, on_done=on_done)
        except WorkerFailedError as error:
            failure = error
    results.sort(key=lambda r: r.seed)
    console.print(summary_table(results))
    text = violations_text(results)
    if text:
        console.print("[bold red]violations[/] (rerun one with --seed-from S --seeds 1):")
        console.print(text, highlight=False, soft_wrap=True)
    payments = sum(r.payments for r in results)
    console.print(f"{payments} payments in {_duration(time.monotonic() - started)} on {workers} "
                  f"job{'s' if workers != 1 else ''}", highlight=False, soft_wrap=True)
    console.print(f"reproduce with: {escape(command)}", highlight=False, soft_wrap=True)
    if failure is not None:
        for text in failure.tracebacks:
            console.print(escape(text), style="dim", highlight=False, soft_wrap=True)
        raise failure
    return not text
