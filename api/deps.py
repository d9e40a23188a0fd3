"""FastAPI dependencies: the service layer the lifespan built."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.artifacts import ArtifactService
from api.live import LiveEvents
from api.service import RunService


def get_service(request: Request) -> RunService:
    service: RunService = request.app.state.service
    return service


def get_live_events(request: Request) -> LiveEvents:
    live: LiveEvents = request.app.state.live_events
    return live


def get_artifacts(request: Request) -> ArtifactService:
    artifacts: ArtifactService = request.app.state.artifacts
    return artifacts


Service = Annotated[RunService, Depends(get_service)]
Live = Annotated[LiveEvents, Depends(get_live_events)]
Artifacts = Annotated[ArtifactService, Depends(get_artifacts)]
