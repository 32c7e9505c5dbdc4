"""The console's operators and their sessions (migration 0009).

Passwords are stored as scrypt hashes (hashlib.scrypt, a salt per operator, the cost parameters in the stored string
so they can be raised later without locking anyone out). A session's token lives only in the operator's cookie: the
table keeps its SHA-256. A session ends SESSION_IDLE_MS after its last request, SESSION_MAX_MS after it was opened,
when it is closed (logout) or when its operator is removed, whichever comes first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from core.limits import SESSION_IDLE_MS, SESSION_MAX_MS
from store.schema import OPERATOR_ROLES, operator_sessions, operators

__all__ = [
    "MIN_PASSWORD_LENGTH", "ROLES", "Operator", "OperatorError", "Session", "authenticate", "close_session",
    "create_operator", "find_session", "list_operators", "open_session", "remove_operator",
]

ROLES = OPERATOR_ROLES
MIN_PASSWORD_LENGTH = 12
# Longer is no safer and only costs hashing time: a bound on what a login form may make us hash.
MAX_PASSWORD_LENGTH = 1024
_USERNAME = re.compile(r"[a-z0-9._@-]{3,64}")
# scrypt's cost: N=2^14, r=8, p=1 uses 16 MiB and tens of milliseconds (the parameters OWASP lists as a minimum).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_SALT_BYTES, _HASH_BYTES = 16, 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    username: str
    role: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    csrf_token: str
    expires_at: datetime


class OperatorError(ValueError):
    """An operator cannot be made as asked; the message names what is wrong."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text_: str) -> bytes:
    return base64.urlsafe_b64decode(text_ + "=" * (-len(text_) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=_HASH_BYTES, maxmem=_SCRYPT_MAXMEM)


def hash_password(password: str) -> str:
    """scrypt$N$r$p$salt$hash (salt and hash url-safe base64)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:  # a malformed stored hash matches nothing
        return False
    return hmac.compare_digest(computed, _unb64(digest))


# Hashed against when the name is unknown, so an unknown name costs what a wrong password costs (no user enumeration
# by timing). Made on first use: importing this module stays cheap.
_dummy_hash: list[str] = []


def _dummy() -> str:
    if not _dummy_hash:
        _dummy_hash.append(hash_password(secrets.token_urlsafe(16)))
    return _dummy_hash[0]


def _username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise OperatorError(f"username: {username!r} must be 3 to 64 of a-z 0-9 . _ @ -")
    return name


def _operator(row: object) -> Operator:
    return Operator(id=row.id, username=row.username, role=row.role, created_at=row.created_at)  # type: ignore[attr-defined]


def create_operator(conn: Connection, *, username: str, password: str, role: str) -> Operator:
    name = _username(username)
    if role not in ROLES:
        raise OperatorError(f"role: {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise OperatorError(f"password: at most {MAX_PASSWORD_LENGTH} characters")
    row = conn.execute(
        insert(operators)
        .values(username=name, password_hash=hash_password(password), role=role)
        .on_conflict_do_nothing(index_elements=[operators.c.username], index_where=text("removed_at IS NULL"))
        .returning(operators.c.id, operators.c.username, operators.c.role, operators.c.created_at)
    ).first()
    if row is None:
        raise OperatorError(f"username: operator {name} exists")
    return _operator(row)


def list_operators(conn: Connection) -> list[Operator]:
    """The operators not removed, by name."""
    rows = conn.execute(
        select(operators.c.id, operators.c.username, operators.c.role, operators.c.created_at)
        .where(operators.c.removed_at.is_(None))
        .order_by(operators.c.username)
    )
    return [_operator(row) for row in rows]


def remove_operator(conn: Connection, *, username: str) -> bool:
    """Remove the operator (the row stays for the audit) and end its sessions; False if there is none by that name."""
    try:
        name = _username(username)
    except OperatorError:
        return False
    removed = conn.execute(
        update(operators)
        .where(operators.c.username == name, operators.c.removed_at.is_(None))
        .values(removed_at=func.now())
        .returning(operators.c.id)
    ).scalar()
    if removed is None:
        return False
    conn.execute(
        update(operator_sessions)
        .where(operator_sessions.c.operator_id == removed, operator_sessions.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
    return True


def authenticate(conn: Connection, *, username: str, password: str) -> Operator | None:
    """The operator, if the name and password are right; None otherwise (which of the two is wrong is not said)."""
    try:
        name = _username(username)
    except OperatorError:
        name = None
    row = None if name is None else conn.execute(
        select(operators.c.id, operators.c.username, operators.c.role, operators.c.created_at,
               operators.c.password_hash)
        .where(operators.c.username == name, operators.c.removed_at.is_(None))
    ).first()
    if row is None or len(password) > MAX_PASSWORD_LENGTH:
        verify_password(password[:MAX_PASSWORD_LENGTH], _dummy())
        return None
    return _operator(row) if verify_password(password, row.password_hash) else None


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _idle_end(now: datetime, created_at: datetime) -> datetime:
    return min(now + timedelta(milliseconds=SESSION_IDLE_MS), created_at + timedelta(milliseconds=SESSION_MAX_MS))


def open_session(conn: Connection, *, operator: Operator, now: datetime) -> tuple[str, Session]:
    """A new session: (the token for the cookie, shown nowhere else; the session with its CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires_at = _idle_end(now, now)
    conn.execute(
        insert(operator_sessions).values(token_sha256=_token_hash(token), operator_id=operator.id, csrf_token=csrf,
                                         created_at=now, last_seen_at=now, expires_at=expires_at)
    )
    return token, Session(operator=operator, csrf_token=csrf, expires_at=expires_at)


def find_session(conn: Connection, *, token: str, now: datetime) -> Session | None:
    """The live session of this token, its idle end moved on to `now` + SESSION_IDLE_MS (never past its hard end);
    None when the token is unknown, the session expired, was closed, or its operator was removed."""
    if not token or len(token) > 256:
        return None
    digest = _token_hash(token)
    row = conn.execute(
        select(operators.c.id, operators.c.username, operators.c.role, operators.c.created_at,
               operator_sessions.c.csrf_token, operator_sessions.c.created_at.label("opened_at"))
        .select_from(operator_sessions.join(operators, operators.c.id == operator_sessions.c.operator_id))
        .where(operator_sessions.c.token_sha256 == digest, operator_sessions.c.revoked_at.is_(None),
               operator_sessions.c.expires_at > now, operators.c.removed_at.is_(None))
    ).first()
    if row is None:
        return None
    expires_at = _idle_end(now, row.opened_at)
    if expires_at <= now:
        return None
    # Never moves the end back (a request with an older `now` than the last one seen changes nothing).
    conn.execute(
        update(operator_sessions)
        .where(operator_sessions.c.token_sha256 == digest, operator_sessions.c.expires_at < expires_at)
        .values(last_seen_at=now, expires_at=expires_at)
    )
    return Session(operator=_operator(row), csrf_token=row.csrf_token, expires_at=expires_at)


def close_session(conn: Connection, *, token: str) -> None:
    """End the session of this token (logout); nothing happens for an unknown or already closed one."""
    conn.execute(
        update(operator_sessions)
        .where(operator_sessions.c.token_sha256 == _token_hash(token), operator_sessions.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
    )
