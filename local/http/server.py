"""The local HTTP server: answers /health itself and hands every other request to a handler as an API Gateway proxy
event, exactly as API Gateway + Lambda do on AWS: /console and what is under it to the operations console's handler
(its own function on AWS), everything else to the start handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from core.aws import LambdaHandler
from core.settings import settings
from local.http.apigateway import from_result, new_context, to_event
from local.saga_runtime import local_services
from saga.console.handler import make_console_handler
from saga.handler import make_handler

MAX_BODY_BYTES = 1_048_576  # API Gateway refuses far larger; the handler applies the API's own, smaller limit


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None once it exceeds MAX_BODY_BYTES (read no further than that)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _is_console(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


def build_app(handler: LambdaHandler, on_shutdown: Callable[[], None] | None = None,
              console: LambdaHandler | None = None) -> Starlette:
    """`console`: the handler of /console paths (API Gateway routes them to the console's function); without one
    they go to `handler` like any other path."""

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def proxy(request: Request) -> Response:
        body = await _bounded_body(request)
        if body is None:
            # The API's own error shape (openapi.yaml Error), as the handler answers its smaller limit.
            return JSONResponse({"error": {"type": "PayloadTooLarge", "field": "body",
                                           "message": f"the body must be at most {MAX_BODY_BYTES} bytes"}},
                                status_code=413)
        event = to_event(
            method=request.method,
            path=request.url.path,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
            query=list(request.query_params.multi_items()),
            body=body,
            source_ip=request.client.host if request.client else "127.0.0.1",
        )
        if console is not None and _is_console(request.url.path):
            result = await run_in_threadpool(console, event, new_context("paysaga-console"))
        else:
            result = await run_in_threadpool(handler, event, new_context("paysaga-start"))
        status, headers, payload = from_result(result)
        response = Response(content=payload, status_code=status)
        for name, value in headers:
            response.headers.append(name, value)
        return response

    async def everything_else(scope: Scope, receive: Receive, send: Send) -> None:
        # The router's fallback rather than a "/{path:path}" route: that pattern matches no path holding a newline
        # (%0A), which then got Starlette's text/plain 404 instead of the API's own JSON answer.
        response = await proxy(Request(scope, receive))
        await response(scope, receive, send)

    app = Starlette(routes=[Route("/health", health)], on_shutdown=[on_shutdown] if on_shutdown else [])
    app.router.default = everything_else
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="paysaga local API server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    # The composition root, off AWS: the start path on the local runtime. A clean stop gives the Snowflake worker
    # slot back at once instead of letting its lease run out.
    services = local_services(settings())
    app = build_app(make_handler(services), on_shutdown=services.close, console=make_console_handler(services))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
