"""The viewer's pages: runs, a run, batches, a batch, two runs compared, and sign-in.

Each route reads through the services with the viewer's caller, so a page shows exactly
what the API would answer that caller, and writes go through the same service calls as
the API's own routes. Pages are rendered on the server; a little JavaScript keeps live
pages current (static/viewer.js).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from api.http.deps import MAX_POSITION, Offset, Svc
from api.http.ui.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    FormViewer,
    PageViewer,
    form_fields,
)
from api.http.ui.filters import install_filters
from api.http.ui.views import histogram, run_page, step_pairs
from api.services.batches import BatchListing
from api.services.errors import Invalid
from api.services.runs import RunListing
from api.services.viewer import SESSION_SECONDS
from loopline.models import (
    CancelRequest,
    CloseRequest,
    ContinueRequest,
    RunStatus,
    UserMessageRequest,
)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
install_filters(templates.env)
router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
MAX_SEARCH = 200
ModelT = TypeVar("ModelT", bound=BaseModel)
# A viewer page is never framed by another site (clickjacking), nor is its address sent on.
PAGE_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
LIVE_RUN = frozenset(
    {RunStatus.pending, RunStatus.running, RunStatus.awaiting_input, RunStatus.idle}
)


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
    session = await svc.viewer.sign_in(fields.get("api_key", ""))
    response = back_to(_local(fields.get("next", "/ui/runs")))
    response.set_cookie(
        SESSION_COOKIE,
        session.cookie,
        max_age=SESSION_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(viewer: FormViewer) -> Response:
    response = back_to("/ui/login")
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


def _local(target: str) -> str:
    """Only a path of the viewer: a sign-in never sends the browser elsewhere."""
    return target if target.startswith("/ui/") and not target.startswith("/ui//") else "/ui/runs"


# --- runs ----------------------------------------------------------------------------------


@router.get("/runs")
async def runs(request: Request, svc: Svc, viewer: PageViewer) -> Response:
    query = {name: value.strip() for name, value in request.query_params.items() if value.strip()}
    search = query.pop("q", None)
    if search is not None and len(search) > MAX_SEARCH:
        raise Invalid(["query", "q"], f"a run id has at most {MAX_SEARCH} characters")
    if search is not None:
        found = await svc.runs.statuses(viewer.caller, [search])
        if search in found:
            return back_to(f"/ui/runs/{search}")
        query["run_id_prefix"] = search
    offset = _number(query.pop("offset", "0"), "offset", int)
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
    status = query.get("status")
    if status is not None and status not in RunStatus.__members__:
        raise Invalid(["query", "status"], f"unknown status {status!r}")
    return RunListing(
        environment=query.get("environment"),
        scenario=query.get("scenario"),
        status=RunStatus(status) if status else None,
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
    return _number(query[name], name, parse) if name in query else None


def _number(text: str, name: str, parse: Any) -> Any:
    try:
        value = parse(text)
    except ValueError as error:
        raise Invalid(["query", name], f"{name} {text!r} is not a valid value") from error
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
    live = view.status in LIVE_RUN
    token = (await svc.access.connection_token(caller, run_id)).token if live else None
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
            for run_id in (a, b)
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
    return page(request, "batches.html", viewer=viewer, listed=listed, offset=offset)


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


def new_message_id() -> str:
    return uuid.uuid4().hex


templates.env.globals.update(csrf_field=CSRF_FIELD, new_message_id=new_message_id)
