"""Fixtures of the end-to-end tests that call step handlers directly, as Lambda would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core.settings import settings
from local.asl import LocalStepFunctions, ManualClock
from local.aws_names import LOCAL_ACCOUNT, LOCAL_REGION
from local.saga_runtime import create_operation_machines, create_saga_machine, local_services, resolve_handler
from local.stack.state import load
from local.testing.live import TEST_ENV, LiveStack
from saga.bootstrap import Services


@pytest.fixture
def step_env(live: LiveStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the step Lambdas get, pointing at the live stack."""
    for name, value in {**load(live.root).env(), **TEST_ENV}.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture
def services(live: LiveStack, step_env: None) -> Iterator[Services]:
    """The start path's services with every state machine (the saga's and the operations') on a local runtime of
    this process whose clock is manual: retries back off in virtual time."""
    runtime = LocalStepFunctions(resolve_handler, clock=ManualClock(start=datetime.now(UTC)), region=LOCAL_REGION,
                                 account=LOCAL_ACCOUNT)
    made = local_services(settings(), step_functions=(runtime, create_saga_machine(runtime, role="paysaga-e2e")),
                          operation_machines=create_operation_machines(runtime, role="paysaga-e2e"))
    yield made
    made.close()


@pytest.fixture
def captures_never_settle(live: LiveStack) -> Iterator[None]:
    """The sandbox confirms asynchronous captures only when told to (the stack's default is after 1 s)."""
    live.configure_gateway(settle_after_ms=None)
    yield
    live.configure_gateway(settle_after_ms=1000)
