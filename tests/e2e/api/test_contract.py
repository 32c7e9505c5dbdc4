"""schemathesis against openapi.yaml and the live server: whatever it sends (valid and invalid data), no 5xx but a
documented 503, and every response matches the document (status code documented, body schema, headers)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, assume, settings
from requests.structures import CaseInsensitiveDict
from schemathesis import DataGenerationMethod, from_pytest_fixture
from schemathesis.checks import (  # type: ignore[attr-defined]
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.models import Case
from ulid import ULID

from core.money import MINOR_UNIT_EXPONENT
from tests.e2e.api.conftest import OPENAPI

ULID_CHARS = 26
KEY_MAX_CHARS = 255
# Valid cases pay with a sandbox card whose outcome is known, picked from the generated token (so Hypothesis still
# drives the choice): success, declines, a gateway fault that is retried, asynchronous and failed captures.
SANDBOX_CARDS = ("tok_approve", "tok_approve", "tok_decline", "tok_insufficient_funds", "tok_fraudulent",
                 "tok_5xx_then_success", "tok_async_capture", "tok_capture_fails", "tok_slow")
# RFC 9110 5.1 / 5.5: a field name is a token; a field value has no control characters but HTAB. Anything else is no
# HTTP request at all: the HTTP server (uvicorn here, API Gateway on AWS) refuses it before the API sees it.
FIELD_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
FIELD_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")
CHECKS = (not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance)

schema = from_pytest_fixture(
    "api_schema", data_generation_methods=[DataGenerationMethod.positive, DataGenerationMethod.negative])


def no_traceback(_: Any, response: Any, case: Case) -> None:  # a schemathesis check: (context, response, case)
    assert "Traceback" not in response.text, f"a stack trace reached the client for {case.method} {case.path}"


def _fresh_idempotency_key(case: Case) -> None:
    """A generated valid key gets a unique suffix, so valid cases run payments instead of replaying one another."""
    key = dict(case.headers or {}).get("Idempotency-Key")
    if case.data_generation_method == DataGenerationMethod.positive and isinstance(key, str):
        case.headers = CaseInsensitiveDict({**dict(case.headers or {}),
                                            "Idempotency-Key": key[: KEY_MAX_CHARS - ULID_CHARS] + str(ULID())})


def _is_http(headers: Mapping[str, Any]) -> bool:
    return all(FIELD_NAME.match(name) and isinstance(value, str) and FIELD_VALUE.match(value)
               and value == value.strip(" \t") for name, value in headers.items())


def _steer_valid_case(case: Case, known_payment_id: str) -> None:
    """Point valid cases at outcomes worth checking: sandbox cards, and a payment that exists."""
    if case.data_generation_method != DataGenerationMethod.positive:
        return
    if isinstance(case.body, dict) and isinstance(case.body.get("payment_method_token"), str):
        generated = case.body["payment_method_token"]
        case.body["payment_method_token"] = SANDBOX_CARDS[sum(map(ord, generated)) % len(SANDBOX_CARDS)]
    if isinstance(case.body, dict) and isinstance(case.body.get("url"), str):
        # A webhook endpoint's URL: a loopback one the local stack allows (a generated host would be resolved by DNS).
        case.body["url"] = f"http://127.0.0.1:9/hooks/{sum(map(ord, case.body['url'])) % 1000}"
    payment_id = (case.path_parameters or {}).get("payment_id")
    if isinstance(payment_id, str) and payment_id.isdigit() and int(payment_id) % 2 == 0:
        case.path_parameters = {**(case.path_parameters or {}), "payment_id": known_payment_id}


@schema.parametrize()
@settings(max_examples=30, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_every_response_matches_the_document(case: Case, contract_api_key: str, contract_payment_id: str) -> None:
    assume(_is_http(case.headers or {}))
    _fresh_idempotency_key(case)
    _steer_valid_case(case, contract_payment_id)
    # Always a valid key (401 has its own tests): invalid cases then reach the header and body validation.
    case.headers = CaseInsensitiveDict({**dict(case.headers or {}), "Authorization": f"Bearer {contract_api_key}"})
    case.call_and_validate(checks=CHECKS, additional_checks=(no_traceback,), timeout=60)


def test_the_document_lists_exactly_the_currencies_the_code_accepts() -> None:
    document = yaml.safe_load(OPENAPI.read_text())
    currency = document["components"]["schemas"]["PaymentRequest"]["properties"]["currency"]
    assert sorted(currency["enum"]) == sorted(MINOR_UNIT_EXPONENT)
