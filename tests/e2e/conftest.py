"""Fixtures of the end-to-end tests that call step handlers directly, as Lambda would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import settings
from local.stack.state import load
from local.testing.live import TEST_ENV, LiveStack


@pytest.fixture
def step_env(live: LiveStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment the step Lambdas get, pointing at the live stack."""
    for name, value in {**load(live.root).env(), **TEST_ENV}.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    yield
    settings.cache_clear()
