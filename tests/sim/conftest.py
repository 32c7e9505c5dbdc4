"""The simulation runs in-process against the session's live stack, with the environment its Lambdas get, except
that its sagas publish to a notifications queue of its own: the live stack's notification worker long-polls the
stack's queue and would take the simulation's events before its consumer (which crashes on purpose, by seed) does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.aws_resources import provision
from core.settings import settings
from local.simulate import Backends
from local.stack.state import load
from local.testing.live import TEST_ENV, LiveStack

# Gateway timeouts are injected on purpose: a short client timeout keeps each one cheap.
SIM_ENV = {**TEST_ENV, "GATEWAY_TIMEOUT_MS": "300", "NOTIFICATIONS_QUEUE": "paysaga-sim-notifications.fifo",
           "NOTIFICATIONS_DLQ": "paysaga-sim-notifications-dlq.fifo"}


@pytest.fixture
def sim_backends(live: LiveStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Backends]:
    state = load(live.root)
    for name, value in {**state.env(), **SIM_ENV}.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    provision(settings())  # the simulation's own queue and DLQ, made as the stack's are
    yield Backends(settings(), redis_pid=state.parts["redis"].pid, aws_pid=state.parts["aws"].pid,
                   api_url=state.parts["api"].url)
    settings.cache_clear()
