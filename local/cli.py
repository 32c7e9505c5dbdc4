"""`paysaga`: the one entry point for people (Typer + Rich)."""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine

from core import limits
from core.settings import SettingsError, load_settings
from local.gateway_tokens import TOKENS, Scenario
from local.stack import local
from local.stack.process import StackError
from local.stack.state import load, stack_dir

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


@stack_app.command("restart")
@one_line_errors
def stack_restart(part: str = typer.Argument(..., help="api or gateway")) -> None:
    """Restart the API server (e.g. after a code change) or the sandbox gateway, on the same port."""
    restarted = local.restart(stack_dir(), part)
    console.print(f"{part} restarted at {restarted.url}")


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


def _demo_key_file() -> Path:
    """One demo merchant per gateway: `PAYMENT_GATEWAY=stripe make run` pays through Stripe, not an earlier
    run's sandbox merchant."""
    return stack_dir() / f"demo-merchant-{load_settings().gateway}.key"


def ensure_demo_merchant() -> str:
    """The demo merchant's API key: kept (mode 0600) in the git-ignored stack folder so `paysaga pay` can use it."""
    from saga.merchant_keys import authenticate, create_merchant  # noqa: PLC0415

    engine = _engine()
    key_file = _demo_key_file()
    if key_file.exists():
        with engine.connect() as conn:
            if authenticate(conn, key_file.read_text().strip()) is not None:
                return key_file.read_text().strip()
    with engine.begin() as conn:
        _, api_key = create_merchant(conn, name="Demo Shop", currencies=["EUR", "USD", "GBP", "JPY"],
                                     gateway=load_settings().gateway, max_amount_minor=5_000_000)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.touch(mode=0o600)
    key_file.write_text(api_key + "\n")
    return api_key


def _print_demo_merchant() -> None:
    api_key = ensure_demo_merchant()
    console.print(f"demo merchant API key: [bold]{api_key}[/]  (kept in {_demo_key_file()})")
    console.print("try: [bold]paysaga pay --amount 1999 --currency EUR[/]")


DEMO_OPERATOR = "admin"


def _demo_operator_file() -> Path:
    return stack_dir() / "console-admin.password"


def ensure_demo_operator() -> str | None:
    """The demo operator's password when this call created it (an operator `admin`, role operator, made when there
    is no operator at all); None when operators exist. The password is also kept (mode 0600) in the git-ignored stack
    folder, as the demo merchant's key is."""
    from store.operators import create_operator, list_operators  # noqa: PLC0415

    with _engine().begin() as conn:
        if list_operators(conn):
            return None
        password = _generated_password()
        create_operator(conn, username=DEMO_OPERATOR, password=password, role="operator")
    password_file = _demo_operator_file()
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(password + "\n")
    return password


def _console_url() -> str:
    api = load(stack_dir()).parts.get("api")
    return f"{api.url if api is not None else 'http://127.0.0.1:<api port>'}/console"


def _print_demo_operator() -> None:
    password = ensure_demo_operator()
    console.print(f"operations console: [bold]{_console_url()}[/]")
    if password is not None:
        console.print(f"console operator [bold]{DEMO_OPERATOR}[/] created, password (shown once): "
                      f"[bold]{escape(password)}[/]  (kept in {_demo_operator_file()})", highlight=False)
    elif _demo_operator_file().exists():
        console.print(f"console operator {DEMO_OPERATOR}: its password is in {_demo_operator_file()}")
    else:
        console.print("log in as an operator of `paysaga operators list` (add one: `paysaga operators add NAME "
                      "--role operator`)")


# Things `paysaga run` does once the stack is up.
_RUN_HOOKS: list[Callable[[], None]] = [_print_demo_merchant, _print_demo_operator]


@app.command("migrate")
@one_line_errors
def migrate() -> None:
    """Apply the database migrations to DATABASE_URL (or the local stack's database), as the user of
    DATABASE_OWNER_SECRET_ARN, else of DATABASE_SECRET_ARN, when one is set."""
    from admin.migrate import migration_url, upgrade  # noqa: PLC0415
    from admin.settings import load_admin_settings  # noqa: PLC0415

    use_stack_env()
    upgrade(migration_url(load_admin_settings()))
    console.print("migrations applied")


merchants_app = typer.Typer(help="Merchants and their API keys (stored hashed).", no_args_is_help=True)
app.add_typer(merchants_app, name="merchants")


def _engine() -> Engine:
    from core.db import engine  # noqa: PLC0415
    from core.settings import load_settings  # noqa: PLC0415

    use_stack_env()
    return engine(load_settings())


# saga.merchant_keys.create_merchant's arguments -> this command's options, for its error messages.
_CREATE_OPTIONS = {"currencies": "--currency", "max_amount_minor": "--max-amount-minor", "gateway": "--gateway",
                   "name": "NAME"}


@merchants_app.command("create")
@one_line_errors
def merchants_create(
    name: str = typer.Argument(..., help="The merchant's name."),
    currency: list[str] = typer.Option(["EUR"], "--currency", help="ISO 4217 code it accepts; repeat for more."),
    max_amount_minor: int = typer.Option(1_000_000, help="Largest single payment, in minor units."),
    webhook_url: str | None = typer.Option(None, help="Where payment events are delivered."),
    gateway: str | None = typer.Option(None, help="sandbox, stripe or adyen (default: PAYMENT_GATEWAY, sandbox)."),
) -> None:
    """Create a merchant and print its API key (shown this once)."""
    from saga.merchant_keys import create_merchant  # noqa: PLC0415

    try:
        with _engine().begin() as conn:
            merchant_id, api_key = create_merchant(conn, name=name, currencies=currency,
                                                   gateway=gateway or load_settings().gateway,
                                                   max_amount_minor=max_amount_minor, webhook_url=webhook_url)
    except ValueError as error:  # the message names the argument: say it as this command's option
        field, separator, rest = str(error).partition(" ")
        colon = ":" if field.endswith(":") else ""
        option = _CREATE_OPTIONS.get(field.rstrip(":"), field.rstrip(":"))
        raise StackError(f"{option}{colon}{separator}{rest}") from None
    console.print(f"merchant [bold]{merchant_id}[/] created")
    console.print(f"API key (shown once, stored hashed): [bold]{api_key}[/]")


@merchants_app.command("list")
@one_line_errors
def merchants_list() -> None:
    """Every merchant, with the first characters of its key."""
    from store.merchants import list_merchants  # noqa: PLC0415

    with _engine().connect() as conn:
        rows = list_merchants(conn)
    table = Table(title="merchants")
    for column in ("id", "name", "key prefix", "currencies", "max amount (minor)", "created"):
        table.add_column(column)
    for m in rows:
        table.add_row(m.id, m.name, m.api_key_prefix + "...", ",".join(m.currencies), str(m.max_amount_minor),
                      m.created_at.isoformat(timespec="seconds"))
    console.print(table)


@merchants_app.command("rotate-key")
@one_line_errors
def merchants_rotate_key(merchant_id: str = typer.Argument(..., help="mer_...")) -> None:
    """Give the merchant a new API key; the old one stops working at once."""
    from saga.merchant_keys import rotate  # noqa: PLC0415

    with _engine().begin() as conn:
        api_key = rotate(conn, merchant_id=merchant_id)
    if api_key is None:
        raise StackError(f"no merchant {merchant_id}")
    console.print(f"new API key for {merchant_id} (shown once): [bold]{api_key}[/]")


webhooks_app = typer.Typer(help="A merchant's webhook endpoints, their deliveries, resends.", no_args_is_help=True)
merchants_app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("add")
@one_line_errors
def webhooks_add(merchant_id: str = typer.Argument(..., help="mer_..."),
                 url: str = typer.Argument(..., help="http(s) URL the events are POSTed to.")) -> None:
    """Add an endpoint; prints its id and its signing secret (shown this once)."""
    from saga.notifications.webhooks import create_endpoint  # noqa: PLC0415

    engine = _engine()
    try:
        with engine.begin() as conn:
            endpoint, secret = create_endpoint(conn, merchant_id=merchant_id, url=url,
                                               allow_loopback=load_settings().webhooks_allow_loopback)
    except ValueError as error:
        raise StackError(str(error)) from None
    console.print(f"webhook endpoint [bold]{endpoint.id}[/] added for {merchant_id}")
    console.print(f"signing secret (shown once): [bold]{secret}[/]", soft_wrap=True)


@webhooks_app.command("list")
@one_line_errors
def webhooks_list(merchant_id: str = typer.Argument(..., help="mer_..."),
                  all_: bool = typer.Option(False, "--all", help="Removed endpoints too.")) -> None:
    """The merchant's endpoints (a secret's last 4 characters at most)."""
    from saga.notifications.webhooks import secret_hint  # noqa: PLC0415
    from store.webhooks import list_endpoints  # noqa: PLC0415

    with _engine().connect() as conn:
        endpoints = list_endpoints(conn, merchant_id=merchant_id, include_disabled=all_)
    table = Table(title=f"webhook endpoints of {merchant_id}")
    for column in ("id", "url", "secret", "previous secret until", "created", "removed"):
        table.add_column(column)
    for e in endpoints:
        until = e.previous_secret_expires_at
        table.add_row(e.id, escape(e.url), secret_hint(e.secret), until.isoformat(timespec="seconds") if until else "",
                      e.created_at.isoformat(timespec="seconds"),
                      e.disabled_at.isoformat(timespec="seconds") if e.disabled_at else "")
    console.print(table)


@webhooks_app.command("remove")
@one_line_errors
def webhooks_remove(endpoint_id: str = typer.Argument(..., help="we_...")) -> None:
    """Remove an endpoint: nothing more is sent to it (its deliveries stay readable)."""
    from saga.notifications.webhooks import remove_endpoint  # noqa: PLC0415

    with _engine().begin() as conn:
        removed = remove_endpoint(conn, endpoint_id=endpoint_id)
    if not removed:
        raise StackError(f"no webhook endpoint {endpoint_id} (or it was removed already)")
    console.print(f"webhook endpoint {endpoint_id} removed")


@webhooks_app.command("rotate-secret")
@one_line_errors
def webhooks_rotate_secret(
    endpoint_id: str = typer.Argument(..., help="we_..."),
    overlap_hours: float = typer.Option(24, min=0, max=168, help="How long the old secret keeps signing too."),
) -> None:
    """A new signing secret (shown once); the old one signs beside it for --overlap-hours."""
    from saga.notifications.webhooks import rotate_endpoint_secret  # noqa: PLC0415

    with _engine().begin() as conn:
        secret = rotate_endpoint_secret(conn, endpoint_id=endpoint_id, overlap_hours=overlap_hours)
    if secret is None:
        raise StackError(f"no webhook endpoint {endpoint_id}")
    console.print(f"new signing secret for {endpoint_id} (shown once): [bold]{secret}[/]", soft_wrap=True)
    console.print(f"the previous secret signs too for {overlap_hours:g} hours")


@webhooks_app.command("deliveries")
@one_line_errors
def webhooks_deliveries(endpoint_id: str = typer.Argument(..., help="we_..."),
                        limit: int = typer.Option(20, min=1, max=1000, help="The most recent this many.")) -> None:
    """The endpoint's recent deliveries, each with its attempts."""
    from store.webhooks import attempts_of, deliveries_of_endpoint  # noqa: PLC0415

    with _engine().connect() as conn:
        deliveries = deliveries_of_endpoint(conn, endpoint_id=endpoint_id, limit=limit)
        attempts = attempts_of(conn, delivery_ids=[d.id for d in deliveries])
    table = Table(title=f"deliveries to {endpoint_id}")
    for column in ("event", "status", "attempts", "next attempt", "attempt", "at", "status code", "latency ms",
                   "error"):
        table.add_column(column)
    for d in deliveries:
        mine = [a for a in attempts if a.delivery_id == d.id]
        next_at = d.next_attempt_at.isoformat(timespec="seconds") if d.status == "pending" else ""
        table.add_row(d.event_id, d.status, str(d.attempts), next_at, "", "", "", "", "")
        for number, a in enumerate(mine, start=1):
            table.add_row("", "", "", "", str(number), a.attempted_at.isoformat(timespec="seconds"),
                          "" if a.status_code is None else str(a.status_code), str(a.latency_ms),
                          escape(a.error or ""))
    console.print(table)


@webhooks_app.command("resend")
@one_line_errors
def webhooks_resend(event_id: str = typer.Argument(..., help="The event's id (a ULID)."),
                    endpoint: str | None = typer.Option(None, "--endpoint", help="Only to this endpoint.")) -> None:
    """Send an event again, now (same id, same body)."""
    from saga.notifications.webhooks import resend_event  # noqa: PLC0415

    with _engine().begin() as conn:
        put_back = resend_event(conn, event_id, endpoint)
    if not put_back:
        raise StackError(f"no delivery of event {event_id}" + (f" to {endpoint}" if endpoint else ""))
    console.print(f"event {event_id}: {len(put_back)} deliveries due now")


@webhooks_app.command("resend-failed")
@one_line_errors
def webhooks_resend_failed(endpoint_id: str = typer.Argument(..., help="we_...")) -> None:
    """Send every failed delivery of the endpoint again, now."""
    from saga.notifications.webhooks import resend_failed  # noqa: PLC0415

    with _engine().begin() as conn:
        put_back = resend_failed(conn, endpoint_id)
    console.print(f"{endpoint_id}: {len(put_back)} failed deliveries due now")


@webhooks_app.command("deliver")
@one_line_errors
def webhooks_deliver() -> None:
    """One pass of the webhook sender: send the deliveries that are due (what the schedule runs every minute)."""
    import httpx  # noqa: PLC0415

    from saga.notifications.webhooks import deliver_due  # noqa: PLC0415

    engine = _engine()
    current = load_settings()
    with httpx.Client() as http:
        report = deliver_due(engine, http=http, allow_loopback=current.webhooks_allow_loopback,
                             timeout_ms=current.webhook_timeout_ms)
    console.print(f"claimed {report.claimed}: {len(report.succeeded)} delivered, {len(report.retrying)} to retry, "
                  f"{len(report.failed)} failed after their last attempt")


@app.command("pay")
@one_line_errors
def pay(
    amount: int = typer.Option(..., "--amount", help="Amount in minor units (1999 = 19.99 EUR)."),
    currency: str = typer.Option("EUR", "--currency"),
    merchant_key: str | None = typer.Option(None, "--merchant-key", help="Default: the demo merchant's key."),
    idempotency_key: str | None = typer.Option(None, "--idempotency-key", help="Default: a new ULID."),
    token: str | None = typer.Option(None, "--token", help="Payment method token (README: each gateway's test "
                                     "tokens); default: an approved card of the demo merchant's gateway."),
    customer: str = typer.Option("cus_demo", "--customer"),
    order: str | None = typer.Option(None, "--order"),
    capture_mode: str = typer.Option("automatic", "--capture-mode",
                                     help="automatic, or manual: authorize and hold (`paysaga payments capture`)."),
    url: str | None = typer.Option(None, "--url", help="Default: the local stack's API."),
) -> None:
    """Send one payment as a checkout would, and print the answer."""
    from local.payments_cli import send  # noqa: PLC0415

    use_stack_env()  # the stack's settings: its gateway names the default card
    card = token or TOKENS[load_settings().gateway][Scenario.APPROVE]
    # A 402 is an answer like any other here: only a 5xx fails the command.
    send("/v1/payments", lambda idem: {
        "amount_minor": amount, "currency": currency, "payment_method_token": card, "customer_reference": customer,
        "order_reference": order or f"order-{idem}", "capture_mode": capture_mode},
         merchant_key=merchant_key, idempotency_key=idempotency_key, url=url, fails_from=500)


executions_app = typer.Typer(help="Saga executions: list, inspect, replay.", no_args_is_help=True)
app.add_typer(executions_app, name="executions")


@executions_app.command("list")
@one_line_errors
def executions_list(
    status: str | None = typer.Option(None, help="RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED"),
    payment: int | None = typer.Option(None, help="Only this payment's executions."),
    needs_attention: bool = typer.Option(False, "--needs-attention",
                                         help="Only those an engineer should look at (the `look` column): not a "
                                              "business outcome such as a decline, or a parked payment."),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Executions, newest first. `look` says which an engineer should look at (and may replay): a failure that was
    not a business outcome (a decline ends correctly), or a payment parked for attention."""
    from saga.console.triage import list_needing_attention  # noqa: PLC0415
    from saga.console.triage import needs_attention as looks  # noqa: PLC0415
    from store.executions import list_executions, payment_statuses  # noqa: PLC0415

    with _engine().connect() as conn:
        if needs_attention:
            rows = list_needing_attention(conn, status=status, payment_id=payment, limit=limit)
        else:
            found = list_executions(conn, status=status, payment_id=payment, limit=limit)
            statuses = payment_statuses(conn, payment_ids=(r.payment_id for r in found))
            rows = [(r, statuses.get(r.payment_id)) for r in found]
    table = Table(title="saga executions")
    for column in ("started", "payment", "status", "error", "look", "execution", "replay of"):
        table.add_column(column, overflow="fold")
    for row, payment_status in rows:
        table.add_row(row.started_at.isoformat(timespec="seconds"), str(row.payment_id), row.status,
                      row.error or "", "yes" if looks(row, payment_status) else "",
                      row.execution_arn.rsplit(":", 1)[-1], (row.replay_of or "").rsplit(":", 1)[-1])
    console.print(table)


@executions_app.command("show")
@one_line_errors
def executions_show(execution: str = typer.Argument(..., help="Execution ARN or name.")) -> None:
    """One execution, state by state (its recorded history)."""
    from store.executions import find_execution  # noqa: PLC0415

    with _engine().connect() as conn:
        found = find_execution(conn, execution)
    if found is None:
        raise StackError(f"no execution {execution}")
    console.print(f"[bold]{found.execution_arn}[/]  payment {found.payment_id}  {found.status}  {found.error or ''}")
    if found.cause:
        console.print(f"cause: {found.cause}", highlight=False)
    table = Table(title="history")
    for column in ("id", "type", "state / detail"):
        table.add_column(column, overflow="fold")
    for event in found.history if isinstance(found.history, list) else []:
        detail: dict[str, Any] = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        name = detail.get("name") or detail.get("error") or detail.get("resourceType") or ""
        table.add_row(str(event.get("id")), str(event.get("type")), str(name))
    console.print(table)


def _cli_operator() -> str:
    """Who replays from the CLI when --as names no one: the login name of whoever runs it."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli:unknown"


@executions_app.command("replay")
@one_line_errors
def executions_replay(
    execution: str = typer.Argument(..., help="The execution's name (as `executions list` shows it) or its ARN."),
    reason: str = typer.Option(..., "--reason", help="Why it is replayed (written to the replay audit)."),
    operator: str | None = typer.Option(None, "--as", help="Who replays (default: cli:<your login name>)."),
) -> None:
    """Start a new execution for the same payment with the recorded input; steps skip what already took effect.
    Written to the replay audit (who, when, why, the new execution and its outcome), as the console's replays are."""
    from core.settings import load_settings  # noqa: PLC0415
    from local.saga_runtime import local_services  # noqa: PLC0415
    from saga.replay import ReplayError, replay_audited  # noqa: PLC0415

    use_stack_env()
    services = local_services(load_settings())
    try:
        outcome = replay_audited(services, execution, operator=operator or _cli_operator(), reason=reason)
    except ReplayError as error:
        raise StackError(str(error)) from None
    finally:
        services.close()
    console.print(f"replayed as {outcome.execution_arn}: {outcome.status} {outcome.error or ''} "
                  f"-> payment is [bold]{outcome.payment_status}[/]")


operators_app = typer.Typer(help="Operators of the console (people, not merchants), their roles.",
                            no_args_is_help=True)
app.add_typer(operators_app, name="operators")


def _generated_password() -> str:
    return secrets.token_urlsafe(18)  # 24 characters, 144 bits


@operators_app.command("add")
@one_line_errors
def operators_add(
    username: str = typer.Argument(..., help="3 to 64 of a-z 0-9 . _ @ - (stored lower case)."),
    role: str = typer.Option(..., "--role", help="viewer (reads) or operator (reads and replays)."),
    password_stdin: bool = typer.Option(False, "--password-stdin",
                                        help="Read the password from standard input (at least 12 characters); "
                                             "without it a strong one is made and printed once."),
) -> None:
    """Add an operator of the console (its password is stored hashed)."""
    from store.operators import OperatorError, create_operator  # noqa: PLC0415

    password = sys.stdin.read().rstrip("\r\n") if password_stdin else _generated_password()
    try:
        with _engine().begin() as conn:
            made = create_operator(conn, username=username, password=password, role=role)
    except OperatorError as error:
        raise StackError(str(error)) from None
    console.print(f"operator [bold]{made.username}[/] added ({made.role})")
    if not password_stdin:
        console.print(f"password (shown once, stored hashed): [bold]{escape(password)}[/]", highlight=False)


@operators_app.command("list")
@one_line_errors
def operators_list() -> None:
    """The operators (never their passwords)."""
    from store.operators import list_operators  # noqa: PLC0415

    with _engine().connect() as conn:
        rows = list_operators(conn)
    table = Table(title="console operators")
    for column in ("username", "role", "created"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.username, row.role, row.created_at.isoformat(timespec="seconds"))
    console.print(table)


@operators_app.command("remove")
@one_line_errors
def operators_remove(username: str = typer.Argument(..., help="The operator's name.")) -> None:
    """Remove an operator: it can no longer log in, its open sessions end at once (the audit keeps its name)."""
    from store.operators import remove_operator  # noqa: PLC0415

    with _engine().begin() as conn:
        removed = remove_operator(conn, username=username)
    if not removed:
        raise StackError(f"no operator {username}")
    console.print(f"operator [bold]{escape(username.strip().lower())}[/] removed; its sessions ended")


events_app = typer.Typer(help="Payment events: the notifications queue and its DLQ.", no_args_is_help=True)
dlq_app = typer.Typer(help="The notifications DLQ: events no consumer could deliver to every target.",
                      no_args_is_help=True)
events_app.add_typer(dlq_app, name="dlq")
app.add_typer(events_app, name="events")


@events_app.command("relay")
@one_line_errors
def events_relay(
    grace_ms: int = typer.Option(limits.OUTBOX_RELAY_GRACE_MS, min=0, help="Only rows unsent for this long (ms)."),
) -> None:
    """One outbox relay pass: publish the events left unsent to the notifications queue, now."""
    from core.aws import client  # noqa: PLC0415
    from core.aws_resources import queue_url  # noqa: PLC0415
    from core.db import engine  # noqa: PLC0415
    from saga.notifications.relay import relay  # noqa: PLC0415

    use_stack_env()
    settings = load_settings()
    sqs = client("sqs", settings)
    published = relay(engine(settings), sqs, queue_url(sqs, settings.notifications_queue), older_than_ms=grace_ms)
    console.print(f"published {published} event(s) to {settings.notifications_queue}")


def _dlq_table(title: str, letters: list[Any]) -> Table:
    table = Table(title=title)
    for column in ("message", "receives", "event id", "type", "payment"):
        table.add_column(column)
    for letter in letters:
        table.add_row(letter.message_id, str(letter.receives), letter.event_id or "(not an event)",
                      letter.event_type or "", letter.payment_id or "")
    return table


@dlq_app.command("list")
@one_line_errors
def dlq_list() -> None:
    """The messages in the DLQ, with their event id, type and payment (left in the DLQ)."""
    from core.aws import client  # noqa: PLC0415
    from local.notifications_dlq import peek  # noqa: PLC0415

    use_stack_env()
    settings = load_settings()
    letters = peek(client("sqs", settings), settings)
    console.print(_dlq_table(f"{settings.notifications_dlq}: {len(letters)} message(s)", letters))


@dlq_app.command("redrive")
@one_line_errors
def dlq_redrive() -> None:
    """Move every message of the DLQ back to the notifications queue (the consumer tries them again)."""
    from core.aws import client  # noqa: PLC0415
    from local.notifications_dlq import redrive  # noqa: PLC0415

    use_stack_env()
    settings = load_settings()
    moved = redrive(client("sqs", settings), settings)
    console.print(_dlq_table(f"moved back to {settings.notifications_queue}: {len(moved)} message(s)", moved))


@app.command("sync")
@one_line_errors
def sync_command(
    grace_ms: int = typer.Option(limits.SYNC_GRACE_MS, min=0, help="Only payments untouched for this long (ms)."),
    payment: list[int] = typer.Option([], "--payment", help="Only this payment id; repeat for more."),
) -> None:
    """One pass of the payment-status sync: apply waiting webhook notices, resolve payments left pending."""
    from local.saga_runtime import local_services  # noqa: PLC0415
    from saga.sync import sync  # noqa: PLC0415

    use_stack_env()
    services = local_services(load_settings())
    try:
        report = sync(services, grace_ms=grace_ms, only=payment or None)
    finally:
        services.close()
    console.print(f"notices applied: {report.notices_applied}, still waiting: {report.notices_waiting}")
    for payment_id, status in report.replayed.items():
        console.print(f"payment {payment_id}: replayed -> [bold]{status}[/]")
    for payment_id in report.given_up:
        console.print(f"[bold red]payment {payment_id}: left parked after its last attempt; look at it[/]")
    for payment_id in report.not_started:
        console.print(f"payment {payment_id}: no execution yet (the client's retry with its key resumes it)")
    for payment_id, why in report.errors.items():
        console.print(f"[yellow]payment {payment_id}: {escape(why)}[/]")


@app.command("simulate")
@one_line_errors
def simulate(
    seeds: int = typer.Option(20, min=1, max=10_000, help="How many seeds to run."),
    seed_from: int = typer.Option(0, min=0, help="The first seed (a failure names the seed that reproduces it)."),
    payments: int = typer.Option(15, min=1, max=500, help="Payments per seed."),
    jobs: int = typer.Option(1, min=1, max=8, help="Worker processes, each on its own throwaway stack."),
) -> None:
    """Crash-injection simulation on throwaway local stacks: every property of DESIGN 12 checked per seed."""
    from local.simulate.command import WorkerFailedError  # noqa: PLC0415
    from local.simulate.command import simulate as run_simulation  # noqa: PLC0415

    try:
        passed = run_simulation(seeds=seeds, seed_from=seed_from, payments_per_seed=payments, console=console,
                                jobs=jobs)
    except WorkerFailedError as error:
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if not passed:
        raise typer.Exit(1)


def _mount_ledger() -> None:
    from local.ledger_cli import ledger_app  # noqa: PLC0415
    from local.payments_cli import payments_app  # noqa: PLC0415
    from local.recon_cli import recon_app  # noqa: PLC0415

    app.add_typer(ledger_app, name="ledger", callback=use_stack_env)
    app.add_typer(payments_app, name="payments", callback=use_stack_env)
    app.add_typer(recon_app, name="recon", callback=use_stack_env)


_mount_ledger()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
