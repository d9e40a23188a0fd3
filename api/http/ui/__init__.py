"""The viewer: runs, sessions and batches in the browser, served by the API under /ui.

Server-rendered pages (Jinja2) with a little JavaScript, so `pip install` is all it needs.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from api.http.deps import header_credential
from api.http.ui.auth import SESSION_COOKIE, SignInNeeded
from api.http.ui.pages import HERE, page, router
from api.services.errors import ServiceError, Unauthenticated

PREFIX = "/ui"
HEADINGS = {
    401: "Sign in needed",
    405: "Not taken here",
    403: "Not allowed",
    404: "Not found",
    409: "Not now",
    422: "Not understood",
    503: "Temporal is not reachable",
}


def install_viewer(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="viewer-static")


def error_page(request: Request, error: Exception, status: int) -> Response | None:
    """The viewer's answer to a refusal: sign-in for a browser without a valid session,
    else a page that says what went wrong; None outside the viewer."""
    path = request.url.path
    if path != PREFIX and not path.startswith(f"{PREFIX}/"):
        return None
    message = _text_of(error)
    came_by_cookie = SESSION_COOKIE in request.cookies and header_credential(request) is None
    signed_out = isinstance(error, SignInNeeded) or (
        isinstance(error, Unauthenticated) and came_by_cookie
    )
    if signed_out and request.method == "GET":
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': _asked(request)})}", 303)
    heading = HEADINGS.get(status, "Refused")
    shown = page(
        request,
        "error.html",
        status,
        viewer=None,
        status_code=status,
        heading=heading,
        message=message,
    )
    # What the JSON answer would say in headers (Allow of a 405, say) the page says too.
    if isinstance(error, HTTPException) and error.headers:
        shown.headers.update(error.headers)
    return shown


def _asked(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


def _text_of(error: Exception) -> str:
    if isinstance(error, ServiceError):
        return error.message
    if isinstance(error, HTTPException):
        return str(error.detail)
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    return "; ".join(
        f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', '')}"
        for item in errors()
    )
