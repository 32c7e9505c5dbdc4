"""The local Stripe server: localstripe and the front (local/stripe/front.py) in one process, one event loop.

Run: ``python -m local.stripe.server --host 127.0.0.1 --port P [--state-dir DIR] [--webhook-url URL]``

- the front listens on ``--host:--port`` (the Stripe API base URL for the adapter: ``STRIPE_API_BASE``);
  localstripe listens on a free loopback port of its own (``--upstream-port`` to choose it);
- ``--state-dir DIR``: the front's SQLite (``front.sqlite3``) and localstripe's objects (``localstripe.pickle``) live
  there and survive a restart (a fired fault stays fired, a saved answer is still replayed, the PaymentIntents are
  still there). Without it, both are kept in memory for the life of the process;
- ``--webhook-url URL``: signed Stripe events are POSTed there (local/stripe/webhooks.py: localstripe's, completed,
  and the ones it lacks), signed with the secret in the environment variable ``STRIPE_WEBHOOK_SECRET``
  (``--webhook-secret-env`` names another; never on the command line); the same as ``POST /_config/webhooks/{id}``
  on the front, and registered again at every start (localstripe does not keep it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from local.stripe.front import FrontConfig, create_app
from local.stripe.upstream import LOOPBACK, keep_state, start_localstripe
from local.stripe.webhooks import Endpoint

WEBHOOK_ID = "paysaga"


@dataclass(frozen=True)
class ServerOptions:
    host: str
    port: int
    state_dir: Path | None = None
    upstream_port: int = 0
    webhook_url: str | None = None
    webhook_secret: str | None = None
    front: FrontConfig = field(default_factory=FrontConfig)


async def serve(options: ServerOptions) -> None:
    if options.state_dir is not None:
        options.state_dir.mkdir(parents=True, exist_ok=True)
    keep_state(None if options.state_dir is None else options.state_dir / "localstripe.pickle")
    runner, upstream_url = await start_localstripe(LOOPBACK, options.upstream_port)
    try:
        webhooks: dict[str, Endpoint] = {}
        if options.webhook_url is not None:
            if not options.webhook_secret:
                raise SystemExit("--webhook-url needs a webhook secret in the environment")
            webhooks[WEBHOOK_ID] = Endpoint(options.webhook_url, options.webhook_secret)
        db = ":memory:" if options.state_dir is None else options.state_dir / "front.sqlite3"
        self_host = LOOPBACK if options.host in ("0.0.0.0", "::", "") else options.host  # noqa: S104  # a comparison
        app = create_app(
            upstream_url, db, options.front, webhooks=webhooks, self_url=f"http://{self_host}:{options.port}"
        )
        config = uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        await uvicorn.Server(config).serve()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The paysaga local Stripe server (localstripe behind a front).")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, default=None, help="keep the state here (default: in memory)")
    parser.add_argument("--upstream-port", type=int, default=0, help="localstripe's port (default: a free one)")
    parser.add_argument("--webhook-url", default=None, help="where localstripe POSTs signed events")
    parser.add_argument("--webhook-secret-env", default="STRIPE_WEBHOOK_SECRET", help="variable holding the secret")
    parser.add_argument("--slow-ms", type=int, default=FrontConfig.slow_ms)
    parser.add_argument("--withhold-max-ms", type=int, default=FrontConfig.withhold_max_ms)
    args = parser.parse_args(argv)
    options = ServerOptions(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        upstream_port=args.upstream_port,
        webhook_url=args.webhook_url,
        webhook_secret=os.environ.get(args.webhook_secret_env),
        front=FrontConfig(slow_ms=args.slow_ms, withhold_max_ms=args.withhold_max_ms),
    )
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
