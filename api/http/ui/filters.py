"""How the viewer's templates write numbers, times and JSON values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from jinja2 import Environment

# What a value that is not known yet reads as.
UNKNOWN = "\N{EN DASH}"


def when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def milliseconds(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def dollars(value: float | None) -> str:
    if not value:
        return "$0"
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def score(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:.3g}"


def percent(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value * 100:.0f}%"


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def short(value: str | None, length: int = 12) -> str:
    return "" if value is None else value[:length]


def install_filters(env: Environment) -> None:
    env.filters.update(
        when=when,
        ms=milliseconds,
        dollars=dollars,
        score=score,
        percent=percent,
        as_json=as_json,
        short=short,
    )
