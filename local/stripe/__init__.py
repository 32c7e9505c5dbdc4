"""A local Stripe server for tests and the local stack: localstripe (PyPI) behind a front that adds what the paysaga
Stripe adapter (steps.gateway.stripe) relies on and localstripe lacks: idempotency keys, PaymentIntent search,
decline codes, fault tokens and a call log.

- `local.stripe.server`: ``python -m local.stripe.server --host 127.0.0.1 --port P`` starts both in one process;
- `local.stripe.front`: the front alone, before a localstripe at ``--upstream``; its docstring has the token table;
- `local.stripe.upstream`: localstripe started through its API, on loopback, with its state where we say;
- `local.stripe.balance`: the balance transactions (filters, fees, expanded sources) and payouts the front serves;
- `local.stripe.signing`: ``sign(payload, secret, timestamp_s)``, a ``Stripe-Signature`` header value for tests;
- `local.testing.stripe_server.running_stripe_server()`: the server on free ports, for a test session.
"""
