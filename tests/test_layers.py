"""The layers hold: services import no web framework, dialects no store, SQL or Temporal,
and importing a workflow or the API loads only what it needs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        bad = sorted(
            module
            for module in imported_modules(path)
            if any(module == name or module.startswith(f"{name}.") for name in forbidden)
        )
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


def test_the_services_import_no_web_framework() -> None:
    assert offenders("api/services", ("fastapi", "starlette", "uvicorn")) == {}


def test_routes_and_dialects_reach_no_store_sql_or_temporal() -> None:
    forbidden = ("loopline.store", "sqlalchemy", "temporalio.client", "temporalio.service")
    assert offenders("api/http/routes", forbidden) == {}
    assert offenders("api/http/dialects", (*forbidden, "temporalio")) == {}


def test_workflows_import_no_activity_code() -> None:
    assert offenders("workflows", ("activities", "loopline.store", "api")) == {}


def loaded_by(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {name.partition(".")[0] for name in json.loads(done.stdout)}


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("workflows.run", {"openai", "anthropic", "sqlalchemy", "mcp", "cryptography", "httpx"}),
        ("workflows.batch", {"openai", "anthropic", "sqlalchemy", "mcp", "cryptography"}),
        ("api.app", {"openai", "anthropic", "mcp", "alembic"}),
        ("workers.worker", {"openai", "anthropic", "mcp"}),
    ],
)
def test_importing_loads_only_what_runs(module: str, absent: set[str]) -> None:
    assert loaded_by(module) & absent == set()


def test_the_readme_names_every_package() -> None:
    """README's Architecture section lists each package with its job."""
    section = (ROOT / "README.md").read_text().split("## Architecture", 1)[1].split("\n## ", 1)[0]
    packages = {
        str(init.parent.relative_to(ROOT))
        for top in ("activities", "api", "loopline", "workers", "workflows")
        for init in (ROOT / top).rglob("__init__.py")
        if "migrations" not in init.parts and "providers" not in init.parts
    }
    missing = sorted(
        name
        for name in packages
        if f"`{name}/`" not in section and f"`{name.rsplit('/', 1)[-1]}/`" not in section
    )
    assert missing == []
