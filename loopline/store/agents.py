"""Agents of the call-agent API in the trace store: versions named by the hash of their
config (the same config is the same version), and named environments that point at one."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.exc import IntegrityError

from loopline.models import AgentVersion
from loopline.store.database import Database, aware, utcnow
from loopline.store.errors import AgentNotFoundError
from loopline.store.tables import agent_deployments, agent_versions


@dataclass(frozen=True)
class Deployment:
    """A named environment of an agent, and the version it points at."""

    environment: str
    version_id: str
    deployed_at: datetime


def agent_id_for(project: str, path: str) -> str:
    return "ag_" + hashlib.sha256(f"{project}\n{path}".encode()).hexdigest()[:24]


def version_id_for(agent_id: str, config: dict[str, Any]) -> str:
    content = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return "agv_" + hashlib.sha256(f"{agent_id}\n{content}".encode()).hexdigest()[:24]


class AgentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def save(self, project: str, path: str, config: dict[str, Any]) -> AgentVersion:
        """The version of `config` at `path`, created unless that content exists already."""
        agent_id = agent_id_for(project, path)
        version_id = version_id_for(agent_id, config)

        row = {
            "version_id": version_id,
            "agent_id": agent_id,
            "project": project,
            "path": path,
            "config": config,
            "created_at": utcnow(),
        }
        # An id taken already holds this very content (the id is its hash).
        with contextlib.suppress(IntegrityError):
            await self._db.write(lambda conn: conn.execute(agent_versions.insert().values(**row)))
        return await self.version(version_id, project)

    async def version(self, version_id: str, project: str) -> AgentVersion:
        return await self._db.read(_version_of, version_id, project)

    async def current(self, agent_id: str, project: str, environment: str | None) -> AgentVersion:
        """The version `environment` points at; without one, the default environment's,
        else the newest version."""

        def work(conn: Connection) -> AgentVersion:
            names = [environment] if environment else [DEFAULT_ENVIRONMENT]
            deployed = conn.scalar(
                select(agent_deployments.c.version_id).where(
                    agent_deployments.c.agent_id == agent_id,
                    agent_deployments.c.environment.in_(names),
                )
            )
            if deployed is None and environment:
                raise AgentNotFoundError(
                    f"environment {environment!r} has no version of agent {agent_id!r} deployed"
                )
            if deployed is None:
                deployed = conn.scalar(
                    select(agent_versions.c.version_id)
                    .where(
                        agent_versions.c.agent_id == agent_id,
                        agent_versions.c.project == project,
                    )
                    .order_by(agent_versions.c.created_at.desc())
                    .limit(1)
                )
            if deployed is None:
                raise AgentNotFoundError(f"no agent {agent_id!r}")
            return _version_of(conn, deployed, project)

        return await self._db.read(work)

    async def list_agents(
        self, project: str, name: str | None, *, limit: int, offset: int
    ) -> tuple[int, list[str]]:
        """The project's agents (ids) by path, those whose name holds `name` (any case)."""

        def work(conn: Connection) -> tuple[int, list[str]]:
            where = [agent_versions.c.project == project]
            if name:
                where.append(func.lower(agent_versions.c.path).contains(name.lower()))
            agents = (
                select(agent_versions.c.agent_id, func.min(agent_versions.c.path).label("path"))
                .where(*where)
                .group_by(agent_versions.c.agent_id)
                .subquery()
            )
            total = conn.scalar(select(func.count()).select_from(agents)) or 0
            page = select(agents.c.agent_id).order_by(agents.c.path).limit(limit).offset(offset)
            return int(total), list(conn.scalars(page))

        return await self._db.read(work)

    async def deployments(self, agent_id: str) -> list[Deployment]:
        """Where the agent's versions are deployed, by environment name."""

        def work(conn: Connection) -> list[Deployment]:
            rows = conn.execute(
                select(agent_deployments)
                .where(agent_deployments.c.agent_id == agent_id)
                .order_by(agent_deployments.c.environment)
            )
            return [_deployment(row._mapping) for row in rows]

        return await self._db.read(work)

    async def deploy(self, version: AgentVersion, environment: str) -> None:
        def work(conn: Connection) -> None:
            conn.execute(
                agent_deployments.delete().where(
                    agent_deployments.c.agent_id == version.agent_id,
                    agent_deployments.c.environment == environment,
                )
            )
            conn.execute(
                agent_deployments.insert().values(
                    agent_id=version.agent_id,
                    environment=environment,
                    version_id=version.version_id,
                    deployed_at=utcnow(),
                )
            )

        await self._db.write(work)


def _version_of(conn: Connection, version_id: str, project: str) -> AgentVersion:
    row = conn.execute(
        select(agent_versions).where(
            agent_versions.c.version_id == version_id, agent_versions.c.project == project
        )
    ).first()
    if row is None:
        raise AgentNotFoundError(f"no agent version {version_id!r}")
    return _version(row._mapping)


# Where a call lands that names neither a version nor an environment, if it is deployed.
DEFAULT_ENVIRONMENT = "production"


def _deployment(row: RowMapping) -> Deployment:
    deployed_at = aware(row["deployed_at"])
    assert deployed_at is not None  # the column is NOT NULL
    return Deployment(row["environment"], row["version_id"], deployed_at)


def _version(row: RowMapping) -> AgentVersion:
    return AgentVersion(
        agent_id=row["agent_id"],
        version_id=row["version_id"],
        path=row["path"],
        config=row["config"],
        created_at=aware(row["created_at"]),
    )
