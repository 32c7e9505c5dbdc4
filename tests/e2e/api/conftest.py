"""Fixtures for the start endpoint's contract tests: the API document bound to the live server, and a merchant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.specs.openapi.schemas import BaseOpenAPISchema

from core.money import MAX_AMOUNT_MINOR, MINOR_UNIT_EXPONENT
from local.testing.live import LiveStack
from tests.e2e.api.support import post

OPENAPI = Path(__file__).resolve().parents[3] / "openapi.yaml"
LOG_TAIL_CHARS = 6_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed test shows the tail of the API server's log (its stack traces go there, never to the client)."""
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    live = getattr(item, "funcargs", {}).get("live")
    if report.failed and isinstance(live, LiveStack):
        log = live.root / "api" / "api.log"
        if log.exists():
            report.sections.append(("api server log (tail)", log.read_text(errors="replace")[-LOG_TAIL_CHARS:]))


@pytest.fixture(scope="session")
def api_schema(live: LiveStack) -> BaseOpenAPISchema:
    return schemathesis.from_path(str(OPENAPI), base_url=live.api_url)


@pytest.fixture(scope="session")
def contract_api_key(live: LiveStack) -> str:
    """A merchant that accepts every currency and amount the document allows, so valid cases reach the saga."""
    _, api_key = live.new_merchant(currencies=tuple(MINOR_UNIT_EXPONENT), max_amount_minor=MAX_AMOUNT_MINOR)
    return api_key


@pytest.fixture(scope="session")
def contract_payment_id(live: LiveStack, contract_api_key: str) -> str:
    """A payment of the contract merchant, so GET /v1/payments/{id} is exercised with an id that exists."""
    response: httpx.Response = post(live, contract_api_key)
    assert response.status_code == 201, response.text
    payment_id: str = response.json()["id"]
    return payment_id
