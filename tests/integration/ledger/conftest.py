"""Fixtures of the ledger tests: one session database for hypothesis (a function-scoped database per example would
cost a CREATE DATABASE each; examples isolate themselves instead by using a currency of their own, so no two examples
share an account). The per-test `engine` is tests/integration/conftest.py's."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Engine, create_engine

from local.testing.servers import PostgresServer


@pytest.fixture(scope="session")
def shared_engine(pg_server: PostgresServer, pg_template: str) -> Iterator[Engine]:
    name = f"ledger_shared_{os.getpid()}"
    admin = pg_server.url("postgres", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    eng = create_engine(pg_server.url(name), pool_size=20, max_overflow=0)
    yield eng
    eng.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
