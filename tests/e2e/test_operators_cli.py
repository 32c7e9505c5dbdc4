"""The console's operators and the audited replay, through the commands people use, against the live stack:
`paysaga operators add|list|remove`, `executions list` telling a decline from what needs a look, and `executions
replay NAME --reason` writing the audit rows."""

from __future__ import annotations

import re
import subprocess
import sys

from sqlalchemy import text
from ulid import ULID

from local.testing.live import LiveStack
from store.operators import authenticate
from store.replay_audit import list_audit
from tests.e2e.saga_support import pay, payment_row
from tests.e2e.test_saga_faults import failing_outbox_inserts


def _name() -> str:
    return f"op-{str(ULID()).lower()}"


def _input(live: LiveStack, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "local.cli", *args], env=live.env, input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)


def test_operators_are_added_with_a_password_shown_once_listed_and_removed(live: LiveStack) -> None:
    name = _name()
    added = live.cli("operators", "add", name.upper(), "--role", "operator")
    assert added.returncode == 0, added.stderr
    assert f"operator {name} added (operator)" in added.stdout
    shown = re.search(r"password \(shown once, stored hashed\): (\S+)", added.stdout)
    assert shown is not None and len(shown.group(1)) >= 20
    password = shown.group(1)
    with live.engine.connect() as conn:
        operator = authenticate(conn, username=name, password=password)
        assert operator is not None and operator.role == "operator"

    listed = live.cli("operators", "list")
    assert listed.returncode == 0 and name in listed.stdout and password not in listed.stdout

    again = live.cli("operators", "add", name, "--role", "viewer")
    assert again.returncode == 1 and f"operator {name} exists" in again.stderr and "Traceback" not in again.stderr
    bad_role = live.cli("operators", "add", _name(), "--role", "admin")
    assert bad_role.returncode == 1 and "role: 'admin' is not one of viewer, operator" in bad_role.stderr
    bad_name = live.cli("operators", "add", "x", "--role", "viewer")
    assert bad_name.returncode == 1 and "username: 'x'" in bad_name.stderr

    removed = live.cli("operators", "remove", name)
    assert removed.returncode == 0 and f"operator {name} removed" in removed.stdout
    assert name not in live.cli("operators", "list").stdout
    with live.engine.connect() as conn:
        assert authenticate(conn, username=name, password=password) is None
    gone = live.cli("operators", "remove", name)
    assert gone.returncode == 1 and f"no operator {name}" in gone.stderr


def test_a_password_from_stdin_is_never_printed(live: LiveStack) -> None:
    name, password = _name(), "a viewer's own passphrase"
    added = _input(live, password + "\n", "operators", "add", name, "--role", "viewer", "--password-stdin")
    assert added.returncode == 0, added.stderr
    assert password not in added.stdout and "shown once" not in added.stdout
    with live.engine.connect() as conn:
        operator = authenticate(conn, username=name, password=password)
    assert operator is not None and operator.role == "viewer"
    short = _input(live, "too short\n", "operators", "add", _name(), "--role", "viewer", "--password-stdin")
    assert short.returncode == 1 and "password: at least 12 characters" in short.stderr


def _row_of(stdout: str, name: str) -> str:
    line = next((line for line in stdout.splitlines() if name in line), None)
    assert line is not None, stdout
    return line


def test_replay_by_name_is_audited_and_the_list_says_what_to_look_at(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    declined = pay(live, api_key, token="tok_decline")
    assert declined.status_code == 402, declined.text
    declined_id = declined.json()["payment"]["id"]
    order = f"fail-commit-{ULID()}"
    with failing_outbox_inserts(live, order):
        parked = pay(live, api_key, order_reference=order)
    assert parked.status_code == 202, parked.text
    payment_id = parked.json()["id"]
    assert payment_row(live, payment_id)["status"] == "needs_attention"
    with live.engine.connect() as conn:
        failed_arn, name = conn.execute(text("SELECT execution_arn, name FROM saga_executions WHERE payment_id = :id"),
                                        {"id": int(payment_id)}).one()

    # The decline ended correctly; the parked payment needs a look (a column, and a filter).
    failed = live.cli("executions", "list", "--status", "FAILED")
    assert failed.returncode == 0, failed.stderr
    assert "look" in failed.stdout
    assert re.search(r"\byes\b", _row_of(failed.stdout, name))
    declined_row = _row_of(failed.stdout, declined_id)
    assert "PaymentDeclined" in declined_row and not re.search(r"\byes\b", declined_row)
    looking = live.cli("executions", "list", "--needs-attention")
    assert looking.returncode == 0 and name in looking.stdout and declined_id not in looking.stdout

    # Replay needs a reason; a blank one is refused before anything is written.
    missing = live.cli("executions", "replay", name)
    assert missing.returncode == 2 and "--reason" in missing.stderr
    blank = live.cli("executions", "replay", name, "--reason", "  ")
    assert blank.returncode == 1 and "needs a reason" in blank.stderr
    unknown = live.cli("executions", "replay", "pay-0-nothing", "--reason", "why not")
    assert unknown.returncode == 1 and "no recorded execution pay-0-nothing" in unknown.stderr
    with live.engine.connect() as conn:
        assert list_audit(conn, execution_arn=failed_arn) == []

    # By the name `executions list` shows, as someone named.
    replayed = live.cli("executions", "replay", name, "--reason", "outbox insert failed: database restarted",
                        "--as", "e2e-oncall")
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    assert "SUCCEEDED" in replayed.stdout and "succeeded" in replayed.stdout
    assert payment_row(live, payment_id)["status"] == "succeeded"
    with live.engine.connect() as conn:
        finished, requested = list_audit(conn, execution_arn=failed_arn)
        new_arn = conn.execute(text("SELECT execution_arn FROM saga_executions WHERE replay_of = :arn"),
                               {"arn": failed_arn}).scalar_one()
    assert (requested.action, requested.operator, requested.reason, requested.new_execution_arn) == (
        "requested", "e2e-oncall", "outbox insert failed: database restarted", None)
    assert (finished.action, finished.operator, finished.new_execution_arn, finished.outcome) == (
        "finished", "e2e-oncall", new_arn, "SUCCEEDED")
    assert finished.detail == f"payment {payment_id} is succeeded" and finished.at >= requested.at
    assert name not in live.cli("executions", "list", "--needs-attention").stdout  # nothing left to look at

    # Again, by its ARN: the payment succeeded, nothing to replay; refused, and the refusal is audited too.
    again = live.cli("executions", "replay", failed_arn, "--reason", "to be sure")
    assert again.returncode == 1 and "nothing to replay" in again.stderr and "Traceback" not in again.stderr
    with live.engine.connect() as conn:
        refused, asked = list_audit(conn, execution_arn=failed_arn, limit=2)
    assert (asked.action, refused.action, refused.outcome, refused.new_execution_arn) == (
        "requested", "finished", "refused", None)
    assert refused.operator.startswith("cli:") and refused.operator == asked.operator
    assert refused.detail is not None and "nothing to replay" in refused.detail
