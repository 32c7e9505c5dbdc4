"""The embedded local stack: PostgreSQL, Redis, the AWS emulator and the API server on loopback.

Rules: `up` is idempotent (it finds what runs); a part that was started and has died is reported, never silently
restarted (its data may be gone); `down` stops exactly the processes this stack started. Data in PostgreSQL lives in
`<stack dir>/postgres` and survives down/up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local.stack import emulator, health, postgres, redis_server
from local.stack.process import LOOPBACK, StackError, free_port, pid_alive, terminate, wait_for_port
from local.stack.state import Part, StackState, clear, load, locked, save

# Each process we start carries one of these in its command line; `down` checks it before it signals a pid, so a
# recycled pid that now belongs to someone else is never killed.
_MARKERS = {"redis": "redis-server", "aws": "local.stack.moto_server", "api": "local.http.server",
            "gateway": "local.sandbox.server", "stripe": "local.stripe.server", "adyen": "local.adyen.server",
            "sync": "local.sync_worker", "notifications": "local.notification_worker"}


@dataclass(frozen=True)
class PartStatus:
    name: str
    url: str
    state: str  # running | external | crashed | unhealthy | stopped
    detail: str = ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _ours(name: str, pid: int) -> bool:
    return pid_alive(pid) and _MARKERS.get(name, "\0") in _cmdline(pid)


def _probe(name: str, url: str) -> str | None:
    probes: dict[str, Callable[[str], str | None]] = {
        "postgres": health.postgres, "redis": health.redis, "aws": health.aws,
        "api": lambda u: health.http(u + "/health"),
        "gateway": lambda u: health.http(u + "/_sandbox/calls?payment_id=0"),
        "stripe": lambda u: health.http(u + "/_health"),
        "adyen": lambda u: health.http(u + "/_health"),
        "sync": lambda _: None,  # no port: alive is all it can say
        "notifications": lambda _: None,
    }
    return probes[name](url)


def _alive(root: Path, part: Part) -> bool:
    if part.external:
        return True
    if part.name == "postgres":
        pid = postgres.postmaster_pid(root / "postgres" / "data")
        return pid is not None and pid_alive(pid)
    return part.pid is not None and _ours(part.name, part.pid)


def status(root: Path) -> list[PartStatus]:
    state = load(root)
    result = []
    for name, part in state.parts.items():
        if not _alive(root, part):
            result.append(PartStatus(name, part.url, "crashed", "its process is gone (crashed or killed)"))
            continue
        problem = _probe(name, part.url)
        if problem is not None:
            result.append(PartStatus(name, part.url, "unhealthy", problem))
        else:
            result.append(PartStatus(name, part.url, "external" if part.external else "running"))
    return result


def _child_env(state: StackState) -> dict[str, str]:
    env = dict(os.environ)
    env.update(state.env())
    return env


def _runtime_env(state: StackState) -> dict[str, str]:
    """What the runtime's processes (the API server, the sync worker) run with: as on AWS, they connect as the
    functions' least-privileged user (paysaga_functions, member of paysaga_app), not as the cluster's superuser, so
    every saga the local stack runs proves the grants of migration 0005. A DATABASE_URL of the caller's own is used
    as given."""
    env = _child_env(state)
    part = state.parts.get("postgres")
    if part is not None and not part.external:
        from admin.migrate import functions_url  # noqa: PLC0415  # alembic: only where the stack is started

        env["DATABASE_URL"] = functions_url(part.url)
    # The console is served over plain http on loopback here: its session cookie cannot be Secure (on AWS it is).
    env["CONSOLE_INSECURE_COOKIES"] = "true"
    return env


def _spawn(module: str, args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.DEVNULL, stdout=handle,
                            stderr=handle, env=env, start_new_session=True)


def _external(name: str, variable: str, url: str) -> Part:
    problem = _probe(name, url)
    if problem is not None:
        raise StackError(f"{variable}={health.redact(url)} does not answer: {problem}")
    return Part(name=name, url=url, external=True)


def _start_postgres(root: Path) -> Part:
    if os.environ.get("DATABASE_URL"):
        return _external("postgres", "DATABASE_URL", os.environ["DATABASE_URL"])
    datadir = root / "postgres" / "data"
    if not postgres.initialised(datadir):
        postgres.init_cluster(datadir, durable=True)
    cluster = postgres.start(datadir, free_port(), root / "postgres" / "log" / "postgres.log")
    return Part(name="postgres", url=cluster.url, port=cluster.port)


def _start_redis(root: Path) -> Part:
    if os.environ.get("REDIS_URL"):
        return _external("redis", "REDIS_URL", os.environ["REDIS_URL"])
    port = free_port()
    process = redis_server.start(root / "redis", port, persistent=True)
    return Part(name="redis", url=redis_server.url(port), pid=process.pid, port=port)


def _start_aws(root: Path) -> Part:
    if os.environ.get("AWS_ENDPOINT_URL"):
        return _external("aws", "AWS_ENDPOINT_URL", os.environ["AWS_ENDPOINT_URL"])
    port = free_port()
    process = emulator.start(root / "aws", port)
    return Part(name="aws", url=emulator.url(port), pid=process.pid, port=port)


def _start_service(root: Path, state: StackState, name: str, module: str, *, args: list[str], port: int,
                   env: dict[str, str] | None = None) -> Part:
    process = _spawn(module, args, root / name / f"{name}.log", env or _child_env(state))
    wait_for_port(port, f"{name} ({module})", pid=process.pid)
    return Part(name=name, url=f"http://{LOOPBACK}:{port}", pid=process.pid, port=port)


def _start_gateway(root: Path, state: StackState, port: int | None = None) -> Part:
    port = port or free_port()
    # Asynchronous (Adyen-like) captures confirm ~1 s later, within CaptureOrVoid's CapturePending retries.
    args = ["--host", LOOPBACK, "--port", str(port), "--db", str(root / "gateway" / "sandbox.sqlite3"),
            "--settle-after-ms", "1000"]
    (root / "gateway").mkdir(parents=True, exist_ok=True)
    return _start_service(root, state, "gateway", "local.sandbox.server", args=args, port=port)


def _webhook_url(state: StackState, gateway: str) -> str:
    """Where a local gateway delivers its webhooks: the API's route (its port is chosen before the API starts)."""
    return f"http://{LOOPBACK}:{_api_port(state)}/v1/webhooks/{gateway}"


def _api_port(state: StackState) -> int:
    if "api" in state.parts and state.parts["api"].port is not None:
        return state.parts["api"].port
    if state.api_port is None:
        state.api_port = int(os.environ.get("PAYSAGA_API_PORT") or free_port())
    return state.api_port


def _start_stripe(root: Path, state: StackState, port: int | None = None) -> Part:
    """localstripe behind the front that adds idempotency, search, decline codes and faults (local/stripe)."""
    port = port or free_port()
    args = ["--host", LOOPBACK, "--port", str(port), "--state-dir", str(root / "stripe"),
            "--webhook-url", _webhook_url(state, "stripe")]
    return _start_service(root, state, "stripe", "local.stripe.server", args=args, port=port)


def _start_adyen(root: Path, state: StackState, port: int | None = None) -> Part:
    """The local Adyen Checkout v71 server; it validates every request and answer against Adyen's spec."""
    port = port or free_port()
    (root / "adyen").mkdir(parents=True, exist_ok=True)
    # Like the sandbox, modifications settle ~1 s later, within CaptureOrVoid's CapturePending retries.
    args = ["--host", LOOPBACK, "--port", str(port), "--db", str(root / "adyen" / "adyen.sqlite3"),
            "--merchant-account", state.secrets["ADYEN_MERCHANT_ACCOUNT"], "--settle-after-ms", "1000",
            "--webhook-url", _webhook_url(state, "adyen")]
    return _start_service(root, state, "adyen", "local.adyen.server", args=args, port=port)


def _start_sync(root: Path, state: StackState) -> Part:
    process = _spawn("local.sync_worker", [], root / "sync" / "sync.log", _runtime_env(state))
    return Part(name="sync", url="worker://payment-status-sync", pid=process.pid)  # it listens on no port


def _start_notifications(root: Path, state: StackState) -> Part:
    """The notifications queue's consumer, the outbox relay and the webhook deliveries (local/notification_worker)."""
    process = _spawn("local.notification_worker", [], root / "notifications" / "notifications.log",
                     _runtime_env(state))
    return Part(name="notifications", url="worker://notifications", pid=process.pid)  # it listens on no port


def _start_api(root: Path, state: StackState, port: int | None = None) -> Part:
    port = port or _api_port(state)
    args = ["--host", LOOPBACK, "--port", str(port)]
    return _start_service(root, state, "api", "local.http.server", args=args, port=port, env=_runtime_env(state))


def _prepare_backends(state: StackState) -> None:
    """Migrations and AWS resources, through the same code production uses."""
    from admin.migrate import prepare_functions_user  # noqa: PLC0415
    from core.aws_resources import provision  # noqa: PLC0415
    from core.settings import load_settings  # noqa: PLC0415
    from local.migrate import upgrade  # noqa: PLC0415

    env = _child_env(state)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = load_settings()
        upgrade(settings.sqlalchemy_url)
        if not state.parts["postgres"].external:  # our cluster: the functions' user, as the deploy function makes it
            prepare_functions_user(settings.sqlalchemy_url, password=None)
        provision(settings)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _available(module: str) -> bool:
    """Whether this installation has the module a part runs (the local extra may be absent)."""
    import importlib.util  # noqa: PLC0415

    try:
        return "." not in module or importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def up(root: Path, *, with_api: bool = True, with_sync: bool | None = None,
       with_notifications: bool | None = None) -> StackState:
    """Start what is not running; refuse when a part we started has died. The sync worker runs beside the API
    unless `with_sync` says otherwise (the simulation replays parked payments itself); so does the notification
    worker unless `with_notifications` says otherwise (the simulation reads the queue itself)."""
    with_sync = with_api if with_sync is None else with_sync
    with_notifications = with_sync if with_notifications is None else with_notifications
    with locked(root):
        state = load(root)
        crashed = [s for s in status(root) if s.state == "crashed"]
        if crashed:
            names = ", ".join(s.name for s in crashed)
            raise StackError(
                f"part(s) of the local stack died: {names}. Their in-memory data may be lost, so they are not "
                "restarted silently: run `paysaga stack down`, then `paysaga stack up`."
            )
        starters: list[tuple[str, Callable[[], Part]]] = [
            ("postgres", lambda: _start_postgres(root)),
            ("redis", lambda: _start_redis(root)),
            ("aws", lambda: _start_aws(root)),
        ]
        try:
            for name, start in starters:
                if name not in state.parts:
                    state.parts[name] = start()
                    save(root, state)
            _prepare_backends(state)  # idempotent: migrations at head and existing resources are no-ops
            # Every gateway runs, so that each merchant pays through its own (PAYMENT_GATEWAY is only the default).
            services: list[tuple[str, Callable[[], Part]]] = [
                ("gateway", lambda: _start_gateway(root, state)),
                ("stripe", lambda: _start_stripe(root, state)),
                ("adyen", lambda: _start_adyen(root, state)),
            ]
            if with_api:
                services.append(("api", lambda: _start_api(root, state)))
            if with_sync:
                services.append(("sync", lambda: _start_sync(root, state)))
            if with_notifications:
                services.append(("notifications", lambda: _start_notifications(root, state)))
            for name, start in services:
                if name not in state.parts and _available(_MARKERS[name]):
                    state.parts[name] = start()
                    save(root, state)
        except BaseException:
            save(root, state)  # what did start is recorded, so `down` can stop it
            raise
        return state


_RESTARTABLE: dict[str, Callable[[Path, StackState, int | None], Part]] = {
    "api": _start_api, "gateway": _start_gateway, "stripe": _start_stripe, "adyen": _start_adyen,
}


def restart(root: Path, name: str) -> Part:
    """Stop and start one stateless service (the API server, the sandbox gateway: its state is on disk)."""
    if name not in _RESTARTABLE:
        raise StackError(f"only {', '.join(_RESTARTABLE)} can be restarted alone; use down/up for the rest")
    with locked(root):
        state = load(root)
        part = state.parts.get(name)
        if part is not None and part.pid is not None and _ours(name, part.pid):
            terminate(part.pid)
        state.parts[name] = _RESTARTABLE[name](root, state, part.port if part is not None else None)
        save(root, state)
        return state.parts[name]


def down(root: Path) -> list[str]:
    """Stop every process this stack started, in reverse order; forget the state. Returns what was stopped."""
    stopped: list[str] = []
    with locked(root):
        state = load(root)
        for name in reversed(list(state.parts)):
            part = state.parts[name]
            if part.external:
                continue
            if name == "postgres":
                postgres.stop(root / "postgres" / "data")
                stopped.append(name)
            elif part.pid is not None and _ours(name, part.pid):
                terminate(part.pid)
                stopped.append(name)
        clear(root)
    return stopped
