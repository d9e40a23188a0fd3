"""An environment whose code is slow in the ways real ones are: CPU-bound and blocking."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

from loopline import Environment, Reward, Setup

heavy = Environment("heavy", description="Tools that burn CPU or block their thread.")


@heavy.tool
def burn(seconds: float) -> str:
    """Spin the CPU for `seconds` of this thread's CPU time, holding the GIL as Python does."""
    deadline = time.thread_time() + seconds
    spins = 0
    while time.thread_time() < deadline:
        spins += 1
    return f"burned {seconds:g} s in {spins} spins"


@heavy.tool
def block(seconds: float) -> str:
    """Block this thread for `seconds`, as a sync HTTP call or subprocess would."""
    time.sleep(seconds)
    return f"blocked {seconds:g} s"


@heavy.scenario(description="Use the tools, then say done.")
async def work() -> AsyncGenerator[Setup | Reward | None, str]:
    yield heavy.setup("Use the tools as asked, then say done.")
    answer = yield None
    yield heavy.reward(1.0 if "done" in answer else 0.0)
