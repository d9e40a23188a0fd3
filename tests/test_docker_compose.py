"""docker-compose.yml stays in step with the settings and commands it relies on, and is
shaped for production: health checks, restarts, workers that scale."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from loopline.settings import Settings
from workers.cli import build_parser

COMPOSE = Path(__file__).parent.parent / "docker-compose.yml"
# Read by the SDKs inside the containers, not by Loopline's settings.
SDK_VARIABLES = {
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
}
LONG_RUNNING = {"postgres", "temporal", "temporal-ui", "api", "worker", "minio"}


def services() -> dict[str, dict[str, object]]:
    loaded: dict[str, dict[str, dict[str, object]]] = yaml.safe_load(COMPOSE.read_text())
    return loaded["services"]


def test_every_loopline_variable_is_a_setting() -> None:
    fields = {f"LOOPLINE_{name.upper()}" for name in Settings.model_fields} | SDK_VARIABLES
    for name in ("api", "worker"):
        environment = services()[name]["environment"]
        assert isinstance(environment, dict)
        assert set(environment) <= fields, set(environment) - fields
        assert environment["LOOPLINE_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_service_commands_are_loopline_commands() -> None:
    for name in ("api", "worker"):
        command = services()[name]["command"]
        assert isinstance(command, list) and command[0] == "loopline"
        build_parser().parse_args(command[1:])


def test_services_restart_report_health_and_workers_scale() -> None:
    for name in LONG_RUNNING:
        service = services()[name]
        assert service.get("restart") == "unless-stopped", name
        assert "healthcheck" in service, name
    assert "ports" not in services()["worker"], "published ports stop --scale worker=N"
    assert services()["minio"]["profiles"] == ["s3"], "S3 storage is optional"


def _compose_command() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(
    _compose_command() is None,
    reason="neither the docker compose plugin nor docker-compose is installed (.ci/run "
    "installs Debian's docker-compose)",
)
@pytest.mark.parametrize("profile", [[], ["--profile", "s3"]], ids=["default", "s3"])
def test_docker_compose_accepts_the_file(profile: list[str]) -> None:
    compose = _compose_command()
    assert compose is not None
    # The file refuses to start without a sealing key; any value satisfies `config`.
    environment = {**os.environ, "LOOPLINE_SECRET_KEY": "test-key"}
    command = [*compose, "-f", str(COMPOSE), *profile, "config", "--quiet"]
    subprocess.run(command, check=True, env=environment)
