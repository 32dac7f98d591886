"""Figures the notebooks and the report share."""

from __future__ import annotations

import matplotlib.pyplot as plt


def plot_length_distribution(lengths, min_chars: int, max_chars: int, ax=None):
    """Histogram of dialogue lengths with the kept window (min, max] shaded."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(lengths, bins=40, color="#4c72b0", alpha=0.85)
    ax.axvspan(min_chars, max_chars, color="#55a868", alpha=0.15,
               label=f"kept: {min_chars} < length <= {max_chars}")
    ax.set_xlabel("dialogue length (characters)")
    ax.set_ylabel("dialogues")
    ax.legend(loc="upper right")
    return ax


def plot_toxicity_distribution(evaluations: dict, column: str = "toxicity", ax=None):
    """Histogram of per-summary toxicity, one outline per named evaluation, on a log count axis
    (most summaries sit near 0; the toxic tail is what matters)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    bins = [i / 20 for i in range(21)]
    for name, per_sample in evaluations.items():
        ax.hist(per_sample[column], bins=bins, histtype="step", linewidth=2, label=name)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1, label="toxic threshold (0.5)")
    ax.set_yscale("log")
    ax.set_xlabel(f"{column.replace('_', ' ')} (probability of 'hate')")
    ax.set_ylabel("summaries")
    ax.legend(loc="upper center")
    return ax


def plot_label_logits(table, ax=None):
    """Bar chart of each text's `nothate` and `hate` logits (table: rows = texts)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    table[["nothate logit", "hate logit"]].plot.barh(ax=ax, color=["#55a868", "#c44e52"])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("logit")
    return ax


def _two_scales(ax, steps, first, second):
    """One series on `ax`, another on a twin y axis; each is (values, label, ylabel, style)."""
    twin = ax.twinx()
    for axis, (values, label, ylabel, style), corner in ((ax, first, "upper left"),
                                                         (twin, second, "upper right")):
        axis.plot(steps, values, label=label, **style)
        axis.set_ylabel(ylabel)
        axis.legend(loc=corner)
    ax.set_xlabel("PPO step")
    return twin


def plot_training(stats, axes=None):
    """Reward (mean, one-std band) and batch toxicity; KL and its coefficient; by PPO step."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    reward_ax, kl_ax = axes
    steps = stats["step"]
    toxicity_ax = _two_scales(
        reward_ax, steps,
        (stats["reward_mean"], "reward (mean)", "reward (nothate logit)", {"color": "#55a868"}),
        (stats["toxicity_mean"], "batch toxicity", "toxicity (mean P(hate))",
         {"color": "#c44e52", "linestyle": "--"}))
    reward_ax.fill_between(steps, stats["reward_mean"] - stats["reward_std"],
                           stats["reward_mean"] + stats["reward_std"], color="#55a868",
                           alpha=0.15)
    toxicity_ax.set_ylim(0, 1)
    _two_scales(kl_ax, steps,
                (stats["kl"], "KL to the instruct model", "objective/kl", {"color": "#4c72b0"}),
                (stats["kl_coef"], "KL coefficient", "KL coefficient",
                 {"color": "grey", "linestyle": ":"}))
    return axes


def plot_per_prompt(before, after, ax=None):
    """Each test prompt's mean toxicity before (x) against after (y); below the diagonal the
    prompt's summaries became less toxic."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(before, after, alpha=0.6, color="#4c72b0")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="no change")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("toxicity before (mean over samples)")
    ax.set_ylabel("toxicity after")
    ax.legend(loc="upper left")
    return ax
