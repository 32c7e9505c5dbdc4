"""``Stripe-Signature`` header values, as Stripe signs webhook deliveries: for tests and for a tester who wants to post
a hand-made event to the API.

Stripe signs ``"{timestamp}.{raw body}"`` with HMAC-SHA256 under the endpoint's secret (``whsec_...``) and sends
``Stripe-Signature: t={timestamp},v1={hex digest}``; the receiver recomputes it and refuses a timestamp older than its
tolerance (the adapter: 300 s). For example, to post ``event.json`` to a local API whose STRIPE_WEBHOOK_SECRET is
``whsec_test``::

    python -c "import sys, time; from local.stripe.signing import sign; \\
        print(sign(open('event.json', 'rb').read(), 'whsec_test', int(time.time())))"
    curl -X POST http://127.0.0.1:PORT/v1/webhooks/stripe -H "Stripe-Signature: <printed value>" \\
        -H 'Content-Type: application/json' --data-binary @event.json

The body must be sent byte for byte as signed.
"""

from __future__ import annotations

import hashlib
import hmac


def sign(payload: bytes, secret: str, timestamp_s: int) -> str:
    """The ``Stripe-Signature`` header value for ``payload`` signed with ``secret`` at ``timestamp_s`` (Unix s)."""
    if not secret:
        raise ValueError("a webhook secret is required")
    signed = str(timestamp_s).encode("ascii") + b"." + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp_s},v1={digest}"
