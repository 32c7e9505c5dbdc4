"""The local stack runs the saga as the functions' least-privileged user, as AWS does: its API server and sync worker
connect as paysaga_functions (member of paysaga_app), so every payment of the end-to-end suite (every path, every
gateway, webhooks, the sync) needs nothing but the grants of migration 0005."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from core.database_roles import FUNCTIONS_USER
from local.stack.state import load
from local.testing.live import LiveStack
from tests.e2e.saga_support import books_balance, ledger_kinds, pay


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_api_server_and_the_sync_worker_connect_as_the_functions_user(live: LiveStack) -> None:
    parts = load(live.root).parts
    for name in ("api", "sync", "notifications"):
        pid = parts[name].pid
        assert pid is not None
        assert f"://{FUNCTIONS_USER}@" in _environ(pid)["DATABASE_URL"], name

    _, api_key = live.new_merchant()
    approved, declined = pay(live, api_key, token="tok_approve"), pay(live, api_key, token="tok_decline")
    assert approved.status_code == 201, approved.text
    assert declined.status_code == 402, declined.text
    assert declined.json()["error"]["type"] == "PaymentDeclined"
    approved_id, declined_id = approved.json()["id"], declined.json()["payment"]["id"]
    assert ledger_kinds(live, approved_id) == ["reserve", "post"]
    assert ledger_kinds(live, declined_id) == ["reserve", "void"]
    debits, credits, stranded = books_balance(live, approved_id, declined_id)
    assert debits == credits and stranded == 0

    with live.engine.connect() as conn:
        users = conn.execute(text(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")).scalars().all()
        member = conn.execute(text("SELECT pg_has_role(:user, 'paysaga_app', 'USAGE'),"
                                   " (SELECT rolsuper FROM pg_roles WHERE rolname = :user)"),
                              {"user": FUNCTIONS_USER}).one()
    assert FUNCTIONS_USER in users  # the API's pooled connections
    assert tuple(member) == (True, False)
