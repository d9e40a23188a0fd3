"""The seed APIs Loopline speaks besides its own: one router per dialect, under its own
prefix. A dialect translates request and response shapes to the one service layer and has
no behaviour of its own (README: "Dialects")."""

from __future__ import annotations

from fastapi import APIRouter

from api.dialects import agents, hud, rl_gym, task_runs

ROUTERS: tuple[APIRouter, ...] = (
    hud.router,
    hud.versioned,
    rl_gym.router,
    task_runs.router,
    agents.router,
)
