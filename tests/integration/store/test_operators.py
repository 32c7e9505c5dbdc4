"""The console's operators and sessions on PostgreSQL: hashed passwords, names and roles checked, sessions that end
when idle, at their hard end, on logout and when their operator is removed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError

from core.limits import SESSION_IDLE_MS, SESSION_MAX_MS
from store.operators import (
    ROLES,
    OperatorError,
    authenticate,
    close_session,
    create_operator,
    find_session,
    list_operators,
    open_session,
    remove_operator,
    verify_password,
)
from store.schema import operator_sessions, operators

PASSWORD = "correct horse battery"
IDLE = timedelta(milliseconds=SESSION_IDLE_MS)
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def test_an_operator_is_stored_with_a_salted_scrypt_hash_and_authenticates(engine: Engine) -> None:
    with engine.begin() as conn:
        alice = create_operator(conn, username="Alice", password=PASSWORD, role="operator")
        bob = create_operator(conn, username="bob", password=PASSWORD, role="viewer")
        hashes = dict(conn.execute(select(operators.c.username, operators.c.password_hash)).all())
    assert (alice.username, alice.role, bob.role) == ("alice", "operator", "viewer")  # names are lower case
    assert ROLES == ("viewer", "operator")
    for stored in hashes.values():
        assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored
        assert verify_password(PASSWORD, stored) and not verify_password(PASSWORD + "x", stored)
    assert hashes["alice"] != hashes["bob"]  # a salt each: the same password hashes apart
    with engine.connect() as conn:
        assert authenticate(conn, username="ALICE", password=PASSWORD) == alice
        assert authenticate(conn, username="alice", password="wrong password!") is None
        assert authenticate(conn, username="nobody", password=PASSWORD) is None
        assert authenticate(conn, username="x", password=PASSWORD) is None  # not even a valid name
        assert [o.username for o in list_operators(conn)] == ["alice", "bob"]


@pytest.mark.parametrize(("username", "password", "role", "named"), [
    ("al", PASSWORD, "viewer", "username"),
    ("a" * 65, PASSWORD, "viewer", "username"),
    ("bad name", PASSWORD, "viewer", "username"),
    ("semi;colon", PASSWORD, "viewer", "username"),
    ("carol", "short pass1", "viewer", "password: at least 12"),
    ("carol", "x" * 1025, "viewer", "password: at most"),
    ("carol", PASSWORD, "admin", "role: 'admin'"),
])
def test_bad_names_passwords_and_roles_are_refused_naming_what(engine: Engine, username: str, password: str,
                                                               role: str, named: str) -> None:
    with engine.begin() as conn, pytest.raises(OperatorError, match=named):
        create_operator(conn, username=username, password=password, role=role)


def test_a_name_is_taken_once_while_its_operator_lives(engine: Engine) -> None:
    with engine.begin() as conn:
        first = create_operator(conn, username="dave", password=PASSWORD, role="viewer")
        with pytest.raises(OperatorError, match="operator dave exists"):
            create_operator(conn, username="Dave", password=PASSWORD, role="operator")
        assert remove_operator(conn, username="dave")
        assert not remove_operator(conn, username="dave")
        assert not remove_operator(conn, username="no such")
        assert authenticate(conn, username="dave", password=PASSWORD) is None  # removed: no login
        again = create_operator(conn, username="dave", password=PASSWORD + "2", role="operator")
        assert again.id != first.id and [o.id for o in list_operators(conn)] == [again.id]
        assert conn.execute(select(operators.c.removed_at).where(operators.c.id == first.id)).scalar() is not None


def test_the_database_refuses_what_the_code_would(engine: Engine) -> None:
    for statement in ("INSERT INTO operators (username, password_hash, role) VALUES ('UPPER', 'h', 'viewer')",
                      "INSERT INTO operators (username, password_hash, role) VALUES ('eve', 'h', 'root')"):
        with engine.begin() as conn, pytest.raises(IntegrityError, match="check constraint"):
            conn.execute(text(statement))


def test_a_session_lives_while_used_and_ends_when_idle(engine: Engine) -> None:
    with engine.begin() as conn:
        operator = create_operator(conn, username="erin", password=PASSWORD, role="viewer")
        token, opened = open_session(conn, operator=operator, now=T0)
        stored = conn.execute(select(operator_sessions)).mappings().one()
    assert stored["token_sha256"] == hashlib.sha256(token.encode()).digest()  # the token itself is not stored
    assert token not in str(dict(stored)) and len(token) >= 40 and len(opened.csrf_token) >= 40
    assert opened.expires_at == T0 + IDLE and opened.operator == operator
    with engine.begin() as conn:
        seen = find_session(conn, token=token, now=T0 + IDLE - timedelta(seconds=1))
        assert seen is not None and seen.csrf_token == opened.csrf_token and seen.operator == operator
        assert seen.expires_at == T0 + 2 * IDLE - timedelta(seconds=1)  # each request moves the idle end on
        assert find_session(conn, token=token, now=T0 + 2 * IDLE - timedelta(seconds=2)) is not None
        assert find_session(conn, token=token, now=T0 + 3 * IDLE) is None  # idle too long
        assert find_session(conn, token="not-a-token", now=T0) is None
        assert find_session(conn, token="", now=T0) is None


def test_a_busy_session_still_ends_at_its_hard_end(engine: Engine) -> None:
    with engine.begin() as conn:
        operator = create_operator(conn, username="frank", password=PASSWORD, role="operator")
        token, _ = open_session(conn, operator=operator, now=T0)
        hard_end = T0 + timedelta(milliseconds=SESSION_MAX_MS)
        now = T0
        while now + IDLE / 2 < hard_end:
            now += IDLE / 2
            assert find_session(conn, token=token, now=now) is not None, now
        last = find_session(conn, token=token, now=hard_end - timedelta(seconds=1))
        assert last is not None and last.expires_at == hard_end  # never past the hard end
        assert find_session(conn, token=token, now=hard_end) is None


def test_logout_and_removal_end_sessions(engine: Engine) -> None:
    with engine.begin() as conn:
        grace = create_operator(conn, username="grace", password=PASSWORD, role="operator")
        closed, _ = open_session(conn, operator=grace, now=T0)
        kept, _ = open_session(conn, operator=grace, now=T0)
        close_session(conn, token=closed)
        close_session(conn, token=closed)  # again: nothing happens
        close_session(conn, token="unknown")
        assert find_session(conn, token=closed, now=T0) is None
        assert find_session(conn, token=kept, now=T0) is not None  # one logout ends one session
        assert remove_operator(conn, username="grace")
        assert find_session(conn, token=kept, now=T0) is None
        assert conn.execute(select(operator_sessions.c.revoked_at.is_not(None))).scalars().all() == [True, True]
