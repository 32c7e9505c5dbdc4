"""`paysaga run` makes a demo operator (`admin`, role operator) when there is none, prints its password once with the
console's URL, and keeps it in the stack folder (mode 0600) as it keeps the demo merchant's key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine

from local import cli
from store.operators import authenticate, create_operator, list_operators


@pytest.fixture
def stack_folder(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAYSAGA_STACK_DIR", str(tmp_path))
    monkeypatch.setattr(cli, "_engine", lambda: engine)
    monkeypatch.setattr(cli, "console", Console(width=400))  # lines as printed, not folded at 80 columns
    return tmp_path


def test_the_first_run_makes_the_demo_operator_and_later_runs_do_not(stack_folder: Path, engine: Engine,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli._print_demo_operator in cli._RUN_HOOKS
    cli._print_demo_operator()
    first = capsys.readouterr().out
    password_file = stack_folder / "console-admin.password"
    password = password_file.read_text().strip()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert "/console" in first and "operator admin created" in first and password in first
    with engine.connect() as conn:
        admin = authenticate(conn, username="admin", password=password)
        assert admin is not None and admin.role == "operator"

    cli._print_demo_operator()
    second = capsys.readouterr().out
    assert password not in second and str(password_file) in second  # shown once; where it is kept
    with engine.connect() as conn:
        assert [o.username for o in list_operators(conn)] == ["admin"]


def test_no_demo_operator_where_operators_exist(stack_folder: Path, engine: Engine,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with engine.begin() as conn:
        create_operator(conn, username="ops", password="a long password", role="viewer")
    assert cli.ensure_demo_operator() is None
    cli._print_demo_operator()
    assert "paysaga operators add" in capsys.readouterr().out
    assert not (stack_folder / "console-admin.password").exists()
    with engine.connect() as conn:
        assert [o.username for o in list_operators(conn)] == ["ops"]
