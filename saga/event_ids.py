"""ULIDs label audit events (DESIGN 5): sortable by creation time, unique without coordination."""

from __future__ import annotations

from ulid import ULID


def new_event_id() -> str:
    """A new ULID as its 26-character Crockford base32 string."""
    return str(ULID())
