"""Throwaway servers for the test session and the benchmarks: PostgreSQL (testcontainers where Docker answers, else
a throwaway local cluster), redis-server, and the AWS emulator. A server that cannot start raises: the tests that need
it error, never skip."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from local.stack import emulator, postgres, redis_server
from local.stack.process import free_port, terminate


def docker_answers() -> bool:
    try:
        import docker  # noqa: PLC0415  # optional: no package means no Docker

        client = docker.from_env(timeout=2)
        return bool(client.ping())
    except Exception:  # no engine, no socket, no package: all mean "no Docker"
        return False


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        auth = f"{self.user}:{self.password}" if self.password else self.user
        return f"{driver}://{auth}@{self.host}:{self.port}/{database}"


# Every role but the superuser logs in over TCP with its password (SCRAM), as on RDS; the superuser keeps trust (it has
# no password here).
_PASSWORD_HBA = f"""local all all trust
host all {postgres.SUPERUSER} 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


@contextlib.contextmanager
def postgres_server(*, passwords: bool = False) -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL. `passwords`: the server checks every non-superuser's password (the Docker image always
    does; a local cluster otherwise trusts loopback)."""
    if docker_answers():
        from testcontainers.postgres import PostgresContainer  # noqa: PLC0415  # only where Docker answers

        with PostgresContainer("postgres:15", username="paysaga", password="paysaga",  # noqa: S106  # throwaway
                               dbname="paysaga") as pg:
            yield PostgresServer(pg.get_container_host_ip(), int(pg.get_exposed_port(5432)), "paysaga", "paysaga")
        return
    root = Path(tempfile.mkdtemp(prefix="paysaga-test-pg-"))
    datadir = root / "data"
    try:
        postgres.init_cluster(datadir, durable=False)
        if passwords:
            (datadir / "pg_hba.conf").write_text(_PASSWORD_HBA)
        cluster = postgres.start(datadir, free_port(), root / "log" / "postgres.log")
        try:
            yield PostgresServer("127.0.0.1", cluster.port, postgres.SUPERUSER, "")
        finally:
            postgres.stop(datadir)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def redis() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="paysaga-test-redis-"))
    port = free_port()
    process = redis_server.start(workdir, port, persistent=False)
    try:
        yield redis_server.url(port)
    finally:
        terminate(process.pid)
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def aws_emulator() -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="paysaga-test-moto-"))
    port = free_port()
    process = emulator.start(workdir, port)
    try:
        yield emulator.url(port)
    finally:
        terminate(process.pid)
        process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def reset_emulator(endpoint_url: str) -> None:
    """moto's own reset endpoint: every resource gone, as if the server had just started."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST", data=b"")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # loopback emulator only
        assert response.status == 200
