"""`python -m detox_helpers COMMAND`: the lab without JupyterLab. The commands execute the
notebooks themselves (papermill; notebook 01 first when the data is not prepared) and keep
each executed copy. A mistake a user can fix: one line, status 2; a failing notebook: status 1;
Ctrl-C: status 130 and how to continue.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from .errors import DetoxError
from .layout import shown
from .settings import load_settings
from .tiny.command import build_tiny  # an entry point may choose the tiny plug-in


class Stopped(DetoxError):
    """The user pressed Ctrl-C; the message says how to continue."""


# one at a time per run folder
WRITE_A_RUN = ("demo", "run", "evaluate", "train", "compare", "rloo", "curve")
# The command that does each notebook's work, for saying how a stopped run continues.
CONTINUE_WITH = {"01": "data", "03": "evaluate", "04": "train", "05": "compare", "06": "rloo",
                 "07": "curve"}


def command_line(*args: str) -> str:
    """`python -m detox_helpers ARGS` with this process's DETOX_* variables in front."""
    import shlex

    variables = [f"{key}={shlex.quote(value)}" for key, value in sorted(os.environ.items())
                 if key.startswith("DETOX_")]
    return " ".join([*variables, "python -m detox_helpers", *args])


def how_to_continue(stopped_in: str, numbers, train_args=()) -> str:
    """The commands that finish a run stopped in notebook `stopped_in` of `numbers`."""
    whole = checked_settings().layout.checkpoints()
    later = [number for number in numbers if number >= stopped_in and number in CONTINUE_WITH]
    resume = ["--resume"] if whole else []
    steps = [command_line("train", *resume, *train_args) if number == "04" else
             command_line(CONTINUE_WITH[number]) for number in later]
    where = ""
    if stopped_in == "04":
        where = (f"the last whole checkpoint is {shown(whole[-1])}; " if whole else
                 "no checkpoint was written yet, so training starts again; ")
    return where + "to continue:\n  " + "\n  ".join(steps or ["nothing is left to run"])


def kernel_environment() -> None:
    """The notebooks' kernels run in notebooks/ and read the DETOX_* variables: hand them
    absolute paths for what was given relative to the working folder."""
    for name in ("artifacts_dir", "dataset", "policy_model", "instruct_adapter", "reward_model"):
        value = os.environ.get(f"DETOX_{name.upper()}")
        if value and (name == "artifacts_dir" or Path(value).exists()):
            os.environ[f"DETOX_{name.upper()}"] = str(Path(value).resolve())


def run_notebooks(numbers, **parameters) -> Path | None:
    """Execute the numbered notebooks in order (each with those `parameters` its parameters
    cell names); the settings' data first when notebook 01 has not saved them yet."""
    import nbformat

    from .data import cache_key
    from .unattended import executed_copy, notebook, run_notebook

    kernel_environment()
    settings = checked_settings()
    if "01" not in numbers and not settings.layout.data_cache(cache_key(settings)).exists():
        numbers = ["01", *numbers]
    output = None
    for number in numbers:
        path = notebook(number)
        names = nbformat.read(path, as_version=4).cells[0].source
        given = {name: value for name, value in parameters.items() if f"{name} =" in names}
        started = time.perf_counter()
        print(f"running {path.name} ...", flush=True)
        try:
            output = run_notebook(path, settings, **given)
        except KeyboardInterrupt:
            steps = ["--max-steps", str(given["max_steps"])] if given.get("max_steps") else []
            raise Stopped(f"{path.name} was stopped; its executed copy so far is "
                          f"{shown(executed_copy(settings, path))}; "
                          f"{how_to_continue(number, numbers, steps)}") from None
        print(f"  done in {time.perf_counter() - started:.0f} s -> {shown(output)}", flush=True)
    return output


def run_lab(profile: str | None) -> None:
    """Execute every notebook in order on `profile` (None: the one in DETOX_PROFILE)."""
    from .unattended import notebook_paths

    if profile:
        os.environ["DETOX_PROFILE"] = profile  # the kernels inherit this environment
    started, started_at = time.perf_counter(), time.time()
    numbers = [path.name[:2] for path in notebook_paths()]
    output = run_notebooks(numbers)
    settings = checked_settings()
    print(f"\nAll {len(numbers)} notebooks ran on the {settings.profile!r} profile in "
          f"{time.perf_counter() - started:.0f} s. Executed copies: {shown(output.parent)}")
    for label, page in (("Report", settings.layout.report),
                        ("Beyond PPO", settings.layout.methods_report)):
        if page.exists() and page.stat().st_mtime >= started_at:  # written by this run
            print(f"{label}: {shown(page)}")


def checked_settings():
    """The settings of a command, checked before any long work: the artifacts folder can be
    written. (On the tiny profile each notebook's first cell checks the shipped world.)"""
    from .writes import check_writable

    settings = load_settings()
    for folder in [settings.artifacts, *settings.layout.written_folders()]:
        check_writable(folder)
    return settings


def show_data() -> None:
    from .data import load_splits

    run_notebooks(["01"])
    settings = checked_settings()
    splits = load_splits(settings)
    print(f"profile {settings.profile}: {splits['train'].num_rows} train and "
          f"{splits['test'].num_rows} test dialogues from {settings.dataset}")


def evaluate(name: str) -> None:
    from .evaluation import aggregate_table, load_evaluation
    from .layout import check_result_name

    check_result_name(name)
    run_notebooks(["03"], evaluation_name=name)
    settings = checked_settings()
    print(aggregate_table(load_evaluation(settings, name).aggregates).round(4).to_string())
    print(f"\nper-summary results: {shown(settings.layout.eval_table(name))}; "
          f"figures: {shown(settings.layout.eval_record(name))}")


def run_training(max_steps: int | None, resume: bool) -> None:
    if max_steps is not None and max_steps < 1:  # before a kernel starts
        raise DetoxError(f"--max-steps (max_steps) is {max_steps}: train at least 1 step.")
    run_notebooks(["04"], max_steps=max_steps, resume=resume)


def compare_and_report() -> Path:
    from .checkpoints import training_record

    training_record(checked_settings().layout)  # no trained adapter: say so before any kernel
    run_notebooks(["05"])
    path = checked_settings().layout.report
    print(f"report: {shown(path)}")
    return path


def make_adapter(output: str | None) -> None:
    from safetensors import SafetensorError
    from transformers import AutoModelForSeq2SeqLM

    from .data import load_splits
    from .layout import partial
    from .models import check_lora_targets, from_pretrained, lab_lora, load_tokenizer, pick_device
    from .sft import train_instruct_adapter
    from .writes import replace_folder, writing

    settings = checked_settings()
    train_split = load_splits(settings)["train"]
    tokenizer = load_tokenizer(settings)
    model = from_pretrained(AutoModelForSeq2SeqLM, settings.policy_model, "policy model",
                            "policy_model").to(pick_device(settings))
    check_lora_targets(model, settings.lora_targets)
    target = Path(output) if output else settings.layout.instruct_adapter
    if target.exists() and any(target.iterdir()) and not (target / "adapter_config.json").exists():
        raise DetoxError(f"{shown(target)} holds something other than an adapter, which "
                         "make-adapter would replace: give --output a new or empty folder.")
    unfinished = partial(target)  # renamed in when whole: a failed save keeps the old adapter
    shutil.rmtree(unfinished, ignore_errors=True)
    # the block trains too: only what a failed save raises is a write failure
    with writing(unfinished, f"the instruct adapter {shown(target)}", (OSError, SafetensorError)):
        losses = train_instruct_adapter(model, tokenizer, train_split["query"],
                                        train_split["summary"], unfinished,
                                        config=lab_lora(settings), steps=settings.sft_steps,
                                        learning_rate=settings.sft_learning_rate,
                                        batch_size=settings.sft_batch_size, seed=settings.seed)
    replace_folder(unfinished, target)
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
    commands.add_parser("rloo", help="notebook 06: RLOO beside PPO and best-of-k")
    commands.add_parser("curve", help="notebook 07: the proxy against the gold as the policy "
                                      "drifts, with and without the leash")
    adapter = commands.add_parser("make-adapter", help="fine-tune the instruct LoRA adapter")
    adapter.add_argument("--output", help="folder for the adapter "
                                          "(default: instruct-adapter in the artifacts folder)")
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    commands = {"demo": lambda: run_lab("tiny"), "run": lambda: run_lab(None),
                "build-tiny": lambda: build_tiny(args.rebuild, args.output),
                "data": show_data, "evaluate": lambda: evaluate(args.name),
                "train": lambda: run_training(args.max_steps, args.resume),
                "compare": compare_and_report, "make-adapter": lambda: make_adapter(args.output),
                "rloo": lambda: run_notebooks(["06"]), "curve": lambda: run_notebooks(["07"])}
    try:
        if args.command in WRITE_A_RUN:
            from .locks import holding

            with holding(load_settings().layout, args.command):
                commands[args.command]()
        else:
            commands[args.command]()
    except Stopped as stop:
        print(f"stopped: {stop}", file=sys.stderr)
        return 130
    except DetoxError as error:
        from .unattended import NotebookFailed

        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, NotebookFailed) else 2
    except KeyboardInterrupt:
        print("stopped.", file=sys.stderr)
        return 130
    return 0
