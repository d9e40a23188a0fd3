"""docker-compose.yml stays in step with the settings and commands it relies on."""

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


def services() -> dict[str, dict[str, object]]:
    loaded: dict[str, dict[str, dict[str, object]]] = yaml.safe_load(COMPOSE.read_text())
    return loaded["services"]


PROVIDER_KEYS = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}


def test_every_loopline_variable_is_a_setting() -> None:
    fields = {f"LOOPLINE_{name.upper()}" for name in Settings.model_fields} | PROVIDER_KEYS
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


@pytest.mark.skipif(
    subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0
    if shutil.which("docker")
    else True,
    reason="the docker compose plugin is not installed on this machine",
)
def test_docker_compose_accepts_the_file() -> None:
    # The file refuses to start without a sealing key; any value satisfies `config`.
    environment = {**os.environ, "LOOPLINE_SECRET_KEY": "test-key"}
    command = ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"]
    subprocess.run(command, check=True, env=environment)
