"""`python -m detox_helpers COMMAND`: the lab without opening JupyterLab.

    demo           run every notebook headless on the offline tiny profile
    run            the same on the profile in DETOX_PROFILE (the full lab on a GPU machine)
    build-tiny     check the shipped tiny world and print its build record (--rebuild,
                   --output DIR: build it anew)
    data           build the dataset and print its sizes
    evaluate       evaluate the starting policy on the test split; save the results
    train          PPO training with checkpoints (--max-steps N, --resume); also under
                   `accelerate launch -m detox_helpers train` for several GPUs
    compare        evaluate the trained policy against the baseline; write the report
    make-adapter   fine-tune an instruct LoRA adapter on the train split (sft.py)

Settings come from DETOX_* variables (see settings.py). A problem a user can fix prints one
clear line and exits with status 2; a failing notebook exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .errors import DetoxError
from .settings import load_settings

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class NotebookFailed(DetoxError):
    """A notebook raised; its partly executed copy was saved."""


class Stopped(DetoxError):
    """The user pressed Ctrl-C; the message says how to continue."""


def notebook_paths() -> list[Path]:
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise DetoxError(f"No numbered notebooks in {NOTEBOOKS_DIR}: run from a clone of the "
                         "repository (pip install -e .).")
    return paths


def execute_notebooks(paths, output_dir: Path, timeout: int = 1800) -> list[Path]:
    """Run each notebook top to bottom in a fresh kernel; write the executed copies.

    Stops at the first failing notebook, after saving its partly executed copy, and raises
    NotebookFailed naming it.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        target = output_dir / path.name
        started = time.perf_counter()
        print(f"running {path.name} ...", flush=True)
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            client.execute()
        except CellExecutionError as error:
            nbformat.write(notebook, target)
            last_line = str(error).strip().splitlines()[-1]
            raise NotebookFailed(f"{path.name} failed ({last_line}); the executed copy up to the "
                             f"failing cell is {target}") from None
        nbformat.write(notebook, target)
        written.append(target)
        print(f"  done in {time.perf_counter() - started:.0f} s -> {target}", flush=True)
    return written


def run_lab(profile: str | None) -> list[Path]:
    """Execute the notebooks in order on `profile` (None: the one in DETOX_PROFILE)."""
    if profile:
        os.environ["DETOX_PROFILE"] = profile  # the kernels inherit this environment
    settings = checked_settings()
    # The kernels run in notebooks/: hand them absolute paths for what was given relative.
    os.environ["DETOX_ARTIFACTS_DIR"] = settings.artifacts_dir
    for name in ("dataset", "policy_model", "instruct_adapter", "reward_model"):
        value = os.environ.get(f"DETOX_{name.upper()}")
        if value and Path(value).exists():
            os.environ[f"DETOX_{name.upper()}"] = str(Path(value).resolve())
    output_dir = settings.layout.executed(settings.profile)
    started, started_at = time.perf_counter(), time.time()
    written = execute_notebooks(notebook_paths(), output_dir)
    print(f"\nAll {len(written)} notebooks ran on the {settings.profile!r} profile in "
          f"{time.perf_counter() - started:.0f} s. Executed copies: {output_dir}")
    report = settings.layout.report
    if report.exists() and report.stat().st_mtime >= started_at:  # written by this run
        print(f"Report: {report}")
    return written


def build_tiny(rebuild: bool, output: str | None) -> None:
    """Check the shipped world (default), rebuild it in place, or build one elsewhere."""
    from .layout import build_record
    from .tiny_checks import build_and_check
    from .tiny_world import ensure_tiny_world, world_dir

    if output or rebuild:
        folder = Path(output).resolve() if output else world_dir()
        if folder.is_dir() and any(folder.iterdir()) and not build_record(folder).exists():
            raise DetoxError(f"{folder} is not empty and not a tiny world (no BUILD.json); "
                             "building there would replace it. Choose a new folder.")
        print(f"Building the tiny world in {folder} (a few minutes on 2 cores)...")
        build_and_check(folder)
    else:
        folder = ensure_tiny_world(load_settings("tiny", environ={}))
    print(build_record(folder).read_text())
    print(f"tiny world: {folder}")


def checked_settings():
    """The settings of a command, checked before any long work: the artifacts folder can be
    written and, on the tiny profile, the shipped world is whole and current."""
    from .layout import check_writable
    from .tiny_world import ensure_tiny_world

    settings = load_settings()
    check_writable(settings.artifacts)
    ensure_tiny_world(settings)
    return settings


def show_data() -> None:
    from .data import build_dataset

    settings = checked_settings()
    splits = build_dataset(settings)
    print(f"profile {settings.profile}: {splits['train'].num_rows} train and "
          f"{splits['test'].num_rows} test dialogues from {settings.dataset}")


def evaluate(name: str) -> None:
    from .evaluation import aggregate_table, run_evaluation
    from .layout import check_result_name

    check_result_name(name)
    settings = checked_settings()
    result = run_evaluation(settings, name)
    print(aggregate_table(result.aggregates).round(4).to_string())
    print(f"\nper-summary results: {settings.layout.eval_table(name)}; "
          f"figures: {settings.layout.eval_record(name)}")


def run_training(max_steps: int | None, resume: bool) -> None:
    from .ppo import train

    settings = checked_settings()
    try:
        run = train(settings, max_steps=max_steps, resume=resume)
    except KeyboardInterrupt:
        raise Stopped(continue_command(settings, max_steps)) from None
    if run.trainer.accelerator.is_main_process:
        last = run.history[-1]
        print(f"{run.step} steps; last step: reward {last['reward_mean']:.3f}, "
              f"toxicity {last['toxicity_mean']:.3f}, KL {last['kl']:.3f}")
        print(f"adapter: {settings.layout.final_adapter}; statistics: "
              f"{settings.layout.stats_file}")


def continue_command(settings, max_steps: int | None) -> str:
    """After Ctrl-C: the last whole checkpoint and the exact command that continues from it."""
    import shlex

    whole = settings.layout.checkpoints()
    if not whole:
        return "training stopped before its first checkpoint; nothing to resume."
    variables = [f"{key}={shlex.quote(value)}" for key, value in sorted(os.environ.items())
                 if key.startswith("DETOX_")]
    steps = ["--max-steps", str(max_steps)] if max_steps is not None else []
    command = " ".join([*variables, "python -m detox_helpers train --resume", *steps])
    return f"training stopped at the checkpoint {whole[-1].name}; continue with:\n  {command}"


def compare_and_report() -> Path:
    from .evaluation import run_evaluation
    from .report import build_report

    settings = checked_settings()
    run_evaluation(settings, "detoxified", detoxified=True)  # first: fails fast if untrained
    if not settings.layout.eval_table("baseline").exists():
        run_evaluation(settings, "baseline")
    path = build_report(settings)
    print(f"report: {path}")
    return path


def make_adapter(output: str | None) -> None:
    from transformers import AutoModelForSeq2SeqLM

    from .data import build_dataset
    from .models import check_lora_targets, from_pretrained, load_tokenizer, pick_device
    from .sft import lora_config, train_instruct_adapter

    settings = checked_settings()
    train_split = build_dataset(settings)["train"]
    tokenizer = load_tokenizer(settings)
    model = from_pretrained(AutoModelForSeq2SeqLM, settings.policy_model, "policy model",
                            "policy_model").to(pick_device(settings))
    check_lora_targets(model, settings.lora_targets)
    target = Path(output) if output else settings.layout.instruct_adapter
    config = lora_config(settings.lora_r, settings.lora_alpha, settings.lora_dropout,
                         settings.lora_targets)
    losses = train_instruct_adapter(model, tokenizer, train_split["query"],
                                    train_split["summary"], target,
                                    config=config, steps=settings.sft_steps,
                                    learning_rate=settings.sft_learning_rate,
                                    batch_size=settings.sft_batch_size, seed=settings.seed)
    print(json.dumps({"first_loss": losses[0], "last_loss": losses[-1]}))
    print(f"instruct adapter saved to {target}; use it with DETOX_INSTRUCT_ADAPTER={target}")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m detox_helpers",
                                  description="Detoxify FLAN-T5 summaries with PPO and LoRA.")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run all notebooks headless on the offline tiny profile")
    commands.add_parser("run", help="run all notebooks headless on DETOX_PROFILE's profile")
    tiny = commands.add_parser("build-tiny", help="check (or rebuild) the offline tiny world")
    tiny.add_argument("--rebuild", action="store_true",
                      help="rebuild the world shipped in the package (after editing its builder)")
    tiny.add_argument("--output", help="build a world into this folder instead")
    commands.add_parser("data", help="build the dataset and print its sizes")
    evaluation = commands.add_parser("evaluate", help="evaluate the policy on the test split")
    evaluation.add_argument("--name", default="baseline",
                            help="name of the saved results (default: baseline)")
    training = commands.add_parser("train", help="PPO training with checkpoints")
    training.add_argument("--max-steps", type=int, help="steps in all (default: max_ppo_steps)")
    training.add_argument("--resume", action="store_true",
                          help="continue from the latest checkpoint")
    commands.add_parser("compare", help="evaluate the trained policy; write the report")
    adapter = commands.add_parser("make-adapter", help="fine-tune the instruct LoRA adapter")
    adapter.add_argument("--output", help="folder for the adapter "
                                          "(default: instruct-adapter in the artifacts folder)")
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "demo":
            run_lab("tiny")
        elif args.command == "run":
            run_lab(None)
        elif args.command == "build-tiny":
            build_tiny(args.rebuild, args.output)
        elif args.command == "data":
            show_data()
        elif args.command == "evaluate":
            evaluate(args.name)
        elif args.command == "train":
            run_training(args.max_steps, args.resume)
        elif args.command == "compare":
            compare_and_report()
        elif args.command == "make-adapter":
            make_adapter(args.output)
    except Stopped as stop:
        print(f"stopped: {stop}", file=sys.stderr)
        return 130
    except DetoxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, NotebookFailed) else 2
    except KeyboardInterrupt:
        print("stopped.", file=sys.stderr)
        return 130
    return 0
