"""Honest numbers: 95% bootstrap intervals, and paired before/after differences. Resampling is
over prompts: a prompt's k samples are not independent of each other, so they travel together."""

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


# --- reward over-optimisation (notebook 07): Gao, Schulman and Hilton 2022's form for RL ---

def gao_fit(kl, gold) -> tuple[float, float, float]:
    """(g0, a, b) of gold = g0 + a sqrt(d) - b d, least squares over the points (d: the KL to
    the reference, one per point; a KL estimate below zero counts as zero)."""
    d = np.clip(np.asarray(kl, dtype=float), 0, None)
    design = np.column_stack([np.ones_like(d), np.sqrt(d), -d])
    (g0, a, b), *_ = np.linalg.lstsq(design, np.asarray(gold, dtype=float), rcond=None)
    return float(g0), float(a), float(b)


def peak_kl(a: float, b: float) -> float:
    """Where g0 + a sqrt(d) - b d peaks: (a / 2b)^2; 0 where it falls from the start (a <= 0),
    infinity where it never turns down (b <= 0)."""
    if b <= 0:
        return float("inf")
    return (a / (2 * b)) ** 2 if a > 0 else 0.0


def peak_interval(kl_per_prompt, gold_per_prompt, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """The fit's peak and its 95% bootstrap interval over prompts. Both inputs are [prompts,
    points] (a prompt's KL and gold at each point, its k samples reduced); each draw resamples
    the prompts, averages every point over them and fits again. `supported`: the whole interval
    lies inside the measured KL range, so the points show a peak rather than extrapolate one."""
    kl, gold = (np.asarray(x, dtype=float) for x in (kl_per_prompt, gold_per_prompt))
    if kl.shape != gold.shape or kl.ndim != 2:
        raise ValueError(f"need [prompts, points] arrays of one shape: {kl.shape}, {gold.shape}")

    def peak(rows):
        return peak_kl(*gao_fit(kl[rows].mean(axis=0), gold[rows].mean(axis=0))[1:])
    rng = np.random.default_rng(seed)
    draws = [peak(rng.integers(0, len(kl), len(kl))) for _ in range(n_boot)]
    tail = (1 - LEVEL) / 2
    # an observed draw at each end: a draw may be infinite (no turn), where interpolating fails
    low, high = np.quantile(draws, [tail, 1 - tail], method="inverted_cdf")
    measured = kl.mean(axis=0)
    g0, a, b = gao_fit(measured, gold.mean(axis=0))
    return dict(g0=g0, a=a, b=b, peak=peak_kl(a, b), low=float(low), high=float(high),
                n=len(kl), supported=bool(0 < low and high <= measured.max()))
