"""What PPO's loop (notebook 04) and RLOO's (notebook 06) need and teach nothing: the plan
checked before the long work; each step seeded, timed and shown on a progress bar."""

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
    """Before any long work: at least one step; for RLOO, `rloo_k` dividing batch_size (as many
    summaries a step as PPO, as prompts x k); a batch `train_rows` can fill (where given); a
    writable run folder no other command is writing. Returns the prompts a step takes."""
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
    """`for step in steps(settings, history, total, "RLOO"):` from the first step not in
    `history` (a resumed run goes on) to `total`; the body appends one row a step. Each step
    seeded by (seed, step) (torch: sampling, LoRA dropout; numpy: trl's mini-batch shuffle), so
    a resumed run repeats an uninterrupted one; then its time in the row's `seconds`, and
    `after_step()`. A progress bar where `shown`, and after the first step the time left."""
    from tqdm.auto import tqdm

    done_before = len(history)
    with tqdm(total=total, initial=done_before, desc=desc, disable=not shown) as bar:
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
