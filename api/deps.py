"""FastAPI dependencies: the service layer the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from api.access import Gate
from api.agents import AgentService
from api.artifacts import ArtifactService
from api.batches import BatchService
from api.live import LiveEvents
from api.service import RunService
from api.tasksets import TasksetService
from loopline.keys import KeyStore

# Far beyond any real page, and within the 64-bit integers the databases store.
MAX_POSITION = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_POSITION, description="Items to skip.")]
AfterSeq = Annotated[int, Query(ge=0, le=MAX_POSITION, description="Only events with a larger seq")]


def get_keys(request: Request) -> KeyStore:
    gate: Gate = request.app.state.gate
    return gate.keys


def get_service(request: Request) -> RunService:
    service: RunService = request.app.state.service
    return service


def get_live_events(request: Request) -> LiveEvents:
    live: LiveEvents = request.app.state.live_events
    return live


def get_artifacts(request: Request) -> ArtifactService:
    artifacts: ArtifactService = request.app.state.artifacts
    return artifacts


def get_batches(request: Request) -> BatchService:
    batches: BatchService = request.app.state.batches
    return batches


def get_agents(request: Request) -> AgentService:
    agents: AgentService = request.app.state.agents
    return agents


def get_tasksets(request: Request) -> TasksetService:
    tasksets: TasksetService = request.app.state.tasksets
    return tasksets


Service = Annotated[RunService, Depends(get_service)]
Batches = Annotated[BatchService, Depends(get_batches)]
Agents = Annotated[AgentService, Depends(get_agents)]
Tasksets = Annotated[TasksetService, Depends(get_tasksets)]
Live = Annotated[LiveEvents, Depends(get_live_events)]
Artifacts = Annotated[ArtifactService, Depends(get_artifacts)]
Keys = Annotated[KeyStore, Depends(get_keys)]
