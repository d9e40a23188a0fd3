"""Metrics and tracing of a Loopline process; each is off unless its setting is given.

Metrics: the Temporal SDK's runtime serves Prometheus text on `metrics_address`, with the
SDK's own metrics and Loopline's (recorded through the same runtime's meter, so workflow
metrics are skipped during replay). Tracing: OpenTelemetry spans exported over OTLP/HTTP,
carried from an API request through the workflow into its activities by the SDK's plugin.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from temporalio.client import Plugin
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

# The SDK's default buckets suit its own latencies; model calls take up to minutes, and one
# call's cost is a fraction of a cent to a few dollars.
BUCKETS = {
    "loopline_model_call_seconds": [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    "loopline_model_call_cost_usd": [1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10],
}


class TelemetryUnavailableError(RuntimeError):
    pass


def install_metrics(address: str | None) -> None:
    """Serve the process's metrics at http://`address`/metrics; must run before any client."""
    if address:
        metrics = PrometheusConfig(
            bind_address=address,
            durations_as_seconds=True,
            histogram_bucket_overrides=BUCKETS,
        )
        try:
            runtime = Runtime(telemetry=TelemetryConfig(metrics=metrics))
        except ValueError as error:
            raise TelemetryUnavailableError(
                f"cannot serve metrics at {address} (LOOPLINE_METRICS_ADDRESS): {error}"
            ) from error
        Runtime.set_default(runtime)


def tracing_plugins(endpoint: str | None, service_name: str) -> Sequence[Plugin]:
    """Client plugins that trace calls to Temporal and everything run by the workers built on
    that client; none when no endpoint is configured."""
    if not endpoint:
        return []
    if importlib.util.find_spec("opentelemetry.exporter.otlp") is None:
        raise TelemetryUnavailableError(
            "LOOPLINE_OTEL_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'loopline[otel]'"
        )
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin, create_tracer_provider

    provider = create_tracer_provider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return [OpenTelemetryPlugin(add_temporal_spans=True)]


def flush_traces() -> None:
    """Export the spans still buffered; the process is about to leave without finalising."""
    if importlib.util.find_spec("opentelemetry.sdk") is None:
        return
    from opentelemetry import trace
    from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

    provider = trace.get_tracer_provider()
    if isinstance(provider, ReplaySafeTracerProvider):
        provider.shutdown()
