"""Settings read from LOOPLINE_* variables."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from loopline.settings import DEFAULT_ENVIRONMENT_MODULES, Settings


def test_added_environment_modules_keep_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPLINE_ENVIRONMENT_MODULES", raising=False)
    monkeypatch.setenv("LOOPLINE_EXTRA_ENVIRONMENT_MODULES", "mine.bank, environments.trivia")
    assert Settings().served_environment_modules() == [*DEFAULT_ENVIRONMENT_MODULES, "mine.bank"]
    monkeypatch.setenv("LOOPLINE_ENVIRONMENT_MODULES", "environments.chat")
    assert Settings().served_environment_modules() == [
        "environments.chat",
        "mine.bank",
        "environments.trivia",
    ]


def test_sqlite_synchronous_takes_full_or_normal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOOPLINE_SQLITE_SYNCHRONOUS", raising=False)
    assert Settings().sqlite_synchronous == "full"
    monkeypatch.setenv("LOOPLINE_SQLITE_SYNCHRONOUS", "normal")
    assert Settings().sqlite_synchronous == "normal"
    monkeypatch.setenv("LOOPLINE_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValidationError, match="'full' or 'normal'"):
        Settings()
