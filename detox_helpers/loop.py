"""What a training loop, PPO's (notebook 04) or RLOO's (notebook 06), needs and teaches nothing:
the plan checked before the long work, and each step seeded, timed and shown on a progress bar.
The loops themselves are the notebooks'.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from .errors import DetoxError
from .generation import time_estimate
from .locks import check_free
from .settings import Settings
from .writes import check_writable


def check_plan(settings: Settings, steps: int, train_rows: int | None = None,
               rloo_k: int | None = None) -> int:
    """Before any long work: at least one step; for RLOO, `rloo_k` dividing batch_size (RLOO
    draws as many summaries a step as PPO, as prompts x k); a batch the train split can fill
    (where the caller knows its `train_rows`); a run folder that can be written and that no
    other command is writing. Returns the prompts a step takes."""
    if steps < 1:
        raise DetoxError(f"--max-steps (max_steps) is {steps}: train at least 1 step.")
    if rloo_k and settings.batch_size % rloo_k:
        raise DetoxError(f"rloo_k={rloo_k} must divide batch_size={settings.batch_size}"
                         ": set rloo_k (DETOX_RLOO_K) to a divisor, e.g. 2 or 4.")
    prompts = settings.batch_size // (rloo_k or 1)
    if train_rows is not None and train_rows < prompts:
        raise DetoxError(f"The train split has {train_rows} prompts, fewer than batch_size="
                         f"{settings.batch_size}{f' / rloo_k={rloo_k}' if rloo_k else ''}; "
                         "lower batch_size.")
    check_writable(settings.layout.root)
    check_free(settings.layout)
    return prompts


def steps(settings: Settings, history: list, total: int, desc: str, after_step=None,
          shown: bool = True):
    """`for step in steps(settings, history, total, "RLOO"):` the steps from the first not yet
    in `history` (so a resumed run goes on where it stopped) to `total`; the loop body appends
    one row per step. Before each step, torch's and numpy's seeds set by (seed, step)
    (sampling, LoRA dropout, trl's mini-batch shuffle), so that a resumed run repeats an
    uninterrupted one; after it, the step's time in the row's `seconds`, then `after_step()`.
    A progress bar (where `shown`: one process of several shows it), and after the first step
    the time the rest will take."""
    from tqdm.auto import tqdm

    done_before = len(history)
    bar = tqdm(total=total, initial=done_before, desc=desc, disable=not shown)
    try:
        while len(history) < total:
            step, started = len(history), time.perf_counter()
            torch.manual_seed(settings.seed + step)
            np.random.seed(settings.seed + step)
            yield step
            if len(history) != step + 1:
                raise RuntimeError("each step of the loop appends one row to history")
            history[-1]["seconds"] = time.perf_counter() - started
            bar.update(1)
            if step == done_before and shown:  # the pace, timed
                bar.write(time_estimate(f"{desc} steps", history[-1]["seconds"], 1,
                                        total - done_before))
            if after_step:
                after_step()
    finally:
        bar.close()
