"""Who is asking for a page of the viewer: the API key of the `Authorization` (or X-API-KEY)
header, for scripts and tests, or the browser's session cookie. What they may see and do
is for the services to say; a form of a cookie session is checked for its CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import Depends, Request

from api.http.deps import get_services, header_credential
from api.services.access import Caller
from api.services.errors import Unauthenticated
from loopline.models import Scope

SESSION_COOKIE = "loopline_session"
CSRF_FIELD = "csrf_token"


class SignInNeeded(Unauthenticated):
    """A page asked for without any credential: the browser is sent to sign in."""


@dataclass(frozen=True)
class Viewer:
    caller: Caller
    # The session's cookie when the caller came by cookie; None for a header's key.
    session: str | None = None
    csrf_token: str | None = None

    @property
    def may_write(self) -> bool:
        return self.caller.may(Scope.task_write)


async def get_viewer(request: Request) -> Viewer:
    services = get_services(request)
    credential = header_credential(request)
    if credential is not None:
        return Viewer(await services.access.authenticate(credential))
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise SignInNeeded("sign in with an API key to see this page")
    caller = await services.viewer.caller(cookie)
    return Viewer(caller, cookie, services.viewer.csrf_token(cookie))


def from_this_site(request: Request) -> bool:
    """Whether the browser says the request comes from a page of this site (or none, as
    typed in): Fetch Metadata where it sends it, else the Origin header."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in {"same-origin", "none"}
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of an url-encoded form, the last value of each name."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {name: values[-1] for name, values in parse_qs(body, keep_blank_values=True).items()}


async def get_form_viewer(request: Request) -> Viewer:
    """The viewer of a form post: a cookie session's form must carry its CSRF token."""
    viewer = await get_viewer(request)
    if viewer.session is not None:
        fields = await form_fields(request)
        get_services(request).viewer.check_form(viewer.session, fields.get(CSRF_FIELD))
    return viewer


PageViewer = Annotated[Viewer, Depends(get_viewer)]
FormViewer = Annotated[Viewer, Depends(get_form_viewer)]
