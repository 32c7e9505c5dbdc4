"""Adyen standard webhooks (NotificationRequest), as the local Adyen server sends them and as tests forge them.

A NotificationRequest carries ``notificationItems``: a list of ``{"NotificationRequestItem": item}``. Adyen signs each
item, not the request: ``additionalData.hmacSignature`` is the base64 HMAC-SHA256 (hex key) of
``pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success``, computed
here with the SDK's own ``Adyen.util.generate_notification_sig`` so that both ends agree by construction.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from Adyen.util import generate_notification_sig

JsonDict = dict[str, Any]


def event_date(at_ms: int) -> str:
    """An ``eventDate`` (ISO 8601 with offset, millisecond precision so that events of one second keep their order)."""
    return datetime.fromtimestamp(at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def notification_item(
    *,
    event_code: str,
    psp_reference: str,
    merchant_reference: str,
    merchant_account: str,
    amount_minor: int,
    currency: str,
    success: bool,
    at_ms: int,
    original_reference: str | None = None,
    reason: str | None = None,
    payment_method: str | None = "visa",
) -> JsonDict:
    """One NotificationRequestItem (unsigned). ``original_reference`` is the payment's pspReference on a
    modification event (capture, cancel, refund, dispute); an AUTHORISATION has none."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int in minor units")
    item: JsonDict = {
        "amount": {"value": amount_minor, "currency": currency},
        "eventCode": event_code,
        "eventDate": event_date(at_ms),
        "merchantAccountCode": merchant_account,
        "merchantReference": merchant_reference,
        "pspReference": psp_reference,
        "success": "true" if success else "false",
    }
    if original_reference is not None:
        item["originalReference"] = original_reference
    if reason is not None:
        item["reason"] = reason
    if payment_method is not None:
        item["paymentMethod"] = payment_method
    return item


def sign_item(item: JsonDict, hmac_key: str) -> JsonDict:
    """A copy of ``item`` with ``additionalData.hmacSignature`` set (any other additionalData kept)."""
    signed = copy.deepcopy(item)
    unsigned = {name: value for name, value in signed.items() if name != "additionalData"}
    signature = generate_notification_sig(unsigned, hmac_key).decode("ascii")
    signed["additionalData"] = {**signed.get("additionalData", {}), "hmacSignature": signature}
    return signed


def signed_notification(item: JsonDict, hmac_key: str) -> JsonDict:
    """A whole NotificationRequest (test environment) holding ``item``, signed with ``hmac_key`` (hex)."""
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": sign_item(item, hmac_key)}]}


def unsigned_notification(item: JsonDict) -> JsonDict:
    """A NotificationRequest holding ``item`` as is (for a server run without an HMAC key, and forged requests)."""
    return {"live": "false", "notificationItems": [{"NotificationRequestItem": copy.deepcopy(item)}]}
