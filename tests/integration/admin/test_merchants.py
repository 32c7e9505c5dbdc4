"""Merchant administration on AWS (admin.merchants.handler, invoked directly): create, list, rotate-key, through the
code the CLI uses, connected as the functions' user with its password from Secrets Manager; bad input is named; the
API key never reaches the logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url

from admin import merchants
from admin.migrate import prepare_roles
from admin.settings import load_admin_settings
from core import db
from core.aws import client
from core.database_roles import FUNCTIONS_USER
from core.settings import Settings
from saga.merchant_keys import authenticate


@pytest.fixture
def admin_env(database_url: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The function's environment as the CDK stack gives it: no credentials in DATABASE_URL, no Redis."""
    prepare_roles(database_url, owner_password="owner-pass", functions_password="functions-pass")
    settings = Settings(DATABASE_URL=database_url, REDIS_URL="redis://127.0.0.1:1/0")  # type: ignore[call-arg]
    arn = client("secretsmanager", settings).create_secret(Name="paysaga/functions", SecretString=json.dumps(
        {"username": FUNCTIONS_USER, "password": "functions-pass"}))["ARN"]
    monkeypatch.setenv("DATABASE_URL", make_url(database_url).set(username=None).render_as_string())
    monkeypatch.setenv("DATABASE_SECRET_ARN", arn)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PAYMENT_GATEWAY", "adyen")
    return database_url


def _authenticates(database_url: str, api_key: str) -> str | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            merchant = authenticate(conn, api_key)
        return None if merchant is None else merchant.id
    finally:
        engine.dispose()


def test_create_list_and_rotate_as_the_functions_user(admin_env: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    created = merchants.handler({"action": "create", "name": "Shop on AWS", "currencies": ["EUR", "GBP"],
                                 "gateway": "stripe", "max_amount_minor": 50_000}, None)
    merchant_id, api_key = created["merchant_id"], created["api_key"]
    assert set(created) == {"merchant_id", "api_key"} and api_key.startswith("psk_")
    assert _authenticates(admin_env, api_key) == merchant_id

    defaulted = merchants.handler({"action": "create", "name": "Defaults"}, None)  # EUR, PAYMENT_GATEWAY

    listed = merchants.handler({"action": "list"}, None)["merchants"]
    shown = {m["merchant_id"]: m for m in listed}
    assert shown[merchant_id]["name"] == "Shop on AWS" and shown[merchant_id]["gateway"] == "stripe"
    assert shown[merchant_id]["currencies"] == ["EUR", "GBP"] and shown[merchant_id]["max_amount_minor"] == 50_000
    assert shown[merchant_id]["api_key_prefix"] == api_key[:12]
    assert shown[defaulted["merchant_id"]]["gateway"] == "adyen"
    assert shown[defaulted["merchant_id"]]["currencies"] == ["EUR"]
    assert api_key not in json.dumps(listed)

    rotated = merchants.handler({"action": "rotate-key", "merchant_id": merchant_id}, None)
    assert rotated["merchant_id"] == merchant_id and rotated["api_key"] != api_key
    assert _authenticates(admin_env, rotated["api_key"]) == merchant_id
    assert _authenticates(admin_env, api_key) is None

    assert db.engine(load_admin_settings()).url.password is None  # the password came from the secret at connect
    logged = "\n".join(str(record.__dict__) for record in caplog.records)
    assert "merchant created" in logged and merchant_id in logged
    for key in (api_key, rotated["api_key"], defaulted["api_key"]):
        assert key not in logged and key[len("psk_"):] not in logged


@pytest.mark.parametrize(("event", "message"), [
    ({"action": "drop"}, "action must be one of create, list, rotate-key"),
    ({}, "action must be one of"),
    ({"action": "create"}, "name must be a non-empty string"),
    ({"action": "create", "name": "  "}, "name must be a non-empty string"),
    ({"action": "create", "name": "S", "currencies": "EUR"}, "currencies must be a list of ISO 4217 codes"),
    ({"action": "create", "name": "S", "currencies": ["EURO"]}, "currencies: EURO is not a supported ISO 4217 code"),
    ({"action": "create", "name": "S", "currencies": []}, "currencies must name at least one"),
    ({"action": "create", "name": "S", "gateway": "paypal"}, "gateway must be one of sandbox, stripe, adyen"),
    ({"action": "create", "name": "S", "max_amount_minor": "lots"}, "max_amount_minor must be an integer"),
    ({"action": "create", "name": "S", "max_amount_minor": 0}, "max_amount_minor must be between 1 and"),
    ({"action": "rotate-key"}, "merchant_id must be a non-empty string"),
    ({"action": "rotate-key", "merchant_id": "mer_nope"}, "merchant_id: no merchant mer_nope"),
])
def test_bad_input_is_named(admin_env: str, event: dict[str, Any], message: str) -> None:
    with pytest.raises(merchants.BadRequest, match=message):
        merchants.handler(event, None)
