"""Nothing lost, nothing stale: checkpoints, the final adapter and its record, earlier runs,
and notebook 06's RLOO adapter.

A state file holds data only (`torch.load(weights_only=True)`: someone else's checkpoint cannot
run code). Folders are written under a `.partial` name and renamed when whole. The functions
take notebook 04's `ppo_trainer` and `history` (a row per step).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from .errors import DetoxError, SettingsMismatch, first_line
from .layout import ADAPTER_WEIGHTS, PARTIAL, REPLACED, Layout, shown
from .locks import check_free
from .models import weights_precision
from .settings import Settings
from .writes import file_digest, finish_replacing, size_of, write_atomically, written_whole

STATE_FILE = "state.pt"
VALUE_HEAD_FILE = "value_head.safetensors"
# Settings that do not change what a step computes: a run may be continued with other values.
FREE_TO_CHANGE = {"max_ppo_steps", "checkpoint_every", "device", "artifacts_dir", "precision",
                  "eval_max_new_tokens", "eval_size", "eval_samples_per_prompt",
                  "eval_batch_size", "qualitative_rows", "sft_steps", "sft_learning_rate",
                  "sft_batch_size", "generation_cache", "run_name",
                  "toxic_labels",  # toxicity is recorded, never trained on
                  "rloo_k",        # notebook 06's
                  "snapshot_every", "curve_prompts"}  # notebook 07's


def training_settings(settings: Settings) -> dict:
    return {name: value for name, value in dataclasses.asdict(settings).items()
            if name not in FREE_TO_CHANGE}


def _plain_rng_states() -> dict:
    """The three random states as tensors, lists and numbers (no numpy objects to unpickle)."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    version, python_state, gauss = random.getstate()
    return dict(torch=torch.get_rng_state(),
                numpy=[kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
                python=[version, list(python_state), gauss])


def _restore_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    version, python_state, gauss = states["python"]
    random.setstate((version, tuple(python_state), gauss))


def value_model(ppo_trainer):
    """trl's value-head model, unwrapped from Accelerate's multi-process wrapper if any; its
    `pretrained_model` is the PEFT policy."""
    return ppo_trainer.accelerator.unwrap_model(ppo_trainer.model)


def save_checkpoint(ppo_trainer, history: list, settings: Settings, keep: int = 2) -> Path:
    """Write the run's state as a whole checkpoint; keep the newest `keep`."""
    layout = settings.layout
    folder = layout.checkpoint(len(history))
    model = value_model(ppo_trainer)
    earlier = layout.checkpoints()  # as large as this one: the same tensors, a shorter history
    with written_whole(folder, f"the checkpoint {shown(folder)}",
                       needed=size_of(earlier[-1]) if earlier else None) as unfinished:
        model.pretrained_model.save_pretrained(str(unfinished / "adapter"))
        torch.save(dict(value_head=model.v_head.state_dict(),
                        optimizer=ppo_trainer.optimizer.state_dict(),
                        kl_coef=float(ppo_trainer.kl_ctl.value), rng=_plain_rng_states(),
                        history=list(history), settings=training_settings(settings)),
                   unfinished / STATE_FILE)
    for old in layout.checkpoints()[:-keep]:
        shutil.rmtree(old)
    return folder


def keep(ppo_trainer, history: list, settings: Settings, total: int) -> None:
    """After each step, in the main process: the statistics file, a checkpoint every
    `checkpoint_every` steps and a snapshot every `snapshot_every`, both at the last step too."""
    if ppo_trainer.accelerator.is_main_process:
        write_stats(history, settings.layout)
        done = len(history)
        if done % settings.checkpoint_every == 0 or done == total:
            save_checkpoint(ppo_trainer, history, settings)
        if settings.snapshot_every and (done % settings.snapshot_every == 0 or done == total):
            save_snapshot(ppo_trainer, settings, done)


def save_snapshot(ppo_trainer, settings: Settings, step: int) -> Path:
    """The LoRA adapter after `step` steps (0: the start), peft's files written whole: a point of
    notebook 07's curve, never resumed from, so it holds no optimiser and every one is kept."""
    folder = settings.layout.snapshots_dir / f"step-{step:06d}"
    with written_whole(folder, f"the snapshot {shown(folder)}") as unfinished:
        value_model(ppo_trainer).pretrained_model.save_pretrained(str(unfinished))
    return folder


def snapshots(layout: Layout) -> dict[int, Path]:
    """A run's whole snapshots by step, earliest first; a DetoxError where the run kept none."""
    folders = sorted(p for p in layout.snapshots_dir.glob("step-*")
                     if p.is_dir() and not p.name.endswith((PARTIAL, REPLACED)))
    if not folders:
        raise DetoxError(f"No snapshots in {shown(layout.snapshots_dir)}: train the run with "
                         "snapshot_every above 0 (notebook 04, or `python -m detox_course train`).")
    return {int(folder.name.removeprefix("step-")): folder for folder in folders}


def read_state(folder: Path) -> dict:
    """A checkpoint's state file, as data only; a DetoxError naming the folder otherwise."""
    try:
        state = torch.load(folder / STATE_FILE, weights_only=True)
    except Exception as error:  # truncated, missing, or holding objects that could run code
        raise DetoxError(f"The checkpoint {folder} cannot be read safely "
                         f"({first_line(error)}).") from None
    missing = {"value_head", "optimizer", "kl_coef", "rng", "history", "settings"} - set(state)
    if missing or not (folder / "adapter" / ADAPTER_WEIGHTS).exists():
        lacking = ", ".join(sorted(missing)) or "its adapter weights"
        raise DetoxError(f"The checkpoint {folder} lacks {lacking}; was it made by another "
                         "version of the package?")
    return state


def load_checkpoint(ppo_trainer, settings: Settings, folder: Path) -> list:
    """Put a freshly built trainer into the state saved in `folder`; returns the history.
    Settings that change what the run computes are refused (SettingsMismatch)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = read_state(folder)
    saved, now = state["settings"], training_settings(settings)
    changed = sorted(name for name in now if saved.get(name) != now[name])
    if changed:
        details = ", ".join(f"{name}: {saved.get(name)!r} then, {now[name]!r} now"
                            for name in changed)
        raise SettingsMismatch(f"The checkpoint {folder} was made with other settings "
                               f"({details}). Resume with the same settings, or start a new "
                               "run without --resume.")
    model = value_model(ppo_trainer)
    try:
        set_peft_model_state_dict(model.pretrained_model,
                                  load_file(folder / "adapter" / ADAPTER_WEIGHTS))
        model.v_head.load_state_dict(state["value_head"])
        ppo_trainer.optimizer.load_state_dict(state["optimizer"])
    except Exception as error:  # truncated weights, or shapes that do not fit
        raise DetoxError(f"The checkpoint {folder} does not fit this run: "
                         f"{first_line(error)}") from None
    ppo_trainer.kl_ctl.value = state["kl_coef"]
    _restore_rng_states(state["rng"])
    return list(state["history"])


def resume_latest(ppo_trainer, settings: Settings, say=print) -> list:
    """The history of the newest whole checkpoint that loads, an unreadable one skipped (with a
    warning) for the one before; settings that differ are an error at once."""
    folders = settings.layout.checkpoints()
    if not folders:
        raise DetoxError(f"Nothing to resume: no checkpoint in "
                         f"{shown(settings.layout.checkpoints_dir)}. Start the run without "
                         "--resume (resume=False).")
    for folder in reversed(folders):
        try:
            history = load_checkpoint(ppo_trainer, settings, folder)
            say(f"resumed from step {len(history)} ({shown(folder)})")
            return history
        except DetoxError as error:
            if isinstance(error, SettingsMismatch) or folder == folders[0]:  # the oldest: no more
                raise
            say(f"warning: {error} Falling back to the checkpoint before it.")


def where_to_continue(layout: Layout) -> str:
    """What a stopped run can continue from, and how."""
    whole = layout.checkpoints()
    if not whole:
        return "Stopped before the first checkpoint: nothing to resume; start the run again."
    return (f"Stopped. The last whole checkpoint is {shown(whole[-1])}; continue with "
            "resume=True (`python -m detox_course train --resume`).")


def start_or_resume(ppo_trainer, settings: Settings, resume: bool, say=print) -> list:
    """Before the first step: the history of the newest checkpoint (`resume`), or an empty one,
    the previous run's folder (checkpoints, statistics, adapter) set aside whole, never deleted."""
    layout = settings.layout
    main = ppo_trainer.accelerator.is_main_process
    if main:
        check_free(layout)  # no other process is writing this run
        # what a stop while a checkpoint or the final adapter was replaced left: tidied
        for old in list(layout.checkpoints_dir.glob(f"*{REPLACED}")):
            finish_replacing(old.with_name(old.name.removesuffix(REPLACED)))
        finish_replacing(layout.final_adapter)
    if resume:
        return resume_latest(ppo_trainer, settings, say)
    # set aside only once the new run has started, so that a failed start loses nothing
    if main and layout.ppo_dir.exists() and any(layout.ppo_dir.iterdir()):
        aside = layout.previous_run(datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f"))
        aside.parent.mkdir(parents=True, exist_ok=True)
        layout.ppo_dir.rename(aside)
        say(f"the previous run was set aside in {shown(aside)}")
    return []


def write_stats(history: list, layout: Layout) -> None:
    import pandas as pd

    write_atomically(layout.stats_file, pd.DataFrame(history).to_csv(index=False))


@contextmanager
def final_adapter_folder(ppo_trainer, history: list, settings: Settings, reward: str):
    """Where the notebook saves the trained adapter (`policy.save_pretrained(folder)`): a scratch
    folder that gets the value head and the record of what made them (step count, settings, the
    reward's source, a digest of the statistics file), then is renamed into place, whole."""
    from safetensors.torch import save_file

    layout = settings.layout
    with written_whole(layout.final_adapter,
                       f"the trained adapter {shown(layout.final_adapter)}") as unfinished:
        write_stats(history, layout)
        yield str(unfinished)
        head = value_model(ppo_trainer).v_head.state_dict()
        save_file({k: v.contiguous() for k, v in head.items()}, unfinished / VALUE_HEAD_FILE)
        record = dict(steps=len(history), settings=training_settings(settings),
                      reward=reward, stats_sha256=file_digest(layout.stats_file),
                      precision=weights_precision(value_model(ppo_trainer).pretrained_model))
        write_atomically(unfinished / layout.training_record.name, json.dumps(record, indent=2))


@contextmanager
def rloo_adapter_folder(settings: Settings, stats):
    """Notebook 06's, for `policy.save_pretrained(folder)`: the statistics (a DataFrame) and the
    adapter written whole (a stop or a full disk leaves the previous adapter as it was)."""
    layout = settings.layout
    with written_whole(layout.rloo_adapter,
                       f"the RLOO adapter {shown(layout.rloo_adapter)}") as unfinished:
        write_atomically(layout.rloo_stats, stats.to_csv(index=False))
        yield unfinished


def training_record(layout: Layout) -> dict:
    """The final adapter's record, checked against the statistics file beside it."""
    finish_replacing(layout.final_adapter)
    if not (layout.final_adapter / "adapter_config.json").exists():
        raise DetoxError(f"No trained adapter in {layout.final_adapter}: run notebook "
                         "04_ppo_training.ipynb or `python -m detox_course train` first.")
    try:
        record = json.loads(layout.training_record.read_text())
        digest = file_digest(layout.stats_file)
    except (OSError, ValueError) as error:
        raise DetoxError(f"The trained adapter in {layout.final_adapter} has no readable "
                         f"training record or statistics ({error}); train again.") from None
    if record.get("stats_sha256") != digest:
        raise DetoxError(f"The adapter in {layout.final_adapter} was not trained by the run "
                         f"whose statistics are in {layout.stats_file} (another run wrote them "
                         "since, perhaps one that was stopped). Finish that run with --resume, "
                         "or train again.")
    return record
