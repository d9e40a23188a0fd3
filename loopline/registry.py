"""Finds the environments a process serves, by importing the configured modules."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from loopline.environment import Environment, Scenario


class UnknownEnvironmentError(LookupError):
    pass


class UnknownScenarioError(LookupError):
    pass


class Registry:
    def __init__(self, environments: Iterable[Environment]) -> None:
        self._environments: dict[str, Environment] = {}
        for environment in environments:
            if environment.name in self._environments:
                raise ValueError(f"two environments are named {environment.name!r}")
            self._environments[environment.name] = environment

    @classmethod
    def from_modules(cls, module_names: Iterable[str]) -> Registry:
        found: list[Environment] = []
        for module_name in module_names:
            module = importlib.import_module(module_name)
            found.extend(v for v in vars(module).values() if isinstance(v, Environment))
        return cls(found)

    def names(self) -> list[str]:
        return sorted(self._environments)

    def all(self) -> list[Environment]:
        return [self._environments[name] for name in self.names()]

    def environment(self, name: str) -> Environment:
        try:
            return self._environments[name]
        except KeyError:
            raise UnknownEnvironmentError(
                f"unknown environment {name!r}; available: {', '.join(self.names()) or 'none'}"
            ) from None

    def scenario(self, environment_name: str, scenario_name: str) -> Scenario:
        environment = self.environment(environment_name)
        try:
            return environment.scenarios[scenario_name]
        except KeyError:
            available = ", ".join(sorted(environment.scenarios)) or "none"
            raise UnknownScenarioError(
                f"environment {environment_name!r} has no scenario {scenario_name!r}; "
                f"available: {available}"
            ) from None
