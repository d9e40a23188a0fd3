"""API keys over HTTP: an admin key manages the keys of its own project."""

from __future__ import annotations

from dataclasses import dataclass

from api.services.access import Access, Caller
from api.services.errors import NotFound
from loopline.models import ApiKeyRequest, ApiKeyView, NewApiKey, Scope
from loopline.store import KeyStore, UnknownKeyError


@dataclass
class KeyService:
    store: KeyStore
    access: Access

    async def create(self, caller: Caller, request: ApiKeyRequest) -> NewApiKey:
        """A new key of the caller's project. Its secret is in this answer only."""
        project = self.access.project(caller, Scope.admin)
        return await self.store.create(request.name, project, request.scopes)

    async def list(self, caller: Caller) -> list[ApiKeyView]:
        return await self.store.list(self.access.project(caller, Scope.admin))

    async def revoke(self, caller: Caller, key_id: str) -> ApiKeyView:
        project = self.access.project(caller, Scope.admin)
        try:
            return await self.store.revoke(key_id, project)
        except UnknownKeyError as error:
            raise NotFound(str(error)) from error
