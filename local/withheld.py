"""A local gateway server's "timeout after commit" fault: the request took effect, and its answer is held until the
client gives up (its read timeout), so the client meets exactly what a lost answer looks like."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.requests import Request

__all__ = ["DISCONNECT_POLL_S", "hold_until_client_leaves"]

_log = logging.getLogger(__name__)
DISCONNECT_POLL_S = 0.01


async def hold_until_client_leaves(request: Request, max_ms: int) -> None:
    """Return once the client disconnected, or after `max_ms` (logged: the caller then answers a 504)."""
    deadline = time.monotonic() + max_ms / 1000
    while not await request.is_disconnected():
        if time.monotonic() >= deadline:
            _log.warning("client still waiting after %d ms on %s; answering 504", max_ms, request.url.path)
            return
        await asyncio.sleep(DISCONNECT_POLL_S)
