"""Native API v1: the project's runs exported for training, streamed as JSON Lines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse

from api.http.deps import Svc, Who
from api.http.routing import DocumentedRoute
from api.services.exports import ExportRequest
from api.services.runs import MAX_FILTER_CHARS, MAX_REWARD_BOUND
from loopline.models import RunStatus
from loopline.models.exports import ExportFormat, FineTuneExample, RlEpisode

router = APIRouter(prefix="/v1/exports", tags=["exports"], route_class=DocumentedRoute)

Text = Annotated[str | None, Query(max_length=MAX_FILTER_CHARS)]


class JsonLines(JSONResponse):
    """What the OpenAPI document shows: the media type, and each line's schema (as a JSON
    response's). The route answers with a StreamingResponse of that media type."""

    media_type = "application/x-ndjson"


@router.get(
    "",
    response_class=JsonLines,
    responses={
        200: {
            "model": FineTuneExample | RlEpisode,
            "description": "One JSON object a line, one line a run, oldest run first: a "
            "FineTuneExample (format=openai-chat) or an RlEpisode (format=rl).",
        }
    },
)
async def export_runs(
    svc: Svc,
    who: Who,
    format_: Annotated[
        ExportFormat,
        Query(
            alias="format",
            description="openai-chat: OpenAI chat fine-tuning examples; rl: episodes with "
            "rewards and log-probabilities.",
        ),
    ] = ExportFormat.openai_chat,
    batch_id: Text = None,
    taskset: Annotated[
        str | None, Query(max_length=MAX_FILTER_CHARS, description="A taskset's id or name.")
    ] = None,
    environment: Text = None,
    scenario: Text = None,
    model: Annotated[
        str | None, Query(max_length=MAX_FILTER_CHARS, description="The model as started.")
    ] = None,
    min_reward: Annotated[float | None, Query(ge=-MAX_REWARD_BOUND, le=MAX_REWARD_BOUND)] = None,
    success: bool | None = None,
    status: Annotated[RunStatus, Query(description="Runs in this status only.")] = (
        RunStatus.completed
    ),
) -> StreamingResponse:
    """The project's runs that pass every filter given, for training. Read and sent a page
    at a time: an export of any size holds one page in memory."""
    request = ExportRequest(
        format=format_,
        batch_id=batch_id,
        taskset=taskset,
        environment=environment,
        scenario=scenario,
        model=model,
        min_reward=min_reward,
        success=success,
        status=status,
    )
    lines = await svc.exports.export(who, request)
    filename = f"loopline-{format_.value}.jsonl"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(lines, media_type=JsonLines.media_type, headers=headers)
