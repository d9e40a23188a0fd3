"""What an operator sees of one run: JSON log lines naming it, Prometheus metrics from the API
and the worker, and one OpenTelemetry trace from the API request through the workflow into
its activities."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.harness import Stack, free_port, model_body, run_to_end, serving
from tests.upstream import Reply, Upstream


@dataclass
class Span:
    service: str
    name: str
    trace_id: str


@dataclass
class Collector:
    """An OTLP/HTTP traces receiver: what the exporter in each process sends."""

    port: int = field(default_factory=free_port)
    spans: list[Span] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/traces")
        async def receive(request: Request) -> Response:
            export = ExportTraceServiceRequest.FromString(await request.body())
            for resource_spans in export.resource_spans:
                service = next(
                    attribute.value.string_value
                    for attribute in resource_spans.resource.attributes
                    if attribute.key == "service.name"
                )
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(
                        Span(service, span.name, span.trace_id.hex()) for span in scope_spans.spans
                    )
            return Response(status_code=200)

        return app


@pytest.fixture
async def collector() -> AsyncIterator[Collector]:
    collector = Collector()
    async with serving(collector.app(), collector.port):
        yield collector


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if labels.items() <= found.items():
            total += float(match.group(2))
    return total


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def test_a_run_shows_in_logs_metrics_and_one_trace(
    temporal_address: str, upstream: Upstream, collector: Collector, tmp_path: Path
) -> None:
    model_name = f"observed-{uuid.uuid4().hex[:6]}"
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({model_name: {"input": 2.0, "output": 10.0}}))
    stack = Stack(
        temporal_address=temporal_address,
        workdir=tmp_path,
        extra_env={
            "LOOPLINE_OTEL_ENDPOINT": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "LOOPLINE_PRICES_FILE": str(prices),
        },
    )
    api_metrics, worker_metrics = free_port(), free_port()
    stack.start_worker(LOOPLINE_METRICS_ADDRESS=f"127.0.0.1:{worker_metrics}")
    await stack.start_api(LOOPLINE_METRICS_ADDRESS=f"127.0.0.1:{api_metrics}")
    model = {"model": model_name, "provider": "custom", "base_url": upstream.openai_url}
    upstream.plan(model_name, Reply(text="Lima", prompt_tokens=100, output_tokens=20))
    try:
        async with stack.client() as api:
            body = model_body({**model, "api_key": "sk-test"}, {"country": "Peru"})
            run = await run_to_end(api, body)
        async with httpx.AsyncClient() as http:
            from_worker = (await http.get(f"http://127.0.0.1:{worker_metrics}/metrics")).text
            from_api = (await http.get(f"http://127.0.0.1:{api_metrics}/metrics")).text
    finally:
        # In a thread: the collector serves from this event loop while the processes flush.
        await asyncio.to_thread(stack.stop)
    assert run["status"] == "completed", run["error"]
    run_id = run["run_id"]

    ours = {"environment": "trivia", "model": f"custom/{model_name}"}
    assert metric(from_worker, "loopline_runs_started", **ours) == 1
    assert metric(from_worker, "loopline_runs_completed", **ours) == 1
    assert metric(from_worker, "loopline_runs_failed", **ours) == 0
    call = {"model": model_name, "purpose": "agent"}
    assert metric(from_worker, "loopline_model_call_seconds_count", **call) == 1
    assert metric(from_worker, "loopline_model_tokens", kind="prompt", **call) == 100
    assert metric(from_worker, "loopline_model_tokens", kind="completion", **call) == 20
    # 100 tokens at $2 and 20 at $10 per million.
    assert metric(from_worker, "loopline_model_call_cost_usd_sum", **call) == pytest.approx(4e-4)
    assert metric(from_worker, "temporal_workflow_completed") >= 1
    assert metric(from_api, "loopline_api_requests", route="/v1/runs", status="201") == 1
    assert metric(from_api, "loopline_api_requests", route="/v1/runs/{run_id}") >= 1
    assert metric(from_api, "temporal_request", operation="StartWorkflowExecution") >= 1

    worker_lines = [line for line in log_lines(tmp_path / "worker-0.log") if line.get("run_id")]
    ended = [line for line in worker_lines if line["message"].endswith("completed (answered)")]
    assert ended, worker_lines
    assert ended[0]["run_id"] == run_id
    assert ended[0]["workflow_id"] == f"run-{run_id}"
    assert ended[0]["workflow_type"] == "Run"
    api_lines = log_lines(tmp_path / "api.log")
    assert any(line.get("run_id") == run_id and line["status"] == 200 for line in api_lines)

    start = next(span for span in collector.spans if span.name == "POST /v1/runs")
    trace = [span for span in collector.spans if span.trace_id == start.trace_id]
    names = {(span.service, span.name) for span in trace}
    assert ("loopline-api", "StartWorkflow:Run") in names, names
    assert ("loopline-worker", "RunWorkflow:Run") in names, names
    assert ("loopline-worker", "RunActivity:agent_step") in names, names
    assert ("loopline-worker", "RunActivity:evaluate") in names, names
