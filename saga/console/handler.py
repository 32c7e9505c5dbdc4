"""The operations console's Lambda handler: API Gateway proxy events for /console/* in, HTML pages, a stylesheet and
JSON (/console/api/...) out.

Locally the local server hands it every /console request (make_console_handler, over the local services); on AWS the
API routes /console to its own function behind the console's authorizer (infra/console.py). Either way the handler
reads the session cookie and checks the session itself: the authorizer's verdict is not the only lock.

Who may do what: without a session only the login form and the static files; a viewer sees everything; an operator
also replays. Every POST a browser sends (login, logout, replay) must come from this site (Origin or Referer) and,
once logged in, carry the session's CSRF token; the JSON replay takes it as the X-CSRF-Token header.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core import observability
from core import telemetry_names as names
from core.aws import LambdaHandler
from core.settings import Settings, SettingsError, settings
from saga.bootstrap import Services
from saga.console import pages
from saga.console.api import api_error, route_api
from saga.console.context import Call
from saga.console.routes import csrf_ok, route_page
from saga.console.timeline import TimelineSource, timeline_source
from saga.console.web import COOKIE, Answer, Request, html_answer, read_request, redirect, session_cookie
from saga.handler import ProcessServices
from store.operators import Session, authenticate, close_session, find_session, open_session

__all__ = ["STATIC_FILES", "Console", "handler", "make_console_handler"]

logger = observability.logger(names.SERVICE_CONSOLE)
STATIC_DIR = Path(__file__).parent / "static"
# The files served under /console/static/, by name: nothing else on the disk can be asked for.
STATIC_FILES: dict[str, str] = {"console.css": "text/css; charset=utf-8"}
MAX_CREDENTIAL = 1_024


class Console:
    """The console over services `services()` gives (made once, where they are cached)."""

    def __init__(self, services: Callable[[], Services], config: Callable[[], Settings],
                 timelines: Callable[[Services], TimelineSource] = timeline_source) -> None:
        self._services = services
        self._config = config
        self._timelines = timelines
        self._source: TimelineSource | None = None
        self._lock = threading.Lock()

    def _timeline_source(self) -> TimelineSource:
        with self._lock:
            if self._source is None:
                self._source = self._timelines(self._services())
            return self._source

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = read_request(event)
        with observability.invocation(f"{request.method} /console", context, service=names.SERVICE_CONSOLE) as call:
            secure = True
            try:
                secure = not self._config().console_insecure_cookies
                answer = self._answer(request, secure=secure)
            except (SQLAlchemyError, SettingsError) as error:
                logger.error("console backend unavailable", extra={"error": type(error).__name__})
                answer = self._failure(request, 503, "ServiceUnavailable", "the database or the configuration is "
                                       "unavailable; try again shortly")
            except Exception:
                logger.exception("unexpected error")  # the trace goes to the log, never to the page
                answer = self._failure(request, 500, "InternalError", "an unexpected error occurred; it was logged")
            logger.info("answered", extra={"method": request.method, "path": request.path, "status": answer.status,
                                           "latency_ms": round(call.elapsed_ms(), 1)})
            return answer.to_proxy(on_aws=secure, base=request.base)

    @staticmethod
    def _failure(request: Request, status: int, kind: str, message: str) -> Answer:
        if request.path.startswith("/console/api/"):
            return api_error(status, kind, message)
        return html_answer(pages.error_page("Unavailable" if status == 503 else "Error", message, None), status)

    def _answer(self, request: Request, *, secure: bool) -> Answer:
        path = request.path.rstrip("/") or "/"
        if path == "/console/static" or path.startswith("/console/static/"):
            return self._static(request, path.removeprefix("/console/static").lstrip("/"))
        if path == "/console/login":
            return self._login(request, secure=secure)
        if not (path == "/console" or path.startswith("/console/")):
            return html_answer(pages.error_page("Not found", f"no page {request.path}", None), 404)
        session = self._session(request)
        is_api = path.startswith("/console/api/") or path == "/console/api"
        if session is None:
            if is_api:
                return api_error(401, "Unauthorized", "log in at /console/login; send the paysaga_console cookie")
            target = "/console/login?expired=1" if request.cookie(COOKIE) else "/console/login"
            answer = redirect(target)
            if request.cookie(COOKIE):  # a session that ended: forget its cookie
                answer.cookies.append(session_cookie("", secure=secure, max_age_s=0))
            return answer
        call = Call(request=request, session=session, services=self._services, timelines=self._timeline_source,
                    now=datetime.now(UTC))
        if path == "/console/logout":
            return self._logout(call, secure=secure)
        if is_api:
            return route_api(call, path.removeprefix("/console/api").lstrip("/"))
        return route_page(call, path.removeprefix("/console"))

    def _session(self, request: Request) -> Session | None:
        token = request.cookie(COOKIE)
        if not token or len(token) > 256:
            return None
        with self._services().engine.begin() as conn:  # find_session refreshes the idle expiry
            session = find_session(conn, token=token, now=datetime.now(UTC))
        claimed = request.authorizer.get("operator")
        if session is not None and claimed is not None and claimed != session.operator.username:
            return None  # the authorizer let in someone else than the cookie says: trust neither
        return session

    @staticmethod
    def _static(request: Request, name: str) -> Answer:
        kind = STATIC_FILES.get(name)
        if request.method not in ("GET", "HEAD") or kind is None:
            return Answer(404, "not found", "text/plain; charset=utf-8")
        answer = Answer(200, (STATIC_DIR / name).read_text(encoding="utf-8"), kind)
        answer.headers["Cache-Control"] = "public, max-age=300"  # the one answer that may be cached: no data in it
        return answer

    def _login(self, request: Request, *, secure: bool) -> Answer:
        if request.method == "GET":
            message = "your session has ended; log in again" if request.param("expired") else None
            if self._session(request) is not None:
                return redirect("/console")
            return html_answer(pages.login_page(message=message))
        if request.method != "POST":
            return html_answer(pages.error_page("Not allowed", "GET or POST the login form", None), 405)
        form = request.form()
        username = form.get("username", "").strip()[:MAX_CREDENTIAL]
        password = form.get("password", "")[:MAX_CREDENTIAL]
        if not request.same_origin():  # login CSRF: nobody else's page logs a browser in as someone
            return html_answer(pages.login_page(message="the login form must be sent from this site"), 403)
        if not username or not password:
            return html_answer(pages.login_page(message="give a username and a password", username=username), 400)
        engine = self._services().engine
        with engine.connect() as conn:
            operator = authenticate(conn, username=username, password=password)
        if operator is None:
            logger.warning("console login refused", extra={"username": username[:64]})
            return html_answer(pages.login_page(message="wrong username or password", username=username), 401)
        with engine.begin() as conn:
            token, _ = open_session(conn, operator=operator, now=datetime.now(UTC))
        logger.info("console login", extra={"operator": operator.username, "role": operator.role})
        answer = redirect("/console")
        answer.cookies.append(session_cookie(token, secure=secure))
        return answer

    def _logout(self, call: Call, *, secure: bool) -> Answer:
        if call.request.method != "POST":
            return html_answer(pages.error_page("Not allowed", "log out with the button (POST)", call.session), 405)
        if not csrf_ok(call, call.request.form()):
            return html_answer(pages.error_page("Forbidden", "the form is stale or came from another site",
                                                call.session), 403)
        token = call.request.cookie(COOKIE)
        assert token is not None, "a session was found by its cookie"
        with self._services().engine.begin() as conn:
            close_session(conn, token=token)
        answer = redirect("/console/login")
        answer.cookies.append(session_cookie("", secure=secure, max_age_s=0))
        return answer


def make_console_handler(services: Services, config: Settings | None = None,
                         timelines: Callable[[Services], TimelineSource] = timeline_source) -> LambdaHandler:
    """The console over these services (off AWS: the local server's, the ones its start handler uses)."""
    chosen = config or services.settings
    return Console(lambda: services, lambda: chosen, timelines)


_console = Console(ProcessServices(), settings)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _console(event, context)
