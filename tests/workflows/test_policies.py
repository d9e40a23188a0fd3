"""Every activity a workflow runs is tried a bounded number of times, local ones included."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.common import RetryPolicy

from loopline.models import RemoteCallPolicy
from workflows.contract import policies

WORKFLOWS = Path(policies.__file__).parents[1]


def test_a_policy_that_would_retry_forever_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="bounded number of attempts"):
        policies.ActivityPolicy(timedelta(seconds=1), RetryPolicy(maximum_attempts=0))


def test_every_policy_has_bounded_attempts() -> None:
    remote = RemoteCallPolicy()
    made = [
        policies.callback(3),
        policies.remote_tool(remote),
        policies.lifecycle(remote),
        policies.lifecycle(None),
    ]
    named = [
        value for value in vars(policies).values() if isinstance(value, policies.ActivityPolicy)
    ]
    assert policies.LOCAL_STEP in named
    for policy in named + made:
        assert 1 <= policy.retry.maximum_attempts <= 30


def test_activities_are_started_only_through_the_policy_helper() -> None:
    starts = re.compile(r"\b(execute|start)_(local_)?activity\(")
    callers = {
        path.relative_to(WORKFLOWS).as_posix()
        for path in WORKFLOWS.rglob("*.py")
        if starts.search(path.read_text())
    }
    assert callers == {"calls.py"}
