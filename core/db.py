"""One SQLAlchemy engine per process and database URL (a Lambda container, the API server, a CLI command)."""

from __future__ import annotations

import functools

from sqlalchemy import Engine, create_engine

POOL_SIZE = 10  # per process; RDS Proxy multiplexes on AWS
MAX_OVERFLOW = 40  # bursts of concurrent checkouts in the local server's thread pool
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000  # no statement of ours may hold locks for longer


@functools.cache
def engine_for(url: str) -> Engine:
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S,
                      "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
    )
