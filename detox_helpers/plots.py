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
