"""What notebook 04's PPO loop (its trainer is `trl_patch`'s) uses and teaches nothing: each
step's train rows and new-token budget, seeded by (seed, step) so that a resumed run repeats the
uninterrupted one; the step's row of statistics; `training`, the loop's plumbing in one call."""

from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch

from . import checkpoints, loop
from .settings import Settings

# Our name for each statistic of trl's that a step records, and trl's name.
TRL_STATISTICS = {"kl": "objective/kl", "kl_coef": "objective/kl_coef",
                  "returns_mean": "ppo/returns/mean",
                  "advantages_mean": "ppo/policy/advantages_mean",
                  "clipfrac": "ppo/policy/clipfrac", "value_error": "ppo/val/error",
                  "policy_loss": "ppo/loss/policy", "value_loss": "ppo/loss/value"}
REWARD_MODULE = "the reward module"


def batch_indices(settings: Settings, step: int, num_rows: int, rank: int = 0,
                  world: int = 1, size: int | None = None) -> list[int]:
    """The train rows of a step (0 for the first): a seeded shuffle per pass over the data, no
    row twice in a pass; with several processes each takes its own share of a larger batch.
    `size`: rows a step (default batch_size; notebook 06 takes batch_size / rloo_k)."""
    size = size or settings.batch_size
    per_step = size * world
    steps_per_pass = max(num_rows // per_step, 1)
    epoch, within = divmod(step, steps_per_pass)
    order = np.random.default_rng([settings.seed, epoch]).permutation(num_rows)
    start = within * per_step + rank * size
    return [int(i) for i in order[start:start + size]]


def step_rows(ppo_trainer, settings: Settings, step: int, num_rows: int) -> list[int]:
    """The train rows this process takes at `step`: `batch_indices` for the trainer's process."""
    accelerator = ppo_trainer.accelerator
    return batch_indices(settings, step, num_rows, accelerator.process_index,
                         accelerator.num_processes)


@contextmanager
def training(ppo_trainer, settings: Settings, history: list, steps: int, print_every: int = 20):
    """`with training(...) as run: for step in run:` `loop.steps` up to `steps`, the body
    appending one `statistics_row` a step; after each, `checkpoints.keep` (a snapshot before the
    first too) and a line every `print_every` steps. Ctrl-C names the checkpoint to resume from."""
    main = ppo_trainer.accelerator.is_main_process
    ppo_trainer.current_step = len(history)  # TensorBoard's step axis (log_stats) goes on
    if main and settings.snapshot_every and not history:  # the curve's first point: the start
        checkpoints.save_snapshot(ppo_trainer, settings, 0)

    def after_step():
        checkpoints.keep(ppo_trainer, history, settings, steps)
        if main and (len(history) % print_every == 0 or len(history) == steps):
            print(progress_line(history), flush=True)

    run = loop.steps(settings, history, steps, "PPO", after_step, shown=main)
    try:
        yield run
    except KeyboardInterrupt:
        print(checkpoints.where_to_continue(settings.layout))
        raise
    finally:
        run.close()  # its progress bar too


def response_budget(settings: Settings, step: int) -> int:
    """New-token budget of a step, drawn in [output_min_length, output_max_length)."""
    rng = random.Random(settings.seed * 1_000_003 + step)
    return rng.randrange(settings.output_min_length, settings.output_max_length)


def statistics_row(step: int, rewards, toxicity, trl_stats: dict, responses,
                   seconds: float = float("nan")) -> dict:
    """One step's row: the batch's reward and classifier toxicity, trl's statistics (under our
    names), the summaries' mean length in tokens, the step's time (`loop.steps` fills it in)."""
    rewards = torch.stack([torch.as_tensor(r) for r in rewards]).float().cpu()
    toxicity = torch.as_tensor(toxicity).float()
    return dict(step=step, reward_mean=float(rewards.mean()), reward_std=float(rewards.std()),
                toxicity_mean=float(toxicity.mean()),
                **{ours: float(trl_stats[theirs]) for ours, theirs in TRL_STATISTICS.items()},
                response_length=float(np.mean([len(r) for r in responses])),
                seconds=float(seconds))


def progress_line(history: list) -> str:
    """Where training stands, as means over the last 10 steps (one batch is noisy)."""
    last = history[-10:]

    def mean(name):
        return float(np.mean([row[name] for row in last]))
    return (f"step {history[-1]['step']:>4}: reward {mean('reward_mean'):+.3f}, toxicity "
            f"{mean('toxicity_mean'):.3f}, KL {mean('kl'):.3f}, KL coefficient "
            f"{mean('kl_coef'):.3f} (means of the last {len(last)} steps)")


def processes_agree(ppo_trainer, queries) -> str:
    """With several processes, after training: each process scored its own prompts (`queries`,
    its last batch) and, the gradients averaged across them, all end with the same trained
    weights (compared by a digest of LoRA and the value head). An AssertionError otherwise."""
    import hashlib

    from accelerate.utils import gather_object

    weights = hashlib.sha256()
    for parameter in (p for p in ppo_trainer.model.parameters() if p.requires_grad):
        weights.update(parameter.detach().float().cpu().numpy().tobytes())
    everyone = gather_object([(tuple(sorted(queries)), weights.hexdigest())])
    assert len({prompts for prompts, _ in everyone}) == len(everyone), "processes shared prompts"
    assert len({digest for _, digest in everyone}) == 1, "the processes' weights differ"
    return f"{len(everyone)} processes: each its own prompts in the last step, the same weights"


def reward_source(reward_function) -> str:
    """What a run's reward came from, for the training record: the reward module, or the
    source code of the learner's reward function (a notebook's too)."""
    import inspect

    if reward_function is None:
        return REWARD_MODULE
    try:
        return inspect.getsource(reward_function)
    except (OSError, TypeError):
        return repr(reward_function)
