"""HTTP tool servers: `GET {url}/tools` lists the tools, `POST {url}/call` calls one.

The protocol (README: HTTP tool servers) is small on purpose, so that a few lines of any
web framework serve it. A 410 says the session is gone; 400, 404 and 422 say the call was
wrong; 408, 429 and 5xx are worth retrying; any other refusal is final.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from loopline.environment.toolservers import _errors as errors
from loopline.environment.toolservers._calls import CallMeta, CallOutcome
from loopline.models import ToolInfo
from loopline.outbound import OutboundBlocked, OutboundPolicy

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CALL_MISTAKES = frozenset({400, 404, 422})
MAX_DETAIL_CHARS = 500


class HttpToolServer:
    def __init__(
        self,
        *,
        label: str,
        url: str,
        timeout: float,
        outbound: OutboundPolicy,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._label = label
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers or {},
            timeout=timeout,
            transport=outbound.transport(),
            trust_env=False,
        )
        self._timeout = timeout

    async def list_tools(self) -> list[ToolInfo]:
        body = await self._send("GET", "/tools")
        listed = body.get("tools", []) if isinstance(body, dict) else body
        if not isinstance(listed, list):
            raise errors.ServerRefused(f"{self._label}: GET /tools answered no list of tools")
        try:
            return [_tool_info(item) for item in listed]
        except (TypeError, KeyError) as error:
            raise errors.ServerRefused(
                f"{self._label}: a tool in GET /tools lacks {error}"
            ) from error

    async def call_tool(self, name: str, arguments: dict[str, Any], meta: CallMeta) -> CallOutcome:
        request = {
            "name": name,
            "arguments": arguments,
            "run_id": meta.run_id,
            "idempotency_key": meta.idempotency_key,
            "session": meta.session,
        }
        body = await self._send(
            "POST", "/call", json=request, headers={"Idempotency-Key": meta.idempotency_key}
        )
        if not isinstance(body, dict):
            raise errors.ServerRefused(f"{self._label}: POST /call answered no JSON object")
        content = body.get("content", "")
        structured = content if isinstance(content, dict) else None
        text = content if isinstance(content, str) else json.dumps(content)
        return CallOutcome(text=text, is_error=bool(body.get("is_error")), structured=structured)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **options: Any) -> Any:
        try:
            response = await self._http.request(method, path, **options)
        except httpx.TimeoutException as error:
            raise errors.ServerTimedOut(
                f"{self._label} did not answer {method} {path} within {self._timeout:g} s"
            ) from error
        except httpx.TransportError as error:
            raise errors.ServerUnreachable(f"cannot reach {self._label}: {error!r}") from error
        except OutboundBlocked as error:
            raise errors.ServerRefused(f"{self._label}: {error}") from error
        if response.is_success:
            try:
                return response.json()
            except ValueError as error:
                raise errors.ServerRefused(
                    f"{self._label}: {method} {path} answered no JSON"
                ) from error
        raise _refusal(self._label, f"{method} {path}", response)


def _tool_info(item: dict[str, Any]) -> ToolInfo:
    schema = item.get("input_schema") or item.get("parameters") or {"type": "object"}
    return ToolInfo(name=item["name"], description=item.get("description") or "", parameters=schema)


def _refusal(label: str, what: str, response: httpx.Response) -> errors.ToolServerError:
    detail = _detail(response)
    status = response.status_code
    if status == 410:
        return errors.SessionLost(f"{label} lost the run's session: {detail}")
    if status in CALL_MISTAKES:
        return errors.InvalidToolCall(detail)
    if status in RETRYABLE_STATUSES:
        return errors.ServerUnreachable(f"{label} answered {what} with {status}: {detail}")
    return errors.ServerRefused(f"{label} refused {what} with {status}: {detail}")


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:MAX_DETAIL_CHARS] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return text[:MAX_DETAIL_CHARS]
