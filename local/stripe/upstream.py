"""localstripe, started through its API (``localstripe.server.app``, an aiohttp application) inside the caller's event
loop, on loopback, with its state where we say.

Why not ``python -m localstripe --port Q``: that binds every interface (``::``) rather than loopback, and its store
pickles itself to ``/tmp/localstripe.pickle`` (one file for every localstripe on the machine, so parallel test sessions
would load each other's objects) on every object written. Here the store is kept in memory, or pickled to a file of
ours once per write request (localstripe's own middleware does that after each POST/DELETE).

localstripe keeps its objects in one module-level store, so one process holds one localstripe.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from aiohttp import web
from localstripe import resources
from localstripe.server import app as localstripe_app

LOOPBACK = "127.0.0.1"


class _Store(resources.Store):  # type: ignore[misc]  # localstripe is untyped
    """localstripe's store, saved to ``path`` (when set) instead of /tmp/localstripe.pickle, and only when
    localstripe's middleware asks (once per write request), not on every object it creates."""

    path: Path | None = None

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)

    def try_load_from_disk(self) -> None:
        if self.path is None or not self.path.exists():
            return
        with self.path.open("rb") as handle:
            saved = pickle.load(handle)  # noqa: S301  # our own state file, written below
        self.clear()
        dict.update(self, saved)

    def dump_to_disk(self) -> None:
        if self.path is None:
            return
        partial = self.path.with_suffix(".partial")
        with partial.open("wb") as handle:
            pickle.dump(dict(self), handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(partial, self.path)  # atomic: a crash leaves the previous state whole


def keep_state(path: Path | None) -> None:
    """Where localstripe's objects live: pickled at ``path`` (loaded now if it exists), or in memory if None."""
    store = resources.store
    store.__class__ = _Store  # the store object is imported by name all over localstripe: change how it saves
    store.path = path
    store.clear()
    store.try_load_from_disk()


async def start_localstripe(host: str = LOOPBACK, port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve localstripe on ``host:port`` (0: a free port) in the running loop; its runner and base URL."""
    runner = web.AppRunner(localstripe_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, f"http://{host}:{bound}"
