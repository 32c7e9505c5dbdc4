"""A PostgreSQL cluster in a folder of our own, from the system's initdb/pg_ctl binaries."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from local.stack.process import (
    LOOPBACK,
    StackError,
    check_traversable,
    chown_tree,
    unprivileged_user,
    wait_for_port,
)

SUPERUSER = "paysaga"
DATABASE = "paysaga"


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl/postgres: the newest /usr/lib/postgresql/N/bin, else PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for candidate in reversed(candidates):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    raise StackError("PostgreSQL server binaries (initdb, pg_ctl) not found: run 'make setup' to install them")


@dataclass(frozen=True)
class Cluster:
    datadir: Path
    port: int
    logfile: Path

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{LOOPBACK}:{self.port}/{DATABASE}"

    def admin_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"


def _run(args: list[str], user: str | None, what: str) -> None:
    result = subprocess.run(args, user=user, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise StackError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")


def initialised(datadir: Path) -> bool:
    return (datadir / "PG_VERSION").exists()


def init_cluster(datadir: Path, *, durable: bool) -> None:
    """initdb into datadir (trust auth on loopback only: there is no password to leak)."""
    bindir = find_bindir()
    user = unprivileged_user()
    datadir.mkdir(parents=True, exist_ok=True)
    check_traversable(datadir.parent, user)
    chown_tree(datadir.parent, user)
    os.chmod(datadir, 0o700)
    args = [str(bindir / "initdb"), "-D", str(datadir), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"]
    if not durable:
        args.append("--no-sync")
    _run(args, user, "initdb")
    conf = datadir / "postgresql.conf"
    with conf.open("a") as handle:
        handle.write("\n# paysaga local stack\nlisten_addresses = '127.0.0.1'\nmax_connections = 300\n")
        handle.write("shared_buffers = 256MB\nmax_prepared_transactions = 50\n")
        if durable:
            # The dev stack keeps fsync (no corruption on a crash) but does not wait for each WAL flush: an OS
            # crash may lose the last few hundred milliseconds of commits, which a laptop's stack can afford.
            handle.write("synchronous_commit = off\n")
        else:
            # Throwaway test clusters trade crash safety for speed.
            handle.write("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")


def start(datadir: Path, port: int, logfile: Path) -> Cluster:
    bindir = find_bindir()
    user = unprivileged_user()
    logfile.parent.mkdir(parents=True, exist_ok=True)
    logfile.touch()
    chown_tree(logfile.parent, user)
    socket_dir = datadir.parent / "sock"
    socket_dir.mkdir(exist_ok=True)
    chown_tree(socket_dir, user)
    options = f"-p {port} -k {socket_dir}"
    _run(
        [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-o", options, "-w", "-t", "60", "start"],
        user,
        "pg_ctl start",
    )
    wait_for_port(port, "PostgreSQL")
    cluster = Cluster(datadir=datadir, port=port, logfile=logfile)
    ensure_database(cluster, DATABASE)
    return cluster


def postmaster_pid(datadir: Path) -> int | None:
    pidfile = datadir / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop(datadir: Path) -> None:
    if postmaster_pid(datadir) is None:
        return
    bindir = find_bindir()
    _run([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w", "-t", "60", "stop"],
         unprivileged_user(), "pg_ctl stop")


def ensure_database(cluster: Cluster, name: str) -> None:
    import psycopg  # noqa: PLC0415  # only the stack and tests need a driver here

    with psycopg.connect(cluster.admin_url(), autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(f'CREATE DATABASE "{name}"')
