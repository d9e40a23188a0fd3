"""The viewer's pages: runs, a run, batches, a batch, two runs compared, and sign-in.

Each route reads through the services with the viewer's caller, so a page shows exactly
what the API would answer that caller, and writes go through the same service calls as
the API's own routes. Pages are rendered on the server; a little JavaScript keeps live
pages current (static/viewer.js).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from api.http.deps import MAX_POSITION, Offset, Svc
from api.http.errors import status_of
from api.http.ui.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    FormViewer,
    PageViewer,
    form_fields,
    from_this_site,
)
from api.http.ui.filters import install_filters
from api.http.ui.views import histogram, run_page, step_pairs
from api.services.batches import BatchListing
from api.services.errors import Forbidden, Invalid, Unauthenticated
from api.services.runs import RunListing
from api.services.viewer import SESSION_SECONDS
from loopline.models import (
    CancelRequest,
    CloseRequest,
    ContinueRequest,
    EventType,
    RunStatus,
    UserMessageRequest,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
install_filters(templates.env)
router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
# How much of a value a refusal repeats.
SHOWN_CHARS = 100
ModelT = TypeVar("ModelT", bound=BaseModel)
# A viewer page is never framed by another site (clickjacking), nor is its address sent on.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "frame-ancestors 'none'; script-src 'self'; object-src 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, context, status_code=status, headers=PAGE_HEADERS
    )


def form_model(model: type[ModelT], **fields: Any) -> ModelT:
    """The request a form stands for; a field it lacks or gets wrong is a 422 naming it."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "form"
        raise Invalid(["form", where], f"{where}: {problem['msg']}") from error


def back_to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


@router.get("")
async def home() -> RedirectResponse:
    return back_to("/ui/runs")


# --- signing in ----------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, next: str = "/ui/runs") -> HTMLResponse:
    return page(request, "login.html", next=_local(next), viewer=None)


@router.post("/login")
async def login(request: Request, svc: Svc) -> Response:
    fields = await form_fields(request)
    target = _local(fields.get("next", "/ui/runs"))
    try:
        session = await svc.viewer.sign_in(
            fields.get("api_key", ""), from_this_site=from_this_site(request)
        )
    except (Unauthenticated, Forbidden) as refused:
        shown = {"next": target, "viewer": None, "message": refused.message}
        return page(request, "login.html", status_of(refused), **shown)
    response = back_to(target)
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=SESSION_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=_over_https(request),
    )
    return response


@router.post("/logout")
async def logout(request: Request, svc: Svc) -> Response:
    """Forget the browser's session, also one that has ended; its form must be the page's."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        svc.viewer.check_form(cookie, (await form_fields(request)).get(CSRF_FIELD))
    response = back_to("/ui/login")
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


def _over_https(request: Request) -> bool:
    """Behind a proxy that ends TLS the app sees http; the proxy says what the browser used."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    return request.url.scheme == "https" or forwarded == "https"


def _local(target: str) -> str:
    """Only a path of the viewer: a sign-in never sends the browser elsewhere."""
    return target if target.startswith("/ui/") and not target.startswith("/ui//") else "/ui/runs"


# --- runs ----------------------------------------------------------------------------------


@router.get("/runs")
async def runs(request: Request, svc: Svc, viewer: PageViewer) -> Response:
    query = {name: value.strip() for name, value in request.query_params.items() if value.strip()}
    search = query.pop("q", None)
    if search is not None:
        found = await svc.runs.statuses(viewer.caller, [search])
        if search in found:
            return back_to(f"/ui/runs/{search}")
        query["run_id_prefix"] = search
    offset = _parsed(query.pop("offset", "0"), "offset", int)
    listing = _listing(query)
    listed = await svc.runs.list_runs(viewer.caller, listing, limit=PAGE_SIZE, offset=offset)
    return page(
        request,
        "runs.html",
        viewer=viewer,
        listed=listed,
        query=query,
        search=search or "",
        statuses=list(RunStatus),
        previous=_page_link(query, search, offset - PAGE_SIZE) if offset > 0 else None,
        next=_page_link(query, search, offset + PAGE_SIZE)
        if offset + PAGE_SIZE < listed.total
        else None,
    )


def _listing(query: dict[str, str]) -> RunListing:
    return RunListing(
        environment=query.get("environment"),
        scenario=query.get("scenario"),
        status=_optional(query, "status", RunStatus),
        batch_id=query.get("batch_id"),
        model=query.get("model"),
        taskset_id=query.get("taskset_id"),
        tag=query.get("tag"),
        min_reward=_optional(query, "min_reward", float),
        max_reward=_optional(query, "max_reward", float),
        created_after=_optional(query, "created_after", datetime.fromisoformat),
        created_before=_optional(query, "created_before", datetime.fromisoformat),
        run_id_prefix=query.get("run_id_prefix"),
    )


def _optional(query: dict[str, str], name: str, parse: Any) -> Any:
    return _parsed(query[name], name, parse) if name in query else None


def _parsed(text: str, name: str, parse: Any) -> Any:
    try:
        value = parse(text)
    except ValueError as error:
        shown = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
        raise Invalid(["query", name], f"{name} {shown!r} is not a valid value") from error
    if isinstance(value, int) and not 0 <= value <= MAX_POSITION:
        raise Invalid(["query", name], f"{name} must be a whole number from 0 to {MAX_POSITION}")
    return value


def _page_link(query: dict[str, str], search: str | None, offset: int) -> str:
    params = {**query, **({"q": search} if search else {}), "offset": str(offset)}
    return f"/ui/runs?{urlencode(params)}"


@router.get("/runs/{run_id}")
async def run(request: Request, run_id: str, svc: Svc, viewer: PageViewer) -> HTMLResponse:
    caller = viewer.caller
    view = await svc.runs.get_run(caller, run_id, include_trajectory=True, include_state=True)
    shown = run_page(view, view.trajectory or [])
    live = not view.status.is_final
    token = None
    if live:
        # The token goes into the page's event-stream URL: it grants the events alone.
        token = (await svc.access.connection_token(caller, run_id, events_only=True)).token
    artifacts = await svc.artifacts.links(caller, run_id, str(request.base_url))
    return page(
        request,
        "run.html",
        viewer=viewer,
        page=shown,
        run=view,
        live=live,
        events_url=_events_url(run_id, token, shown.last_seq) if token else None,
        artifacts=artifacts,
    )


def _events_url(run_id: str, token: str, after: int) -> str:
    return f"/v1/runs/{run_id}/events?{urlencode({'token': token, 'after': after})}"


@router.post("/runs/{run_id}/message")
async def send_message(request: Request, run_id: str, svc: Svc, viewer: FormViewer) -> Response:
    fields = await form_fields(request)
    message = form_model(
        UserMessageRequest,
        content=fields.get("content", ""),
        message_id=fields.get("message_id") or None,
    )
    await svc.commands.send_message(viewer.caller, run_id, message)
    return back_to(f"/ui/runs/{run_id}")


@router.post("/runs/{run_id}/continue")
async def continue_run(request: Request, run_id: str, svc: Svc, viewer: FormViewer) -> Response:
    fields = await form_fields(request)
    results = [
        {
            "call_id": name.removeprefix("result:"),
            "content": value,
            "is_error": fields.get(f"error:{name.removeprefix('result:')}") == "on",
        }
        for name, value in fields.items()
        if name.startswith("result:")
    ]
    answered = form_model(ContinueRequest, tool_results=results)
    await svc.commands.continue_run(viewer.caller, run_id, answered)
    return back_to(f"/ui/runs/{run_id}")


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: str, svc: Svc, viewer: FormViewer) -> Response:
    cancel_request = CancelRequest(reason="cancelled in the viewer")
    await svc.commands.cancel(viewer.caller, run_id, cancel_request)
    return back_to(f"/ui/runs/{run_id}")


@router.post("/runs/{run_id}/close")
async def close(run_id: str, svc: Svc, viewer: FormViewer) -> Response:
    await svc.commands.close(viewer.caller, run_id, CloseRequest(reason="closed in the viewer"))
    return back_to(f"/ui/runs/{run_id}")


@router.get("/compare")
async def compare(request: Request, svc: Svc, viewer: PageViewer, a: str, b: str) -> HTMLResponse:
    shown = [
        run_page(view, view.trajectory or [])
        for view in [
            await svc.runs.get_run(viewer.caller, run_id, include_trajectory=True)
            for run_id in (a.strip(), b.strip())
        ]
    ]
    return page(
        request,
        "compare.html",
        viewer=viewer,
        left=shown[0],
        right=shown[1],
        pairs=step_pairs(*shown),
    )


# --- batches -------------------------------------------------------------------------------


@router.get("/batches")
async def batches(
    request: Request, svc: Svc, viewer: PageViewer, offset: Offset = 0
) -> HTMLResponse:
    listed = await svc.batches.list_batches(
        viewer.caller,
        BatchListing(),
        taskset=None,
        include_runs=False,
        limit=PAGE_SIZE,
        offset=offset,
    )
    return page(
        request,
        "batches.html",
        viewer=viewer,
        listed=listed,
        previous=f"/ui/batches?offset={max(0, offset - PAGE_SIZE)}" if offset > 0 else None,
        next=f"/ui/batches?offset={offset + PAGE_SIZE}"
        if offset + PAGE_SIZE < listed.total
        else None,
    )


@router.get("/batches/{batch_id}")
async def batch(request: Request, batch_id: str, svc: Svc, viewer: PageViewer) -> HTMLResponse:
    view = await svc.batches.get_batch(viewer.caller, batch_id, include_runs=False)
    runs = await svc.batches.all_runs(viewer.caller, batch_id)
    rewards = [run.reward for run in runs if run.reward is not None]
    return page(
        request,
        "batch.html",
        viewer=viewer,
        batch=view,
        runs=runs,
        bins=histogram(rewards),
        live=not view.status.is_final,
    )


templates.env.globals.update(
    csrf_field=CSRF_FIELD, event_types=",".join(event.value for event in EventType)
)
