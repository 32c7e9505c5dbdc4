"""`paysaga`: the one entry point for people (Typer + Rich)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from core.settings import SettingsError
from saga.stack import local
from saga.stack.process import StackError
from saga.stack.state import load, stack_dir

app = typer.Typer(help="paysaga: payment saga orchestrator", no_args_is_help=True, add_completion=False)
stack_app = typer.Typer(help="The embedded local stack (PostgreSQL, Redis, AWS emulator, API).", no_args_is_help=True)
app.add_typer(stack_app, name="stack")

console = Console()
errors = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def one_line_errors(func: F) -> F:
    """Expected failures (bad settings, a backend that does not answer) print one line, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (StackError, SettingsError) as error:
            errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def use_stack_env() -> None:
    """Commands run against the local stack when it is up and the environment names no other backend."""
    for name, value in load(stack_dir()).env().items():
        os.environ.setdefault(name, value)


def _status_table() -> Table:
    table = Table(title=f"paysaga local stack ({stack_dir()})")
    for column in ("part", "state", "address", "detail"):
        table.add_column(column)
    colours = {"running": "green", "external": "cyan", "crashed": "red", "unhealthy": "yellow"}
    for part in local.status(stack_dir()):
        table.add_row(part.name, f"[{colours.get(part.state, 'white')}]{part.state}[/]", part.url, part.detail)
    return table


@stack_app.command("up")
@one_line_errors
def stack_up(api: bool = typer.Option(True, help="Also run the API server.")) -> None:
    """Start every part that is not running (idempotent), apply migrations, create AWS resources."""
    local.up(stack_dir(), with_api=api)
    console.print(_status_table())


@stack_app.command("down")
@one_line_errors
def stack_down() -> None:
    """Stop every process the stack started, and nothing else. PostgreSQL data stays on disk."""
    stopped = local.down(stack_dir())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack_app.command("status")
@one_line_errors
def stack_status() -> None:
    """Each part with its address and health; exit 1 when a part is crashed or unhealthy."""
    parts = local.status(stack_dir())
    if not parts:
        console.print("the local stack is not running (`paysaga stack up`)")
        raise typer.Exit(3)
    console.print(_status_table())
    if any(p.state in ("crashed", "unhealthy") for p in parts):
        raise typer.Exit(1)


@stack_app.command("env")
def stack_env() -> None:
    """Shell exports for the running stack: `eval "$(paysaga stack env)"`."""
    for name, value in load(stack_dir()).env().items():
        typer.echo(f"export {name}='{value}'")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command("run")
@one_line_errors
def run() -> None:
    """Bring the local stack up and serve until Ctrl-C; then stop what this command started."""
    root = stack_dir()
    was_up = bool(load(root).parts)
    with _sigterm_as_interrupt():
        try:
            state = local.up(root)
            console.print(_status_table())
            for hook in _RUN_HOOKS:
                hook()
            console.print(f"[bold green]paysaga is serving on {state.parts['api'].url}[/]  (Ctrl-C stops it)")
            while True:
                time.sleep(1)
                crashed = [p for p in local.status(root) if p.state == "crashed"]
                if crashed:
                    raise StackError(f"{crashed[0].name} stopped unexpectedly: see {root}/{crashed[0].name}")
        except KeyboardInterrupt:
            console.print("stopping ...")
        finally:
            if not was_up:
                stopped = local.down(root)
                console.print(f"stopped: {', '.join(stopped)}")


# Things `paysaga run` does once the stack is up (later issues add the demo merchant here).
_RUN_HOOKS: list[Callable[[], None]] = []


@app.command("migrate")
@one_line_errors
def migrate() -> None:
    """Apply the database migrations to DATABASE_URL (or the local stack's database)."""
    from core.settings import load_settings  # noqa: PLC0415
    from ledger.migrate import upgrade  # noqa: PLC0415

    use_stack_env()
    upgrade(load_settings().sqlalchemy_url)
    console.print("migrations applied")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
