"""The seed APIs Loopline speaks besides its own: one router per dialect, under its own
prefix. A dialect translates request and response shapes to the one service layer and has
no behaviour of its own (README: "Dialects")."""

from __future__ import annotations

from fastapi import APIRouter

from api.http.dialects.agents import router as agents_router
from api.http.dialects.hud import router as hud_router
from api.http.dialects.hud import versioned as hud_v1_router
from api.http.dialects.hud_sdk import router as hud_sdk_router
from api.http.dialects.hud_sdk import versioned as hud_sdk_v1_router
from api.http.dialects.rl_gym import router as rl_gym_router
from api.http.dialects.task_runs import router as task_runs_router

ROUTERS: tuple[APIRouter, ...] = (
    hud_router,
    hud_v1_router,
    hud_sdk_router,
    hud_sdk_v1_router,
    rl_gym_router,
    task_runs_router,
    agents_router,
)
