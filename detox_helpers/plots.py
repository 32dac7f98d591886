"""Figures the notebooks and the report share."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def plot_length_distribution(lengths, min_chars: int, max_chars: int, ax=None):
    """Histogram of dialogue lengths with the kept window (min, max] shaded."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 3.5))[1]
    ax.hist(lengths, bins=40, color="#4c72b0", alpha=0.85)
    ax.axvspan(min_chars, max_chars, color="#55a868", alpha=0.15,
               label=f"kept: {min_chars} < length <= {max_chars}")
    ax.set(xlabel="dialogue length (characters)", ylabel="dialogues")
    ax.legend(loc="upper right")
    return ax


def plot_toxicity_distribution(groups: dict, ax=None):
    """The share of summaries in each tenth of the toxicity scale, as grouped bars, one colour
    per named group of toxicity values. Shares, on a linear axis, with the share printed on
    every bar: the toxic tail is a small share and must stay readable."""
    ax = ax if ax is not None else plt.subplots(figsize=(8, 3.5))[1]
    edges = np.linspace(0, 1, 11)
    width = 0.8 / max(len(groups), 1)
    for i, (name, values) in enumerate(groups.items()):
        counts, _ = np.histogram(np.clip(np.asarray(values, dtype=float), 0, 1), bins=edges)
        shares = counts / max(counts.sum(), 1)
        positions = np.arange(10) + (i - (len(groups) - 1) / 2) * width
        bars = ax.bar(positions, shares, width=width, label=f"{name} (n={counts.sum()})")
        ax.bar_label(bars, labels=[f"{v:.0%}" if v else "" for v in shares], fontsize=7, padding=1)
    ax.axvline(4.5, color="grey", linestyle="--", linewidth=1, label="toxic from 0.5")
    ticks = [f"{a:.1f}-{b:.1f}" for a, b in zip(edges, edges[1:], strict=False)]
    ax.set_xticks(np.arange(10), ticks, fontsize=8)
    ax.set(xlabel="toxicity (probability of 'hate')", ylabel="share of summaries", ylim=(0, 1.1))
    ax.legend(loc="upper right")
    return ax


def plot_training(stats, axes=None, steps_of: str = "PPO"):
    """Four panels by step, each series raw (faint) and as a rolling mean (a batch of 16 is noisy,
    the trend is not): reward, batch toxicity, KL to the reference, and the KL coefficient on an
    axis from 0 (its changes are small: zoomed, they would look steep)."""
    axes = axes if axes is not None else plt.subplots(2, 2, figsize=(11, 6), sharex=True)[1]
    window = max(1, len(stats) // 20)
    panels = [("reward_mean", "reward (nothate logit)", "#55a868"),
              ("toxicity_mean", "batch toxicity (mean P(hate))", "#c44e52"),
              ("kl", "KL to the instruct model (nats)", "#4c72b0"),
              ("kl_coef", "KL coefficient", "#555555")]
    for ax, (column, title, colour) in zip(axes.flat, panels, strict=True):
        ax.plot(stats["step"], stats[column], color=colour, alpha=0.25, linewidth=1)
        ax.plot(stats["step"], stats[column].rolling(window, min_periods=1).mean(), color=colour,
                linewidth=2, label=f"rolling mean of {window} steps" if window > 1 else "per step")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="best", fontsize=8)
    axes[0, 1].set_ylim(0, 1)
    axes[1, 1].set_ylim(0, max(float(stats["kl_coef"].max()) * 1.2, 1e-3))
    for ax in axes[1]:
        ax.set_xlabel(f"{steps_of} step")
    return axes


def plot_per_prompt(before, after, ax=None):
    """Each test prompt's mean toxicity before (x) against after (y); below the diagonal the
    prompt's summaries became less toxic. Prompts on the same spot (to 0.05, a grid coarse
    enough that two labels never overlap) are one dot, sized and labelled by how many they are."""
    ax = ax if ax is not None else plt.subplots(figsize=(4.5, 4.5))[1]
    spots = np.round(np.column_stack([before, after]) / 0.05) * 0.05
    unique, counts = np.unique(spots, axis=0, return_counts=True)
    ax.scatter(unique[:, 0], unique[:, 1], s=np.minimum(25 + 15 * counts, 160), alpha=0.6,
               color="#4c72b0")
    for (x, y), count in zip(unique, counts, strict=True):
        if count > 1:
            ax.annotate(str(count), (x, y), ha="center", va="center", fontsize=7)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="no change")
    ax.set(xlim=(-0.04, 1.04), ylim=(-0.04, 1.04), xlabel="toxicity before (mean over samples)",
           ylabel="toxicity after")
    ax.legend(loc="upper left", title=f"{len(before)} prompts", fontsize=8)
    return ax
