"""Batch scores from run outcomes: the unbiased pass@k and what counts as a sample."""

from __future__ import annotations

from itertools import combinations

from loopline.models import RunStatus
from loopline.scoring import ks_for, pass_at_k, score
from loopline.store.batches import RolloutOutcome


def outcome(task: str, status: RunStatus, success: bool | None, reward: float | None = None):
    return RolloutOutcome(run_id="r", task=task, status=status, reward=reward, success=success)


def test_pass_at_k_is_the_share_of_k_subsets_with_a_success() -> None:
    for n in range(1, 7):
        for c in range(n + 1):
            samples = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(combinations(samples, k))
                exact = sum(any(s) for s in subsets) / len(subsets)
                assert abs(pass_at_k(n, c, k) - exact) < 1e-12, (n, c, k)


def test_failed_runs_count_as_misses_and_cancelled_ones_not_at_all() -> None:
    scores = score(
        [
            outcome("a", RunStatus.completed, True, 1.0),
            outcome("a", RunStatus.failed, None),
            outcome("a", RunStatus.cancelled, None),
            outcome("b", RunStatus.completed, False, 0.0),
            outcome("b", RunStatus.running, None),
        ]
    )
    a, b = scores.tasks
    assert (a.completed, a.failed, a.cancelled, a.rollouts) == (1, 1, 1, 3)
    assert a.success_rate == 0.5 and a.pass_at_k == {1: 0.5, 2: 1.0}
    assert b.pass_at_k == {1: 0.0}
    # pass@2 is averaged only over tasks that have two ended rollouts.
    assert scores.pass_at_k == {1: 0.25, 2: 1.0}
    assert scores.success_rate == 1 / 3 and scores.mean_reward == 0.5


def test_large_batches_report_pass_at_k_for_a_readable_set_of_k() -> None:
    assert ks_for(3) == [1, 2, 3]
    assert ks_for(100) == [*range(1, 17), 32, 64, 100]


def test_stop_reasons_are_counted_per_batch_and_per_task() -> None:
    def ended(task: str, reason: str) -> RolloutOutcome:
        return RolloutOutcome(
            run_id="r",
            task=task,
            status=RunStatus.completed,
            reward=0.0,
            success=False,
            stop_reason=reason,
        )

    scores = score(
        [
            ended("a", "empty_reply"),
            ended("a", "repeated_tool_call"),
            ended("b", "repeated_tool_call"),
            outcome("b", RunStatus.running, None),
        ]
    )
    assert scores.stop_reasons == {"empty_reply": 1, "repeated_tool_call": 2}
    by_task = {task.task: task.stop_reasons for task in scores.tasks}
    assert by_task == {
        "a": {"empty_reply": 1, "repeated_tool_call": 1},
        "b": {"repeated_tool_call": 1},
    }
