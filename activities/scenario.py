"""Scenario lifecycle: setup and teardown of one run (evaluation: activities/evaluation.py)."""

from __future__ import annotations

from temporalio import activity

from activities.base import StoreActivities
from activities.errors import permanent
from activities.heartbeats import heartbeating
from loopline.database import utcnow
from loopline.models import (
    EventType,
    Message,
    RunInput,
    RunStatus,
    TeardownInput,
)

SETUP_KEY = "setup"
SYSTEM_KEY = "setup:system"
PERSONA_KEY = "setup:persona"
TEARDOWN_KEY = "teardown"


class ScenarioActivities(StoreActivities):
    @activity.defn(name="setup")
    async def setup(self, run: RunInput) -> None:
        """Run the scenario's setup; record the prompt and the initial state together."""
        async with heartbeating():
            await self._setup(run)

    async def _setup(self, run: RunInput) -> None:
        if await self.store.event_by_key(run.run_id, SETUP_KEY) is not None:
            return
        spec = await self.spec(run.run_id)
        environment = self.environment(spec)
        scenario = self.scenario(spec)
        try:
            setup = await scenario.run_setup(spec.args)
        except Exception as error:
            raise permanent(
                f"setup of scenario {spec.scenario!r} failed: {type(error).__name__}: {error}",
                "ScenarioSetupFailed",
            ) from error
        system_prompt = spec.llm.system_prompt or setup.system_prompt or environment.system_prompt
        if system_prompt:
            message = Message(role="system", content=system_prompt)
            await self.store.record(run.run_id, SYSTEM_KEY, EventType.message, message.model_dump())
        if setup.user_persona:
            persona = {"persona": setup.user_persona}
            await self.store.record(run.run_id, PERSONA_KEY, EventType.log, persona)
        prompt = Message(role="user", content=spec.prompt or setup.prompt)
        await self.store.record(
            run.run_id,
            SETUP_KEY,
            EventType.message,
            prompt.model_dump(),
            state=setup.state,
            run_fields={"status": RunStatus.running.value},
        )

    @activity.defn(name="teardown")
    async def teardown(self, request: TeardownInput) -> None:
        """Release the environment, drop the run's keys and record the final status."""
        async with heartbeating():
            await self._teardown(request)

    async def _teardown(self, request: TeardownInput) -> None:
        spec = await self.spec(request.run_id)
        await self.store.drop_secrets(request.run_id)
        hook_error: str | None = None
        try:
            environment = self.registry.environment(spec.environment)
            state = environment.load_state(await self.store.load_state(request.run_id))
            await environment.run_teardown(state, request.run_id)
        except Exception as error:
            # A teardown that fails must not hide how the run itself ended.
            activity.logger.exception("teardown of %s failed", spec.environment)
            hook_error = f"{type(error).__name__}: {error}"
        data = {
            "status": request.status.value,
            "stop_reason": request.stop_reason.value,
            "steps": request.steps,
            "error": request.error,
            "teardown_error": hook_error,
        }
        await self.store.record(
            request.run_id,
            TEARDOWN_KEY,
            EventType.status,
            data,
            run_fields={
                "status": request.status.value,
                "stop_reason": request.stop_reason.value,
                "error": request.error,
                "steps": request.steps,
                "torn_down": True,
                "ended_at": utcnow(),
            },
        )
