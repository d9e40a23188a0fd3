"""Process logging: one JSON object per line, naming the run and workflow a record is about.

Workflow and activity loggers of the Temporal SDK attach their context as `temporal_workflow`
and `temporal_activity` extras; API routes attach `run_id`. A log shipper can then select
every line of one run across the API and all workers.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from temporalio import activity, workflow

from loopline.redaction import HELD, ScrubbingFilter
from workflows.contract.names import run_id_of

LogFormat = Literal["json", "text"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name == "temporal_workflow":
                entry.update(_workflow_fields(value))
            elif name == "temporal_activity":
                entry.update(_activity_fields(value))
            elif name not in _STANDARD_ATTRIBUTES:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def _workflow_fields(details: dict[str, Any]) -> dict[str, Any]:
    return {
        **_run_fields(details.get("workflow_id", ""), details.get("run_id")),
        "workflow_type": details.get("workflow_type"),
    }


def _activity_fields(details: dict[str, Any]) -> dict[str, Any]:
    return {
        **_run_fields(details.get("workflow_id", ""), details.get("workflow_run_id")),
        "activity": details.get("activity_type"),
        "attempt": details.get("attempt"),
    }


def _run_fields(workflow_id: str, temporal_run_id: str | None) -> dict[str, Any]:
    return {**_run_id(workflow_id), "workflow_id": workflow_id, "temporal_run_id": temporal_run_id}


def _run_id(workflow_id: str) -> dict[str, str]:
    run_id = run_id_of(workflow_id)
    return {} if run_id is None else {"run_id": run_id}


def configure_logging(level: str, log_format: LogFormat, *, log_file: Path | None = None) -> None:
    """Log records of `level` and above to stderr; with `log_file`, to that file instead,
    and only warnings and errors to stderr (a terminal shows what needs a look)."""
    json_lines = log_format == "json"
    formatter = JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
    terminal = logging.StreamHandler()
    handlers: list[logging.Handler] = [terminal]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
        terminal.setLevel(logging.WARNING)
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(ScrubbingFilter(HELD))
    logging.basicConfig(level=level, handlers=handlers, force=True)
    # One INFO line per HTTP request the SDKs make: noise, and it names provider URLs.
    # Alembic names each of its plugins at every start; its migration lines stay.
    for chatty in ("httpx", "httpx2", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    # The JSON carries the SDK's context as fields; keep it out of the message text.
    workflow.logger.workflow_info_on_message = not json_lines
    activity.logger.activity_info_on_message = not json_lines
