"""Finds the environments a process serves, by importing the configured modules."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from loopline.environment import Environment
from loopline.environment.remote import RemoteEnvironment
from loopline.environment.scenarios import Scenario
from loopline.environment.toolservers import ToolServers
from loopline.models import RemoteEnvironmentConfig
from loopline.outbound import OutboundPolicy


class UnknownEnvironmentError(LookupError):
    pass


class UnknownScenarioError(LookupError):
    pass


class RemoteEnvironmentError(LookupError):
    """An in-process environment was asked for by the name of a remote one."""


class Registry:
    """In-process environments and remote ones (MCP or HTTP tool servers), by name."""

    def __init__(
        self,
        environments: Iterable[Environment],
        remotes: Iterable[RemoteEnvironmentConfig] = (),
        outbound: OutboundPolicy | None = None,
    ) -> None:
        self.servers = ToolServers(outbound)
        # Where the process's own requests may go: its tool servers, and the URLs runs name.
        self.outbound = self.servers.outbound
        self._environments: dict[str, Environment] = {}
        self._remotes: dict[str, RemoteEnvironment] = {}
        for environment in environments:
            self._check_unique(environment.name)
            self._environments[environment.name] = environment
        for config in remotes:
            self._check_unique(config.name)
            self._remotes[config.name] = RemoteEnvironment(config, self.servers)

    @classmethod
    def from_modules(
        cls,
        module_names: Iterable[str],
        remotes: Iterable[RemoteEnvironmentConfig] = (),
        outbound: OutboundPolicy | None = None,
    ) -> Registry:
        found: list[Environment] = []
        for module_name in module_names:
            module = importlib.import_module(module_name)
            found.extend(v for v in vars(module).values() if isinstance(v, Environment))
        return cls(found, remotes, outbound)

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close the connections to remote environments' servers."""
        await self.servers.aclose()

    def names(self) -> list[str]:
        return sorted([*self._environments, *self._remotes])

    def all(self) -> list[Environment]:
        """The in-process environments."""
        return [self._environments[name] for name in sorted(self._environments)]

    def remotes(self) -> list[RemoteEnvironment]:
        return [self._remotes[name] for name in sorted(self._remotes)]

    def remote(self, name: str) -> RemoteEnvironment | None:
        """The remote environment of that name; None for an in-process one."""
        if name not in self._remotes and name not in self._environments:
            raise self._unknown(name)
        return self._remotes.get(name)

    def environment(self, name: str) -> Environment:
        """The in-process environment of that name (see `remote` for the others)."""
        try:
            return self._environments[name]
        except KeyError:
            if name in self._remotes:
                raise RemoteEnvironmentError(
                    f"environment {name!r} is remote: its tools and scenarios are on its server"
                ) from None
            raise self._unknown(name) from None

    def _unknown(self, name: str) -> UnknownEnvironmentError:
        return UnknownEnvironmentError(
            f"unknown environment {name!r}; available: {', '.join(self.names()) or 'none'}"
        )

    def _check_unique(self, name: str) -> None:
        if name in self._environments or name in self._remotes:
            raise ValueError(f"two environments are named {name!r}")

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
