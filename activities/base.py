"""What every activity class holds: the trace store and the environments it serves."""

from __future__ import annotations

from activities.errors import permanent
from loopline.environment import Environment, Scenario
from loopline.models import RunSpec
from loopline.registry import Registry
from loopline.store import TraceStore


class StoreActivities:
    def __init__(self, store: TraceStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    def environment(self, spec: RunSpec) -> Environment:
        try:
            return self.registry.environment(spec.environment)
        except LookupError as error:
            raise permanent(f"this worker cannot run it: {error}", "UnknownEnvironment") from error

    def scenario(self, spec: RunSpec) -> Scenario:
        try:
            return self.registry.scenario(spec.environment, spec.scenario)
        except LookupError as error:
            raise permanent(f"this worker cannot run it: {error}", "UnknownScenario") from error
