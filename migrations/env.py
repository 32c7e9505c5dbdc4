"""Alembic environment: the URL comes from `-x url=...`, the Config's 'sqlalchemy.url', or DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import ledger.schema  # noqa: F401  # adds the ledger's tables to the one MetaData
from store.schema import metadata

config = context.config


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from core.settings import settings  # noqa: PLC0415

        url = settings().sqlalchemy_url
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # Behind RDS Proxy the init query caps every statement at the runtime's statement timeout; a migration's DDL
        # (an index on a grown table) may need longer. Session-level, so it outlives this commit.
        connection.exec_driver_sql("SET statement_timeout = 0")
        connection.commit()
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
