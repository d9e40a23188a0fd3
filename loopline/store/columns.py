"""Column types for text that may hold any character a model or a caller sends.

PostgreSQL refuses a NUL byte in TEXT and VARCHAR, so a model reply holding one would fail
its write on every attempt. A value holding NUL is stored escaped behind a marker from the
Unicode private use area; every other value is stored as it is, so indexes, equality and
existing rows are untouched. JSON columns need nothing: PostgreSQL's `json` keeps `\\u0000`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_MARKER = "\ue000"
_ESCAPED = re.compile(f"{_MARKER}(.)", re.DOTALL)


def encode_nul(value: str) -> str:
    if "\x00" not in value and not value.startswith(_MARKER):
        return value
    return _MARKER + value.replace(_MARKER, _MARKER * 2).replace("\x00", _MARKER + "0")


def decode_nul(stored: str) -> str:
    if not stored.startswith(_MARKER):
        return stored
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), stored[1:])


class _NulSafe(TypeDecorator[str]):
    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else encode_nul(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else decode_nul(value)


class NulSafeString(_NulSafe):
    impl = String
    cache_ok = True


class NulSafeText(_NulSafe):
    impl = Text
    cache_ok = True
