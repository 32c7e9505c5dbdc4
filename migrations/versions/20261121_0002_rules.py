"""Rules the database enforces itself, the finance views, balance_at(), and the read-only paysaga_finance role.

- ledger_entries and ledger_transactions are append-only: UPDATE, DELETE and TRUNCATE raise, and a transaction's
  entries are written with it (in the same database transaction), never added to it later.
- Account totals (debits/credits, pending/posted) change only by inserting entries: a statement-level trigger applies
  each INSERT's net per account in one UPDATE (so a transaction's credits and debits land together), and a guard
  refuses any other change. The accounts' CHECK constraints then refuse a state that breaks a no-negative flag,
  under concurrent writers too (the UPDATE re-reads the latest row version under its row lock).
- Every ledger transaction has at least two entries, all in its currency, and balances per effect at COMMIT
  (deferred constraint triggers).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 13:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINANCE_ROLE = "paysaga_finance"
VIEWS = ("v_account_balances", "v_trial_balance", "v_trial_balance_totals", "v_journal")

APPEND_ONLY = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused (corrections are new entries)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

-- A transaction's entries are written in the database transaction that writes it, never added later: the ids
-- written so far in this database transaction live in a transaction-local setting (undone with a rollback).
CREATE FUNCTION ledger_open_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('paysaga.open_transactions',
        coalesce(nullif(current_setting('paysaga.open_transactions', true), '') || ',', '') || NEW.id, true);
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_entry_joins_open_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT NEW.transaction_id = ANY (
        string_to_array(coalesce(current_setting('paysaga.open_transactions', true), ''), ',')::bigint[]
    ) THEN
        RAISE EXCEPTION 'ledger transaction % was written before: entries cannot be added to it later',
            NEW.transaction_id USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_transactions_open AFTER INSERT ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION ledger_open_transaction();
CREATE TRIGGER ledger_entries_with_their_transaction BEFORE INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_joins_open_transaction();
"""

TOTALS = """
CREATE FUNCTION ledger_apply_entries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('paysaga.ledger_apply', 'on', true);
    UPDATE accounts AS a SET
        debits_pending = a.debits_pending + d.debits_pending,
        debits_posted = a.debits_posted + d.debits_posted,
        credits_pending = a.credits_pending + d.credits_pending,
        credits_posted = a.credits_posted + d.credits_posted,
        version = a.version + 1
    FROM (
        SELECT account_id,
            sum(CASE WHEN side = 'debit' AND effect = 'pending' THEN amount_minor
                     WHEN side = 'debit' AND effect = 'release' THEN -amount_minor ELSE 0 END) AS debits_pending,
            sum(CASE WHEN side = 'debit' AND effect = 'post' THEN amount_minor ELSE 0 END) AS debits_posted,
            sum(CASE WHEN side = 'credit' AND effect = 'pending' THEN amount_minor
                     WHEN side = 'credit' AND effect = 'release' THEN -amount_minor ELSE 0 END) AS credits_pending,
            sum(CASE WHEN side = 'credit' AND effect = 'post' THEN amount_minor ELSE 0 END) AS credits_posted
        FROM new_entries GROUP BY account_id
    ) AS d
    WHERE a.id = d.account_id;
    PERFORM set_config('paysaga.ledger_apply', 'off', true);
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_apply AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply_entries();

CREATE FUNCTION ledger_guard_account_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('paysaga.ledger_apply', true), 'off') = 'on' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF (NEW.debits_pending, NEW.debits_posted, NEW.credits_pending, NEW.credits_posted) <> (0, 0, 0, 0) THEN
            RAISE EXCEPTION 'account % must start with zero totals', NEW.code USING ERRCODE = 'check_violation';
        END IF;
    ELSIF (NEW.debits_pending, NEW.debits_posted, NEW.credits_pending, NEW.credits_posted, NEW.currency)
          IS DISTINCT FROM (OLD.debits_pending, OLD.debits_posted, OLD.credits_pending, OLD.credits_posted,
                            OLD.currency) THEN
        RAISE EXCEPTION 'account % totals and currency change only through ledger entries', OLD.code
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER accounts_guard_totals BEFORE INSERT OR UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_guard_account_totals();
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BALANCED = """
CREATE FUNCTION ledger_assert_balanced(tx bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    entry_count integer;
    tx_currency char(3);
    bad record;
BEGIN
    SELECT currency INTO tx_currency FROM ledger_transactions WHERE id = tx;
    SELECT count(*) INTO entry_count FROM ledger_entries WHERE transaction_id = tx;
    IF entry_count < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % entries; at least two are required', tx, entry_count
            USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM ledger_entries WHERE transaction_id = tx AND currency <> tx_currency) THEN
        RAISE EXCEPTION 'ledger transaction % (%) holds entries in another currency', tx, tx_currency
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT currency, effect,
           sum(CASE side WHEN 'debit' THEN amount_minor ELSE 0 END) AS debits,
           sum(CASE side WHEN 'credit' THEN amount_minor ELSE 0 END) AS credits
      INTO bad
      FROM ledger_entries WHERE transaction_id = tx
     GROUP BY currency, effect
    HAVING sum(CASE side WHEN 'debit' THEN amount_minor ELSE -amount_minor END) <> 0
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: % % debits % <> credits %',
            tx, bad.currency, bad.effect, bad.debits, bad.credits USING ERRCODE = 'check_violation';
    END IF;
END $$;

CREATE FUNCTION ledger_check_entry_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_balanced(NEW.transaction_id);
    RETURN NULL;
END $$;

CREATE FUNCTION ledger_check_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_assert_balanced(NEW.id);
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry_transaction();
CREATE CONSTRAINT TRIGGER ledger_transactions_balanced AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction();
"""

FINANCE_VIEWS = """
CREATE VIEW v_account_balances AS
SELECT a.id AS account_id, a.code, a.kind, a.currency, a.merchant_id, a.gateway, a.normal_side,
       a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits,
       a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
       CASE a.normal_side WHEN 'credit' THEN a.credits_pending - a.debits_pending
                          ELSE a.debits_pending - a.credits_pending END AS pending_balance_minor,
       CASE a.normal_side WHEN 'credit' THEN a.credits_posted - a.debits_posted
                          ELSE a.debits_posted - a.credits_posted END AS posted_balance_minor,
       -- TigerBeetle's available: pending movements against the balance count, pending ones for it do not.
       CASE a.normal_side WHEN 'credit' THEN a.credits_posted - a.debits_posted - a.debits_pending
                          ELSE a.debits_posted - a.credits_posted - a.credits_pending END AS available_balance_minor,
       a.version AS account_version
  FROM accounts AS a;

CREATE VIEW v_trial_balance AS
SELECT a.currency, a.id AS account_id, a.code, a.kind,
       greatest(a.debits_posted - a.credits_posted, 0) AS debit_balance_minor,
       greatest(a.credits_posted - a.debits_posted, 0) AS credit_balance_minor
  FROM accounts AS a;

CREATE VIEW v_trial_balance_totals AS
SELECT currency,
       sum(debit_balance_minor)::bigint AS total_debits_minor,
       sum(credit_balance_minor)::bigint AS total_credits_minor,
       (sum(debit_balance_minor) - sum(credit_balance_minor))::bigint AS difference_minor
  FROM v_trial_balance
 GROUP BY currency;

CREATE VIEW v_journal AS
SELECT e.id AS entry_id, t.id AS transaction_id, t.payment_id, t.kind AS transaction_kind, e.created_at,
       e.account_id, a.code AS account_code, e.side, e.effect, e.amount_minor, e.currency, t.description
  FROM ledger_entries AS e
  JOIN ledger_transactions AS t ON t.id = e.transaction_id
  JOIN accounts AS a ON a.id = e.account_id;

-- SECURITY DEFINER so the finance role reads entries through it without SELECT on the base table.
CREATE FUNCTION balance_at(as_of timestamptz)
RETURNS TABLE (account_id bigint, code text, currency char(3), normal_side text,
               debits_pending bigint, debits_posted bigint, credits_pending bigint, credits_posted bigint,
               posted_balance_minor bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    WITH totals AS (
        SELECT e.account_id,
               sum(CASE WHEN e.side = 'debit' AND e.effect = 'pending' THEN e.amount_minor
                        WHEN e.side = 'debit' AND e.effect = 'release' THEN -e.amount_minor ELSE 0 END) AS dp,
               sum(CASE WHEN e.side = 'debit' AND e.effect = 'post' THEN e.amount_minor ELSE 0 END) AS dpo,
               sum(CASE WHEN e.side = 'credit' AND e.effect = 'pending' THEN e.amount_minor
                        WHEN e.side = 'credit' AND e.effect = 'release' THEN -e.amount_minor ELSE 0 END) AS cp,
               sum(CASE WHEN e.side = 'credit' AND e.effect = 'post' THEN e.amount_minor ELSE 0 END) AS cpo
          FROM ledger_entries AS e
         WHERE e.created_at <= as_of
         GROUP BY e.account_id
    )
    SELECT a.id, a.code, a.currency, a.normal_side,
           coalesce(t.dp, 0)::bigint, coalesce(t.dpo, 0)::bigint, coalesce(t.cp, 0)::bigint,
           coalesce(t.cpo, 0)::bigint,
           (CASE a.normal_side WHEN 'credit' THEN coalesce(t.cpo, 0) - coalesce(t.dpo, 0)
                               ELSE coalesce(t.dpo, 0) - coalesce(t.cpo, 0) END)::bigint
      FROM accounts AS a LEFT JOIN totals AS t ON t.account_id = a.id
$$;
REVOKE ALL ON FUNCTION balance_at(timestamptz) FROM PUBLIC;
"""

CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paysaga_finance') THEN
        CREATE ROLE paysaga_finance NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database's migration created it at the same moment: roles are cluster-wide
END $$;
"""

# Roles are cluster-wide: other databases (e.g. clones of this one) may still hold grants, then the role stays.
DROP_ROLE = """
DO $$
BEGIN
    DROP ROLE IF EXISTS paysaga_finance;
EXCEPTION WHEN dependent_objects_still_exist THEN
    NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(APPEND_ONLY)
    op.execute(TOTALS)
    op.execute(BALANCED)
    op.execute(FINANCE_VIEWS)
    op.execute(CREATE_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA public TO {FINANCE_ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(VIEWS)} TO {FINANCE_ROLE}")
    op.execute(f"GRANT EXECUTE ON FUNCTION balance_at(timestamptz) TO {FINANCE_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON FUNCTION balance_at(timestamptz) FROM {FINANCE_ROLE}")
    op.execute(f"REVOKE ALL ON {', '.join(VIEWS)} FROM {FINANCE_ROLE}")
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {FINANCE_ROLE}")
    op.execute("DROP FUNCTION balance_at(timestamptz)")
    op.execute("DROP VIEW v_journal, v_trial_balance_totals, v_trial_balance, v_account_balances")
    op.execute("DROP TRIGGER ledger_transactions_balanced ON ledger_transactions")
    op.execute("DROP TRIGGER ledger_entries_balanced ON ledger_entries")
    op.execute("DROP FUNCTION ledger_check_transaction(), ledger_check_entry_transaction()")
    op.execute("DROP FUNCTION ledger_assert_balanced(bigint)")
    op.execute("DROP TRIGGER accounts_no_delete ON accounts")
    op.execute("DROP TRIGGER accounts_guard_totals ON accounts")
    op.execute("DROP FUNCTION ledger_guard_account_totals()")
    op.execute("DROP TRIGGER ledger_entries_apply ON ledger_entries")
    op.execute("DROP FUNCTION ledger_apply_entries()")
    op.execute("DROP TRIGGER ledger_entries_with_their_transaction ON ledger_entries")
    op.execute("DROP TRIGGER ledger_transactions_open ON ledger_transactions")
    op.execute("DROP FUNCTION ledger_entry_joins_open_transaction(), ledger_open_transaction()")
    for table in ("ledger_transactions", "ledger_entries"):
        op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
    op.execute("DROP FUNCTION ledger_refuse_change()")
    op.execute(DROP_ROLE)
