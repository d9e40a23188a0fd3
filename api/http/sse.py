"""Server-Sent Events: live items as frames, and the query and header parsing of streams.

Each event's `id` is its `seq`, so a client that reconnects with `Last-Event-ID` resumes
after the last event it received; `delta` frames (streamed model text) carry no id and do
not move the resume point; comment lines keep idle connections open through proxies.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from api.http.deps import MAX_POSITION
from api.services.errors import Invalid
from api.services.live import EventTypes, KeepAlive, LiveItem, StreamEnd
from loopline.models import EventType, EventView
from workflows.contract.payloads import TokenDelta

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
TYPES_HELP = f"Comma-separated event types: {', '.join(t.value for t in EventType)}"
_ONE_TYPE = rf"\s*({'|'.join(t.value for t in EventType)})?\s*"
# Documents the list for clients and fuzzers; parse_event_types checks it and names the
# unknown types, which a pattern mismatch would not.
TYPES_SCHEMA = {"pattern": rf"^{_ONE_TYPE}(,{_ONE_TYPE})*$"}


def sse_response(frames: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


async def native_frames(batches: AsyncIterator[list[LiveItem]]) -> AsyncIterator[str]:
    """One chunk per batch: what arrived together goes out in one write."""
    async for batch in batches:
        yield "".join(frame(item) for item in batch)


def frame(item: LiveItem) -> str:
    if isinstance(item, EventView):
        return f"id: {item.seq}\nevent: {item.type.value}\ndata: {item.json_text()}\n\n"
    if isinstance(item, TokenDelta):
        return f"event: delta\ndata: {item.model_dump_json()}\n\n"
    if isinstance(item, StreamEnd):
        return f"event: end\ndata: {json.dumps({'last_seq': item.last_seq})}\n\n"
    assert isinstance(item, KeepAlive)
    return ": keep-alive\n\n"


def data_frame(data: str) -> str:
    """A frame of data alone, for dialects whose clients read only `data:` lines."""
    return f"data: {data}\n\n"


def parse_event_types(value: str | None, field: str) -> frozenset[EventType]:
    if not value:
        return frozenset()
    names = [name.strip() for name in value.split(",") if name.strip()]
    known = {t.value for t in EventType}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise Invalid(
            ["query", field],
            f"unknown event type {', '.join(unknown)}; known: {', '.join(sorted(known))}",
        )
    return frozenset(EventType(name) for name in names)


def event_types(only: str | None, excluded: str | None) -> EventTypes:
    return EventTypes(
        parse_event_types(only, "event_types"), parse_event_types(excluded, "exclude_types")
    )


def resume_point(last_event_id: str | None, after: int) -> int:
    """Where a stream starts: after `Last-Event-ID` (a seq) or `after`, whichever is later."""
    if last_event_id is None:
        return after
    stripped = last_event_id.strip()
    if (
        not stripped.isdigit()
        or len(stripped) > len(str(MAX_POSITION))
        or int(stripped) > MAX_POSITION
    ):
        raise Invalid(
            ["header", "last-event-id"],
            f"Last-Event-ID must be the seq of an event: a whole number up to {MAX_POSITION}",
        )
    return max(int(stripped), after)
