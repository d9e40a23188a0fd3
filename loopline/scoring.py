"""Batch scores from the outcomes of its runs: counts, mean reward, success rate, pass@k."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from math import comb

from loopline.catalog import RolloutOutcome
from loopline.models import BatchScores, RunStatus, StatusCounts, TaskScore

ACTIVE = {RunStatus.running, RunStatus.awaiting_input, RunStatus.idle}
# pass@k is reported for every k up to this many rollouts, then for powers of two and n.
EVERY_K_UP_TO = 16


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimator of Chen et al. (2021): the chance that at least one of k
    rollouts drawn without replacement from n, of which c succeeded, succeeded."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def ks_for(n: int) -> list[int]:
    if n <= EVERY_K_UP_TO:
        return list(range(1, n + 1))
    powers = [2**i for i in range(n.bit_length()) if 2**i < n]
    return sorted({*range(1, EVERY_K_UP_TO + 1), *powers, n})


def count_statuses(outcomes: Iterable[RolloutOutcome]) -> StatusCounts:
    counts = StatusCounts()
    for outcome in outcomes:
        counts.total += 1
        if outcome.status in ACTIVE:
            counts.running += 1
        else:
            setattr(counts, outcome.status.value, getattr(counts, outcome.status.value) + 1)
    return counts


def score(outcomes: list[RolloutOutcome]) -> BatchScores:
    """Scores of a batch. A run that ended completed or failed is a sample (failed ones
    did not succeed); cancelled and unfinished runs are left out."""
    by_task: dict[str, list[RolloutOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_task[outcome.task or "-"].append(outcome)
    tasks = [_task_score(task, runs) for task, runs in by_task.items()]
    rewards = [o.reward for o in outcomes if o.reward is not None]
    samples = [o for o in outcomes if _is_sample(o)]
    successes = sum(1 for o in samples if o.success)
    longest = max((t.completed + t.failed for t in tasks), default=0)
    overall: dict[int, float] = {}
    for k in ks_for(longest):
        values = [t.pass_at_k[k] for t in tasks if k in t.pass_at_k]
        if values:
            overall[k] = sum(values) / len(values)
    return BatchScores(
        mean_reward=sum(rewards) / len(rewards) if rewards else None,
        success_rate=successes / len(samples) if samples else None,
        pass_at_k=overall,
        tasks=tasks,
    )


def _is_sample(outcome: RolloutOutcome) -> bool:
    return outcome.status in {RunStatus.completed, RunStatus.failed}


def _task_score(task: str, runs: list[RolloutOutcome]) -> TaskScore:
    counts = count_statuses(runs)
    samples = [o for o in runs if _is_sample(o)]
    n = len(samples)
    c = sum(1 for o in samples if o.success)
    rewards = [o.reward for o in runs if o.reward is not None]
    return TaskScore(
        task=task,
        rollouts=counts.total,
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled,
        mean_reward=sum(rewards) / len(rewards) if rewards else None,
        success_rate=c / n if n else None,
        pass_at_k={k: pass_at_k(n, c, k) for k in ks_for(n)},
    )
