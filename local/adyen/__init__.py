"""A local Adyen Checkout API v71 server (real HTTP, SQLite state, validated against Adyen's published specs) for
tests and the local stack: what the Adyen adapter (steps/gateway/adyen.py) talks to off Adyen.

- ``local.adyen.server``: the server (``python -m local.adyen.server``) and ``create_app``;
- ``local.adyen.notifications``: ``signed_notification`` and the other webhook builders (tests forge events with them);
- ``local.adyen.spec``: the specs, read at runtime from ``../shared/oracles/adyen/`` (``CheckoutSpec``,
  ``WebhooksSpec``);
- ``local.adyen.state``: the SQLite state; ``local.adyen.tokens``: the card tokens.
"""
