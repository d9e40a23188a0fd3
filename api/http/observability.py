"""What the API tells operators about each request: a log line naming the run it touched,
Prometheus figures per route, and (when tracing is configured) the span that a started
workflow and its activities hang under."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.runtime import Runtime

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

logger = logging.getLogger("loopline.api")


class RequestObserver:
    """Pure ASGI middleware, so event streams pass through unbuffered."""

    def __init__(self, app: ASGIApp, tracing: bool) -> None:
        self._app = app
        self._tracer = _tracer() if tracing else None
        meter = Runtime.default().metric_meter
        self._requests = meter.create_counter("loopline_api_requests", "API requests answered")
        self._seconds = meter.create_histogram_float(
            "loopline_api_request_seconds", "Time to answer (streams: until they end)", "s"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        with self._span(scope):
            try:
                await self._app(scope, receive, observed_send)
            finally:
                self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        attributes = {
            "method": scope["method"],
            "route": getattr(route, "path", "unmatched"),
            "status": str(status),
        }
        self._requests.add(1, attributes)
        self._seconds.record(seconds, attributes)
        facts: dict[str, Any] = {"status": status, "duration_ms": round(seconds * 1000, 1)}
        for name in ("run_id", "batch_id"):
            if name in scope.get("path_params", {}):
                facts[name] = scope["path_params"][name]
        logger.info("%s %s %d", scope["method"], scope["path"], status, extra=facts)

    @contextlib.contextmanager
    def _span(self, scope: Scope) -> Iterator[None]:
        if self._tracer is None:
            yield
            return
        from opentelemetry.trace import SpanKind

        method = scope["method"]
        with self._tracer.start_as_current_span(
            f"{method} {scope['path']}", kind=SpanKind.SERVER
        ) as span:
            yield
            if (route := scope.get("route")) is not None:
                span.update_name(f"{method} {route.path}")


def _tracer() -> Tracer:
    """The API's tracer; OpenTelemetry is imported only where tracing is configured."""
    from opentelemetry import trace

    return trace.get_tracer("loopline.api")
