"""How a URL finds its route: as the OpenAPI document reads it.

OpenAPI matches a concrete path before a templated one that also fits the URL, so
`GET /v1/tasksets/upload` is not a read of a taskset named "upload" but a method that
`/v1/tasksets/upload` does not take, and `PUT /v1/runs/{run_id}/artifacts/presign` is not
an upload of an artifact named "presign". Starlette would route both to the template that
fits; here a template yields to a path whose segments are literal where its own are
parameters. A method the URL does not take is a 405 whose `Allow` lists every method taken
there, not only those of the first route that fits.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from api.http.json_bodies import reading_json


class DocumentedRoute(APIRoute):
    """The route class of every router of the API."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        # A JSON body is read as JSON whatever its Content-Type (api/http/json_bodies.py).
        return reading_json(self, super().get_route_handler())

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        # A path without parameters is as specific as paths get: it never yields.
        templated = match is not Match.NONE and bool(self.param_convertors)
        if templated and all(route.original_route is not self for route in routes_at(scope)):
            return Match.NONE, {}
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            taken = {method for route in routes_at(scope) for method in route.methods or ()}
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(taken))})
        await super().handle(scope, receive, send)


def routes_at(scope: Scope) -> list[RouteContext]:
    """The app's routes of the most specific path that fits the URL of `scope`, whatever
    their methods."""
    path = get_route_path(scope)
    fitting = [
        route
        for route in iter_route_contexts(scope["app"].routes)
        if isinstance(route.original_route, APIRoute) and route.path_regex.match(path)
    ]
    if not fitting:
        return []
    most = max(_specificity(route) for route in fitting)
    return [route for route in fitting if _specificity(route) == most]


def _specificity(route: RouteContext) -> tuple[bool, ...]:
    """Which segments of the route's path are literal: the first segment where two paths
    differ decides, a literal one beating a parameter."""
    return tuple(not segment.startswith("{") for segment in str(route.path_format).split("/"))
