"""Honest numbers: 95% bootstrap intervals, and paired before/after differences.

Resampling is over prompts: the k samples of one prompt are not independent of each other, so
they travel together.
"""

from __future__ import annotations

import numpy as np

N_BOOT = 2000
LEVEL = 0.95


def bootstrap(per_prompt: np.ndarray, statistic, n_boot: int = N_BOOT, seed: int = 0):
    """(estimate, low, high): `statistic` of a [prompts, ...] array and its percentile interval."""
    per_prompt = np.asarray(per_prompt, dtype=float)
    if len(per_prompt) == 0:
        raise ValueError("no values to summarise")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_prompt), size=(n_boot, len(per_prompt)))
    draws = np.array([statistic(per_prompt[p]) for p in picks])
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(statistic(per_prompt)), float(low), float(high)


def paired_difference(before: np.ndarray, after: np.ndarray, seed: int = 0) -> dict:
    """Mean of after - before over the same prompts, its paired interval, and whether it
    excludes zero. Inputs hold one number per prompt (a figure's k samples already reduced, as
    evaluation.figure_values gives them), in the same prompt order."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.shape != after.shape:
        raise ValueError(f"paired comparison needs the same prompts: {before.shape} vs "
                         f"{after.shape}")
    diff, low, high = bootstrap(after - before, np.mean, seed=seed)
    return dict(n=len(before), before=float(before.mean()), after=float(after.mean()),
                difference=diff, low=low, high=high, excludes_zero=bool(low > 0 or high < 0))
