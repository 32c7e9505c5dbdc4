"""What a console route gets: the request, the operator's session, the services and the timeline source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from saga.bootstrap import Services
from saga.console.timeline import TimelineSource
from saga.console.web import Request
from store.operators import Session

__all__ = ["Call"]


@dataclass(frozen=True, slots=True)
class Call:
    request: Request
    session: Session
    services: Callable[[], Services]
    timelines: Callable[[], TimelineSource]
    now: datetime

    @property
    def can_replay(self) -> bool:
        return self.session.operator.role == "operator"
