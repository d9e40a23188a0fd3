"""Batch scores from the outcomes of its runs: counts, mean reward, success rate, pass@k."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from math import comb

from loopline.models import BatchScores, RunStatus, StatusCounts, TaskScore
from loopline.store.batches import RolloutOutcome

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
    longest = max((t.completed + t.failed for t in tasks), default=0)
    overall: dict[int, float] = {}
    for k in ks_for(longest):
        values = [t.pass_at_k[k] for t in tasks if k in t.pass_at_k]
        if values:
            overall[k] = sum(values) / len(values)
    return BatchScores(
        mean_reward=_mean_reward(outcomes),
        success_rate=_success_rate(outcomes),
        pass_at_k=overall,
        stop_reasons=_stop_reasons(outcomes),
        tasks=tasks,
    )


def _stop_reasons(outcomes: list[RolloutOutcome]) -> dict[str, int]:
    """How many ended runs stopped for each reason (empty replies and loops among them)."""
    return dict(sorted(Counter(o.stop_reason for o in outcomes if o.stop_reason).items()))


def _samples(outcomes: list[RolloutOutcome]) -> list[RolloutOutcome]:
    return [o for o in outcomes if o.status in {RunStatus.completed, RunStatus.failed}]


def _mean_reward(outcomes: list[RolloutOutcome]) -> float | None:
    rewards = [o.reward for o in outcomes if o.reward is not None]
    return sum(rewards) / len(rewards) if rewards else None


def _success_rate(outcomes: list[RolloutOutcome]) -> float | None:
    samples = _samples(outcomes)
    return sum(1 for o in samples if o.success) / len(samples) if samples else None


def _task_score(task: str, runs: list[RolloutOutcome]) -> TaskScore:
    counts = count_statuses(runs)
    samples = _samples(runs)
    n = len(samples)
    c = sum(1 for o in samples if o.success)
    return TaskScore(
        task=task,
        rollouts=counts.total,
        completed=counts.completed,
        failed=counts.failed,
        cancelled=counts.cancelled,
        mean_reward=_mean_reward(runs),
        success_rate=_success_rate(runs),
        pass_at_k={k: pass_at_k(n, c, k) for k in ks_for(n)},
        stop_reasons=_stop_reasons(runs),
    )
