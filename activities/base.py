"""What every activity class holds: the trace store and the environments it serves."""

from __future__ import annotations

from collections import OrderedDict

from activities.errors import permanent
from loopline.environment import Environment, Scenario
from loopline.models import RunSpec
from loopline.registry import Registry
from loopline.store import TraceStore

SPEC_CACHE_SIZE = 4096


class StoreActivities:
    def __init__(self, store: TraceStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._specs: OrderedDict[str, RunSpec] = OrderedDict()

    async def spec(self, run_id: str) -> RunSpec:
        """The run's spec; it never changes once written, so each worker reads it once."""
        spec = self._specs.get(run_id)
        if spec is None:
            spec = await self.store.run_spec(run_id)
            self._specs[run_id] = spec
            if len(self._specs) > SPEC_CACHE_SIZE:
                self._specs.popitem(last=False)
        return spec

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
