"""Workflow modules are compiled once per worker process, though the sandbox runs them
afresh for every run (workers/compiled.py)."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from pathlib import Path
from types import CodeType

import pytest
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import _Definition

from workers.compiled import CompiledOnce, compile_once
from workflows.run import RunWorkflow


def test_a_module_imported_afresh_runs_the_code_compiled_the_first_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "flow_once.py"
    source.write_text("VALUE = 1\n\ndef step() -> int:\n    return VALUE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", [CompiledOnce({"flow_once"}), *sys.meta_path])
    monkeypatch.setattr(sys, "dont_write_bytecode", True)

    first = importlib.import_module("flow_once")
    del sys.modules["flow_once"]
    second = importlib.import_module("flow_once")
    assert second is not first
    assert second.step.__code__ is first.step.__code__

    # A changed file is compiled again.
    del sys.modules["flow_once"]
    source.write_text("VALUE = 2\n\ndef step() -> int:\n    return VALUE\n")
    assert importlib.import_module("flow_once").step() == 2


async def test_the_sandbox_compiles_the_run_workflow_once_for_many_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    compiled: list[str] = []
    compile_source = importlib.machinery.SourceFileLoader.source_to_code

    def counting(
        loader: importlib.machinery.SourceFileLoader, data: bytes, path: str, **options: int
    ) -> CodeType:
        compiled.append(path)
        return compile_source(loader, data, path, **options)

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "source_to_code", counting)
    compile_once([RunWorkflow])
    runner = SandboxedWorkflowRunner()
    definition = _Definition.must_from_class(RunWorkflow)
    for _ in range(3):  # each creates a sandboxed instance, importing the module afresh
        runner.prepare_workflow(definition)
    assert [path for path in compiled if path.endswith("workflows/run.py")] in (
        [],  # read from a bytecode file written before
        [str(Path(sys.modules[RunWorkflow.__module__].__file__ or ""))],
    )
