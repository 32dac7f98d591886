"""What notebook 06's RLOO loop needs and teaches nothing: the plan checked before the long work,
each step seeded and timed with a progress bar, and the statistics and LoRA adapter written
whole. The loop itself, its loss and its leave-one-out baseline, is the notebook's."""

from __future__ import annotations

import shutil
import time
from contextlib import contextmanager

import pandas as pd
import torch

from .errors import DetoxError
from .generation import time_estimate
from .layout import partial, replace_folder, shown, write_atomically, writing
from .locks import check_free
from .settings import Settings


def check_plan(settings: Settings) -> int:
    """Before any long work: rloo_k must divide batch_size (RLOO draws as many summaries a step
    as PPO, as prompts x k), and no command may be writing this run's folder. Returns the
    prompts a step takes."""
    if settings.batch_size % settings.rloo_k:
        raise DetoxError(f"rloo_k={settings.rloo_k} must divide batch_size={settings.batch_size}"
                         ": set rloo_k (DETOX_RLOO_K) to a divisor, e.g. 2 or 4.")
    check_free(settings.layout)
    return settings.batch_size // settings.rloo_k


def steps(settings: Settings, history: list, total: int):
    """`for step in steps(settings, history, total):` steps 0 .. total - 1. Before each, torch's
    seed set by (seed, step) (the step's sampling and LoRA dropout); after it, the row the loop
    appended to `history` gets the step's time in `seconds`; a progress bar, and after the first
    step the time all of them will take."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="RLOO")
    try:
        for step in range(total):
            started = time.perf_counter()
            torch.manual_seed(settings.seed + step)
            yield step
            if len(history) != step + 1:
                raise RuntimeError("each step of the loop appends one row to history")
            history[-1]["seconds"] = time.perf_counter() - started
            bar.update(1)
            if step == 0:
                bar.write(time_estimate("RLOO steps", history[0]["seconds"], 1, total))
    finally:
        bar.close()


@contextmanager
def adapter_folder(settings: Settings, stats: pd.DataFrame):
    """`with adapter_folder(settings, stats) as folder: policy.save_pretrained(folder)`: the
    statistics written whole, the adapter into a scratch folder that is renamed into place when
    whole (a stop or a full disk leaves the previous adapter as it was)."""
    layout = settings.layout
    unfinished = partial(layout.rloo_adapter)
    shutil.rmtree(unfinished, ignore_errors=True)
    with writing(unfinished, f"the RLOO adapter {shown(layout.rloo_adapter)}"):
        write_atomically(layout.rloo_stats, stats.to_csv(index=False))
        yield unfinished
    replace_folder(unfinished, layout.rloo_adapter)
