"""Fixtures of the integration tests: an engine on the per-test database (store, ledger, the ledger CLI), and a
PostgreSQL that checks passwords (database credentials, the deploy function)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine

from local.testing import servers


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url, pool_size=20, max_overflow=0)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def password_pg() -> Iterator[servers.PostgresServer]:
    """A second server, where every role but the superuser logs in with its password (SCRAM), as on RDS: the
    session's own trusts loopback, which would let a wrong password pass."""
    with servers.postgres_server(passwords=True) as server:
        yield server
