"""saga.replay.replay_audited on PostgreSQL, with `replay` itself stubbed (the live stack runs the real one:
tests/e2e/test_operators_cli.py): which rows it writes when a replay runs, is refused, or breaks, and what it refuses
before writing anything."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine

from saga import replay as replay_module
from saga.replay import REFUSED, ReplayError, ReplayOutcome, replay_audited
from store.executions import insert_execution
from store.replay_audit import list_audit
from tests.integration.store.support import make_merchant, make_payment

MACHINE = "arn:aws:states:eu-west-1:000000000000:express:paysaga"


@pytest.fixture
def recorded(engine: Engine) -> tuple[Any, str, str]:
    """Services with this engine, and a recorded execution: (services, its ARN, its name)."""
    with engine.begin() as conn:
        payment = make_payment(conn, merchant_id=make_merchant(conn), amount_minor=100, currency="EUR")
        name = f"pay-{payment}-01JX"
        insert_execution(conn, execution_arn=f"{MACHINE}:{name}", payment_id=payment, name=name,
                         input={"payment_id": str(payment)})
    return SimpleNamespace(engine=engine), f"{MACHINE}:{name}", name


def _stub(monkeypatch: pytest.MonkeyPatch, result: ReplayOutcome | Exception) -> list[str]:
    called: list[str] = []

    def replay(services: Any, execution_arn: str) -> ReplayOutcome:
        called.append(execution_arn)
        if isinstance(result, Exception):
            raise result
        return result

    monkeypatch.setattr(replay_module, "replay", replay)
    return called


def test_a_replay_by_name_writes_requested_then_finished_with_its_outcome(
        recorded: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    services, arn, name = recorded
    outcome = ReplayOutcome(f"{MACHINE}:replay-1", "FAILED", "PaymentDeclined", "failed")
    called = _stub(monkeypatch, outcome)
    assert replay_audited(services, name, operator="alice", reason="gateway was down") == outcome
    assert called == [arn]
    with services.engine.connect() as conn:
        finished, requested = list_audit(conn, execution_arn=arn)
    assert (requested.action, requested.operator, requested.reason) == ("requested", "alice", "gateway was down")
    assert (finished.action, finished.new_execution_arn, finished.outcome) == (
        "finished", f"{MACHINE}:replay-1", "FAILED PaymentDeclined")
    assert finished.detail is not None and finished.detail.endswith("is failed")


def test_a_refused_replay_is_audited_and_raised(recorded: tuple[Any, str, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    services, arn, _ = recorded
    _stub(monkeypatch, ReplayError("payment 1 is succeeded: nothing to replay"))
    with pytest.raises(ReplayError, match="nothing to replay"):
        replay_audited(services, arn, operator="cli:bob", reason="once more")
    with services.engine.connect() as conn:
        finished, requested = list_audit(conn, execution_arn=arn)
    assert requested.action == "requested"
    assert (finished.outcome, finished.detail, finished.new_execution_arn) == (
        REFUSED, "payment 1 is succeeded: nothing to replay", None)


def test_a_replay_that_breaks_is_audited_and_raised(recorded: tuple[Any, str, str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    services, arn, _ = recorded
    _stub(monkeypatch, ConnectionError("redis went away"))
    with pytest.raises(ConnectionError):
        replay_audited(services, arn, operator="alice", reason="retry")
    with services.engine.connect() as conn:
        finished, _ = list_audit(conn, execution_arn=arn)
    assert (finished.outcome, finished.detail) == ("error", "ConnectionError: redis went away")


@pytest.mark.parametrize(("execution", "operator", "reason", "message"), [
    (None, "alice", "", "needs a reason"),
    (None, "alice", " \n", "needs a reason"),
    (None, " ", "why", "needs an operator"),
    ("pay-0-unknown", "alice", "why", "no recorded execution pay-0-unknown"),
    (f"{MACHINE}:unknown", "alice", "why", "no recorded execution"),
])
def test_refused_before_anything_is_written(recorded: tuple[Any, str, str], monkeypatch: pytest.MonkeyPatch,
                                            execution: str | None, operator: str, reason: str, message: str) -> None:
    services, arn, _ = recorded
    called = _stub(monkeypatch, ReplayOutcome("x", "SUCCEEDED", None, "succeeded"))
    with pytest.raises(ReplayError, match=message):
        replay_audited(services, execution or arn, operator=operator, reason=reason)
    assert called == []
    with services.engine.connect() as conn:
        assert list_audit(conn) == []
