"""Merchant administration on AWS: a Lambda function invoked directly (`aws lambda invoke`), so only principals
allowed lambda:InvokeFunction on it can call it. The same code as `paysaga merchants` (saga.merchant_keys,
store.merchants).

Events:
- {"action": "create", "name": "My Shop", "currencies": ["EUR"], "gateway": "stripe", "max_amount_minor": 1000000,
   "webhook_url": null} -> {"merchant_id": ..., "api_key": ...}: the key is shown this once (stored as its sha256);
   currencies defaults to ["EUR"], gateway to PAYMENT_GATEWAY, max_amount_minor to 1,000,000.
- {"action": "list"} -> {"merchants": [...]}: ids, names, key prefixes, never keys.
- {"action": "rotate-key", "merchant_id": "mer_..."} -> {"merchant_id": ..., "api_key": ...}: the old key stops
   working at once.

A bad event raises BadRequest naming the field (`aws lambda invoke` shows it as the errorMessage). The API key is
never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger

from admin.settings import AdminSettings, load_admin_settings
from core.db import engine
from saga.merchant_keys import create_merchant, rotate
from store.merchants import Merchant, list_merchants

logger = Logger(service="paysaga-merchants")

ACTIONS: Final = ("create", "list", "rotate-key")
DEFAULT_CURRENCIES: Final = ("EUR",)
DEFAULT_MAX_AMOUNT_MINOR: Final[int] = 1_000_000  # the CLI's default


class BadRequest(ValueError):
    """The event is malformed; the message names the field."""


def _text(event: Mapping[str, Any], field: str, *, required: bool = True) -> str | None:
    value = event.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{field} must be a non-empty string")
    return value


def _create(settings: AdminSettings, event: Mapping[str, Any]) -> dict[str, Any]:
    name = _text(event, "name")
    gateway = _text(event, "gateway", required=False) or settings.gateway
    webhook_url = _text(event, "webhook_url", required=False)
    currencies = event.get("currencies", list(DEFAULT_CURRENCIES))
    if not isinstance(currencies, list) or not all(isinstance(c, str) for c in currencies):
        raise BadRequest("currencies must be a list of ISO 4217 codes")
    max_amount_minor = event.get("max_amount_minor", DEFAULT_MAX_AMOUNT_MINOR)
    if not isinstance(max_amount_minor, int) or isinstance(max_amount_minor, bool):
        raise BadRequest("max_amount_minor must be an integer (minor units)")
    assert name is not None
    try:
        with engine(settings).begin() as conn:
            merchant_id, api_key = create_merchant(conn, name=name, currencies=currencies, gateway=gateway,
                                                   max_amount_minor=max_amount_minor, webhook_url=webhook_url)
    except ValueError as error:  # create_merchant's message names the argument
        raise BadRequest(str(error)) from None
    logger.info("merchant created", extra={"merchant_id": merchant_id, "gateway": gateway})
    return {"merchant_id": merchant_id, "api_key": api_key}


def _view(merchant: Merchant) -> dict[str, Any]:
    return {"merchant_id": merchant.id, "name": merchant.name, "api_key_prefix": merchant.api_key_prefix,
            "currencies": list(merchant.currencies), "max_amount_minor": merchant.max_amount_minor,
            "gateway": merchant.gateway, "webhook_url": merchant.webhook_url,
            "created_at": merchant.created_at.isoformat(),
            "key_rotated_at": None if merchant.key_rotated_at is None else merchant.key_rotated_at.isoformat()}


def _list(settings: AdminSettings) -> dict[str, Any]:
    with engine(settings).connect() as conn:
        return {"merchants": [_view(m) for m in list_merchants(conn)]}


def _rotate(settings: AdminSettings, event: Mapping[str, Any]) -> dict[str, Any]:
    merchant_id = _text(event, "merchant_id")
    assert merchant_id is not None
    with engine(settings).begin() as conn:
        api_key = rotate(conn, merchant_id=merchant_id)
    if api_key is None:
        raise BadRequest(f"merchant_id: no merchant {merchant_id}")
    logger.info("merchant key rotated", extra={"merchant_id": merchant_id})
    return {"merchant_id": merchant_id, "api_key": api_key}


def handler(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise BadRequest("the event must be a JSON object with an action")
    action = event.get("action")
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)} (got {action!r})")
    settings = load_admin_settings()
    if action == "create":
        return _create(settings, event)
    if action == "list":
        return _list(settings)
    return _rotate(settings, event)
