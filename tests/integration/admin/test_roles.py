"""The functions' login user (paysaga_functions, a member of paysaga_app, made exactly as the deploy function makes it)
cannot touch the ledger's rules, and can do the runtime's work.

On a database migrated to head (migration 0005 grants paysaga_app its privileges). Running the whole saga as this
user is the end-to-end suite's job: the local stack's API server and sync worker connect as paysaga_functions
(tests/e2e/test_functions_role.py checks that they do)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import Engine, create_engine, make_url, text

from admin.migrate import prepare_roles
from core.database_roles import APP_ROLE, FUNCTIONS_USER, OWNER_ROLE
from ledger import post, reserve, reverse, void
from ledger.posting import dispute
from saga.merchant_keys import authenticate, create_merchant, rotate
from saga.notifications.webhooks import (
    create_endpoint,
    enqueue_deliveries,
    remove_endpoint,
    resend_event,
    resend_failed,
    rotate_endpoint_secret,
)
from steps import fraud
from store import disputes, executions, leases, notices, outbox, payments, webhooks
from store.operators import authenticate as authenticate_operator
from store.operators import (
    close_session,
    create_operator,
    find_session,
    list_operators,
    open_session,
    remove_operator,
)
from store.replay_audit import list_audit, record_audit
from tests.integration.saga.webhook_support import make_event
from tests.integration.store.support import new_id

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations" / "versions"
MIGRATION = MIGRATIONS / "20261203_0005_roles.py"
# Later migrations that grant paysaga_app what the tables they make need (each with a TABLE_GRANTS of its own).
GRANTING = ("20261203_0006_webhooks.py", "20261203_0007_operations.py", "20261203_0008_reconciliation.py",
            "20261203_0009_console.py")
# Tables paysaga_app has no privilege on, on purpose (a new table must be granted in a migration or listed here).
UNGRANTED = {"alembic_version": "the migrations' bookkeeping"}
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _roles_migration() -> ModuleType:
    """Migration 0005, its TABLE_GRANTS joined with those of the migrations after it that grant their new tables."""
    module = _load(MIGRATION)
    for name in GRANTING:
        later = _load(MIGRATIONS / name)
        assert not set(later.TABLE_GRANTS) & set(module.TABLE_GRANTS), name
        module.TABLE_GRANTS = {**module.TABLE_GRANTS, **later.TABLE_GRANTS}
        later_columns = getattr(later, "COLUMN_GRANTS", {})
        assert not set(later_columns) & set(module.COLUMN_GRANTS), name
        module.COLUMN_GRANTS = {**module.COLUMN_GRANTS, **later_columns}
    return module


@pytest.fixture
def functions_url(database_url: str) -> str:
    """The functions' user on this database, made by the deploy function's own code (the session's server trusts
    loopback, so the password is not what is tested here: tests/integration/admin/test_migrate.py does that)."""
    prepare_roles(database_url, owner_password="owner-pass", functions_password="functions-pass")
    return make_url(database_url).set(username=FUNCTIONS_USER, password="functions-pass").render_as_string(
        hide_password=False)


@pytest.fixture
def functions(functions_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(functions_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        yield conn


@pytest.fixture
def functions_engine(functions_url: str) -> Iterator[Engine]:
    made = create_engine(functions_url, pool_size=2)
    yield made
    made.dispose()


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


# ---- what it cannot do ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("statement", "refusal"), [
    ("ALTER TABLE ledger_entries DISABLE TRIGGER ALL", "must be owner of table ledger_entries"),
    ("ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only", "must be owner of table ledger_entries"),
    ("ALTER TABLE ledger_transactions DISABLE TRIGGER USER", "must be owner of table ledger_transactions"),
    ("ALTER TABLE accounts DISABLE TRIGGER accounts_guard_totals", "must be owner of table accounts"),
    ("DROP TRIGGER ledger_entries_append_only ON ledger_entries", "must be owner of relation ledger_entries"),
    ("DROP TRIGGER ledger_entries_balanced ON ledger_entries", "must be owner of relation ledger_entries"),
    ("CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$"
     " BEGIN RETURN NULL; END $$", "permission denied for schema public"),
    ("DROP FUNCTION ledger_apply_entries() CASCADE", "must be owner of function ledger_apply_entries"),
    ("SET session_replication_role = replica", 'permission denied to set parameter "session_replication_role"'),
    ("TRUNCATE ledger_entries", "permission denied for table ledger_entries"),
    ("TRUNCATE payments", "permission denied for table payments"),
    ("CREATE TABLE x (id int)", "permission denied for schema public"),
    ("DROP TABLE ledger_entries", "must be owner of table ledger_entries"),
    # Refused before the append-only trigger would refuse them (which it does even for the owner: test_rules_sql).
    ("UPDATE ledger_entries SET amount_minor = amount_minor + 1", "permission denied for table ledger_entries"),
    ("DELETE FROM ledger_entries", "permission denied for table ledger_entries"),
    ("UPDATE ledger_transactions SET amount_minor = 1", "permission denied for table ledger_transactions"),
    ("DELETE FROM ledger_transactions", "permission denied for table ledger_transactions"),
    ("DELETE FROM payments", "permission denied for table payments"),
    ("DELETE FROM accounts", "permission denied for table accounts"),
    ("UPDATE accounts SET credits_posted = credits_posted + 1", "permission denied for table accounts"),
    ("SELECT nextval('ledger_entries_id_seq')", "permission denied for sequence ledger_entries_id_seq"),
    ("SELECT count(*) FROM v_journal", "permission denied for view v_journal"),
    ("SELECT * FROM balance_at(now())", "permission denied for function balance_at"),
    ("SET ROLE paysaga_owner", 'permission denied to set role "paysaga_owner"'),
    ("ALTER SCHEMA public OWNER TO paysaga_functions", "must be owner of schema public"),
])
def test_the_functions_user_cannot(functions: psycopg.Connection[Any], statement: str, refusal: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege) as refused:
        functions.execute(statement)
    assert refusal in str(refused.value)


def test_the_totals_guard_s_flag_does_not_open_the_totals_to_it(functions: psycopg.Connection[Any]) -> None:
    """The flag ledger_apply_entries() sets is a session setting anyone may set; the totals stay closed anyway, since
    that function updates them as the owner (SECURITY DEFINER) and the app may UPDATE only `version`."""
    with functions.transaction():
        functions.execute("SELECT set_config('paysaga.ledger_apply', 'on', true)")
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for table accounts"):
            functions.execute("UPDATE accounts SET debits_posted = debits_posted + 1")
        raise psycopg.Rollback


def test_the_functions_user_is_a_plain_login_member_of_the_app_role(functions: psycopg.Connection[Any]) -> None:
    row = functions.execute(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit FROM pg_roles"
        " WHERE rolname = current_user").fetchone()
    assert row == (False, False, False, False, False, True)
    groups = functions.execute(
        "SELECT r.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid"
        " WHERE a.member = (SELECT oid FROM pg_roles WHERE rolname = current_user)").fetchall()
    assert groups == [(APP_ROLE,)]
    owned = functions.execute(
        "SELECT count(*) FROM pg_class WHERE relowner IN (SELECT oid FROM pg_roles WHERE rolname IN (%s, %s))",
        (APP_ROLE, FUNCTIONS_USER)).fetchone()
    assert owned == (0,)
    schema = functions.execute("SELECT has_schema_privilege('public', 'USAGE'),"
                               " has_schema_privilege('public', 'CREATE')").fetchone()
    assert schema == (True, False)


# ---- exactly the grants of migration 0005, and every table accounted for ---------------------------------------------


def test_the_app_role_holds_exactly_the_migration_s_grants_on_every_table(functions: psycopg.Connection[Any]) -> None:
    roles = _roles_migration()
    tables = _tables(functions)
    unaccounted = [t for t in tables if t not in roles.TABLE_GRANTS and t not in UNGRANTED]
    assert not unaccounted, (f"tables with no privilege for {APP_ROLE}: grant what the runtime needs in a migration, "
                             f"or list them in UNGRANTED with the reason: {unaccounted}")
    assert set(roles.TABLE_GRANTS) <= set(tables)
    for table in tables:
        held = {p for p in PRIVILEGES if functions.execute(
            "SELECT has_table_privilege(%s, %s, %s)", (APP_ROLE, table, p)).fetchone() == (True,)}
        assert held == set(roles.TABLE_GRANTS.get(table, ())), table
        privilege, granted = roles.COLUMN_GRANTS.get(table, ("UPDATE", ()))
        columns = dict(functions.execute(
            "SELECT attname::text, has_column_privilege(%s::name, attrelid, attnum, %s::text) FROM pg_attribute"
            " WHERE attrelid = to_regclass(%s::text) AND attnum > 0 AND NOT attisdropped",
            (APP_ROLE, privilege, table)).fetchall())
        assert columns, table
        assert columns == {c: c in granted or privilege in held for c in columns}, table
    sequences = functions.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
        " AND (has_sequence_privilege(%s, c.oid, 'USAGE') OR has_sequence_privilege(%s, c.oid, 'UPDATE'))",
        (APP_ROLE, APP_ROLE)).fetchall()
    assert sequences == []
    views = functions.execute(
        "SELECT c.relname FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace"
        " AND has_table_privilege(%s, c.oid, 'SELECT')", (APP_ROLE,)).fetchall()
    assert views == []


def test_only_the_app_may_call_the_balance_check_and_the_totals_trigger_runs_as_the_owner(
        functions: psycopg.Connection[Any]) -> None:
    rows = dict(functions.execute(
        "SELECT p.proname, p.prosecdef FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace").fetchall())
    assert rows["ledger_apply_entries"] is True and rows["balance_at"] is True
    assert functions.execute("SELECT has_function_privilege('public', 'ledger_assert_balanced(bigint)', 'EXECUTE'),"
                             " has_function_privilege(%s, 'ledger_assert_balanced(bigint)', 'EXECUTE')",
                             (APP_ROLE,)).fetchone() == (False, True)
    assert OWNER_ROLE != APP_ROLE


# ---- what it can do --------------------------------------------------------------------------------------------------


def test_the_functions_user_does_the_runtime_s_work(functions_engine: Engine) -> None:
    """Every store and ledger write the saga, its steps, the webhooks and the sync issue, as the functions' user:
    merchants and keys, a payment with its lease and moves, the whole ledger (reserve, post, void, reverse, disputes),
    the outbox, the executions, the gateway notices and disputes, and the fraud check's read."""
    now = datetime.now(UTC)
    with functions_engine.begin() as conn:
        merchant_id, api_key = create_merchant(conn, name="Role Shop", currencies=["EUR"], gateway="stripe")
        assert authenticate(conn, api_key) is not None
        assert rotate(conn, merchant_id=merchant_id) is not None
        captured, voided = new_id(), new_id()
        for payment_id in (captured, voided):
            assert payments.insert_payment(conn, payment_id=payment_id, merchant_id=merchant_id, amount_minor=5_000,
                                           currency="EUR", gateway="stripe", customer_ref="c1").applied
            lease = leases.take_lease(conn, payment_id=payment_id, holder="role-test", lease_ms=60_000)
            assert isinstance(lease, leases.Lease)
            assert payments.get_payment(conn, payment_id=payment_id, for_update=True) is not None
            moved = payments.transition_payment(conn, payment_id=payment_id, expected_version=0, to_status="validated",
                                                fraud_score=3, lease_token=lease.token)
            assert moved.applied, moved
            assert payments.transition_payment(conn, payment_id=payment_id, expected_version=1,
                                               to_status="reserved", lease_token=lease.token).applied
            assert reserve(conn, payment_id=payment_id, merchant_id=merchant_id, gateway="stripe", currency="EUR",
                           amount_minor=5_000).applied
            assert leases.release_lease(conn, lease=lease)
    with functions_engine.begin() as conn:
        assert post(conn, payment_id=captured, amount_minor=5_000, fee_minor=150).applied
        assert void(conn, payment_id=voided).applied
        assert dispute(conn, payment_id=captured, kind="dispute_opened", gateway="stripe", amount_minor=1_000).applied
        assert dispute(conn, payment_id=captured, kind="dispute_won", gateway="stripe", amount_minor=1_000).applied
    with functions_engine.begin() as conn:
        assert reverse(conn, payment_id=captured).applied
        assert outbox.insert_event(conn, event_id=f"evt_{captured}", payment_id=captured,
                                   event_type="payment.succeeded", payload={"id": str(captured)}).applied
        assert [e.id for e in outbox.unsent_events(conn)] == [f"evt_{captured}"]
        assert outbox.record_attempt(conn, event_id=f"evt_{captured}").applied
        assert outbox.mark_sent(conn, event_id=f"evt_{captured}").applied
        arn = f"arn:aws:states:eu-west-1:000000000000:express:paysaga:{captured}"
        assert executions.insert_execution(conn, execution_arn=arn, payment_id=captured, name=str(captured),
                                           input={"payment_id": str(captured)}).applied
        assert executions.finish_execution(conn, execution_arn=arn, status="SUCCEEDED", history=[]).applied
        assert executions.list_executions(conn, status="SUCCEEDED")
        assert notices.insert_notice(conn, gateway="stripe", event_id=f"evt_n_{captured}", kind="captured",
                                     occurred_at=now, payload={}, payment_ref=str(captured)).applied
        assert notices.get_notice(conn, gateway="stripe", event_id=f"evt_n_{captured}", for_update=True) is not None
        notices.mark_deferred(conn, gateway="stripe", event_id=f"evt_n_{captured}", payment_id=None, why="later")
        notices.mark_applied(conn, gateway="stripe", event_id=f"evt_n_{captured}", payment_id=captured)
        assert notices.unapplied_notices(conn) == []
        assert disputes.open_dispute(conn, gateway="stripe", reference=f"dp_{captured}", payment_id=captured,
                                     amount_minor=1_000, currency="EUR", reason="fraudulent").applied
        assert disputes.close_dispute(conn, gateway="stripe", reference=f"dp_{captured}", status="won").applied
    with functions_engine.connect() as conn:
        payment = payments.get_payment(conn, payment_id=voided)
        assert payment is not None
        assert fraud.assess(conn, payment).score >= 0
        kinds = conn.execute(text("SELECT kind FROM ledger_transactions WHERE payment_id = :p ORDER BY id"),
                             {"p": captured}).scalars().all()
        assert kinds == ["reserve", "post", "dispute_opened", "dispute_won", "reverse"]


def test_the_functions_user_does_the_webhooks_work(functions_engine: Engine, engine: Engine) -> None:
    """Every webhook write the API, the notifications consumer and the sender issue (migration 0006's grants): an
    endpoint made, rotated and removed, the hand-off, a claim, an attempt recorded, resends."""
    with engine.begin() as conn:  # the payment and its event, as the saga writes them (tested above)
        event = make_event(conn)
    with functions_engine.begin() as conn:
        endpoint, _ = create_endpoint(conn, merchant_id=event.payload["merchant_id"], url="http://127.0.0.1:9/x",
                                      allow_loopback=True)
        assert rotate_endpoint_secret(conn, endpoint_id=endpoint.id, overlap_hours=1) is not None
        assert enqueue_deliveries(conn, event) == 1
        now = datetime.now(UTC)
        (claimed,) = webhooks.claim_due(conn, now=now, claim_until=now, limit=10)
        assert webhooks.record_attempt(conn, delivery_id=claimed.delivery.id, attempts_before=0, attempted_at=now,
                                       status_code=500, latency_ms=3, error="HTTP 500", outcome="failed",
                                       next_attempt_at=now).applied
        assert len(webhooks.attempts_of(conn, delivery_ids=[claimed.delivery.id])) == 1
        assert resend_failed(conn, endpoint.id) == [claimed.delivery.id]
        assert resend_event(conn, event.id) == [claimed.delivery.id]
        assert remove_endpoint(conn, endpoint_id=endpoint.id)


def test_the_functions_user_does_the_console_s_work(functions_engine: Engine) -> None:
    """The console's writes (migration 0009's grants): operators added and removed, sessions opened, refreshed and
    closed, replays audited and read back, and executions found by name; the audit stays append-only for it too."""
    now = datetime.now(UTC)
    with functions_engine.begin() as conn:
        operator = create_operator(conn, username="role.test", password="a long password", role="operator")
        assert authenticate_operator(conn, username="role.test", password="a long password") == operator
        token, _ = open_session(conn, operator=operator, now=now)
        assert find_session(conn, token=token, now=now) is not None
        close_session(conn, token=token)
        assert record_audit(conn, operator="role.test", reason="role test", execution_arn="arn:x", action="requested")
        assert [r.reason for r in list_audit(conn)] == ["role test"]
        assert executions.find_execution(conn, "no-such-name") is None
        assert executions.list_executions(conn, merchant_id="mer_x", error="X", since=now, until=now,
                                          before=(now, "arn")) == []
        assert remove_operator(conn, username="role.test") and list_operators(conn) == []
    with functions_engine.begin() as conn, pytest.raises(Exception, match="permission denied for table replay_audit"):
        conn.execute(text("DELETE FROM replay_audit"))
