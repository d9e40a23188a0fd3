"""Who may do what, checked by the services against a real (SQLite) trace store: scopes,
projects, and connection tokens bound to project, run incarnation and grants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from api.services.access import Access, Caller, Need
from api.services.errors import Forbidden, NotFound, Unauthenticated
from api.services.signing import Signer
from loopline.models import RunSpec, Scope
from loopline.secrets import SecretBox
from loopline.store import Stores, open_stores
from loopline.store.rows import NewRun

SPEC = RunSpec(environment="trivia", scenario="capital", args={}, model="scripted", max_steps=1)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    async with open_stores(f"sqlite:///{tmp_path / 'access.db'}") as opened:
        for run_id, project in (("r-a", "team-a"), ("r-a2", "team-a"), ("r-b", "team-b")):
            spec = SPEC.model_copy(update={"project": project})
            await opened.runs.create_run(NewRun(run_id, "h", spec))
        yield opened


@pytest.fixture
def access(stores: Stores) -> Access:
    signer = Signer.from_box(SecretBox(Fernet.generate_key()))
    return Access(stores.keys, stores.runs, stores.batches, signer)


async def caller(stores: Stores, access: Access, project: str, *scopes: Scope) -> Caller:
    key = await stores.keys.create("test", project, list(scopes))
    return await access.authenticate(key.key)


async def test_a_key_reaches_its_own_projects_runs_with_its_scopes(
    stores: Stores, access: Access
) -> None:
    reader = await caller(stores, access, "team-a", Scope.task_read)
    assert (await access.run(reader, "r-a", Need.read)).run_id == "r-a"
    with pytest.raises(Forbidden, match="task:write"):
        await access.run(reader, "r-a", Need.commands)
    with pytest.raises(NotFound, match="no run 'r-b'"):
        await access.run(reader, "r-b", Need.read)
    with pytest.raises(NotFound, match="no run 'r-none'"):
        await access.run(reader, "r-none", Need.read)


async def test_a_token_grants_no_more_than_the_key_that_minted_it(
    stores: Stores, access: Access
) -> None:
    reader = await caller(stores, access, "team-a", Scope.task_read)
    minted = await access.connection_token(reader, "r-a")
    assert minted.grants == ["run:events"]
    token = await access.authenticate(minted.token)
    assert (await access.run(token, "r-a", Need.events)).run_id == "r-a"
    for need in (Need.commands, Need.read, Need.write):
        with pytest.raises(Forbidden):
            await access.run(token, "r-a", need)
    writer = await caller(stores, access, "team-a", Scope.task_read, Scope.task_write)
    full = await access.authenticate((await access.connection_token(writer, "r-a")).token)
    assert (await access.run(full, "r-a", Need.commands)).run_id == "r-a"


async def test_a_token_holds_for_one_run_of_one_project_and_one_incarnation(
    stores: Stores, access: Access
) -> None:
    writer = await caller(stores, access, "team-a", Scope.task_read, Scope.task_write)
    token = await access.authenticate((await access.connection_token(writer, "r-a")).token)
    with pytest.raises(Forbidden, match="another run"):
        await access.run(token, "r-a2", Need.events)
    with pytest.raises(Forbidden, match="one run's events"):
        access.project(token, Scope.task_read)
    # The run's id used again by a new row: the old row's token does not reach it.
    await stores.runs.delete_run("r-a")
    await stores.runs.create_run(NewRun("r-a", "h", SPEC.model_copy(update={"project": "team-a"})))
    with pytest.raises(Unauthenticated, match="no longer exists"):
        await access.run(token, "r-a", Need.events)


async def test_api_keys_are_refused_in_urls(stores: Stores, access: Access) -> None:
    key = await stores.keys.create("test", "team-a", [Scope.admin])
    with pytest.raises(Unauthenticated, match="never in a URL"):
        await access.authenticate(key.key, in_url=True)
    with pytest.raises(Unauthenticated, match="send an API key"):
        await access.authenticate(None)
