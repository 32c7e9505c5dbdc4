"""Fixtures of the integration tests: an engine on the per-test database (store, ledger, the ledger CLI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = create_engine(database_url, pool_size=20, max_overflow=0)
    yield eng
    eng.dispose()
