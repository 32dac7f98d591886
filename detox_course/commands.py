"""The lab without JupyterLab (`python -m detox_course COMMAND`): each command executes the
notebooks themselves (papermill; notebook 01 first when the data is not prepared), keeps each
executed copy, and holds its run folder's lock while it works.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from detox_helpers.errors import DetoxError
from detox_helpers.layout import Layout, shown
from detox_helpers.locks import HOLDER, refusal
from detox_helpers.settings import load_settings
from detox_helpers.writes import check_writable


class Stopped(DetoxError):
    """The user pressed Ctrl-C; the message says how to continue."""


# one at a time per run folder
WRITE_A_RUN = ("demo", "run", "evaluate", "train", "compare", "rloo", "curve")
# The command that does each notebook's work, for saying how a stopped run continues.
CONTINUE_WITH = {"01": "data", "03": "evaluate", "04": "train", "05": "compare", "06": "rloo",
                 "07": "curve"}


def command_line(*args: str) -> str:
    """`python -m detox_course ARGS` with this process's DETOX_* variables in front."""
    import shlex

    variables = [f"{key}={shlex.quote(value)}" for key, value in sorted(os.environ.items())
                 if key.startswith("DETOX_")]
    return " ".join([*variables, "python -m detox_course", *args])


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

    from detox_course.execute import executed_copy, run_notebook
    from detox_helpers.data import cache_key
    from detox_helpers.unattended import notebook

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
    from detox_helpers.unattended import notebook_paths

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
    settings = load_settings()
    for folder in [settings.artifacts, *settings.layout.written_folders()]:
        check_writable(folder)
    return settings


def show_data() -> None:
    from detox_helpers.data import load_splits

    run_notebooks(["01"])
    settings = checked_settings()
    splits = load_splits(settings)
    print(f"profile {settings.profile}: {splits['train'].num_rows} train and "
          f"{splits['test'].num_rows} test dialogues from {settings.dataset}")


def evaluate(name: str) -> None:
    import pandas as pd

    from detox_helpers.evaluation import load_evaluation
    from detox_helpers.layout import check_result_name

    check_result_name(name)
    run_notebooks(["03"], evaluation_name=name)
    settings = checked_settings()
    figures = load_evaluation(settings, name).aggregates.values()  # as notebook 03 shows them
    table = pd.DataFrame(figures).set_index("label")[["mean", "low", "high", "n"]]
    print(table.round(4).to_string())
    print(f"\nper-summary results: {shown(settings.layout.eval_table(name))}; "
          f"figures: {shown(settings.layout.eval_record(name))}")


def run_training(max_steps: int | None, resume: bool) -> None:
    if max_steps is not None and max_steps < 1:  # before a kernel starts
        raise DetoxError(f"--max-steps (max_steps) is {max_steps}: train at least 1 step.")
    run_notebooks(["04"], max_steps=max_steps, resume=resume)


def compare_and_report() -> None:
    from detox_helpers.checkpoints import training_record

    training_record(checked_settings().layout)  # no trained adapter: say so before any kernel
    run_notebooks(["05"])
    print(f"report: {shown(checked_settings().layout.report)}")


def make_adapter(output: str | None) -> None:
    from safetensors import SafetensorError
    from transformers import AutoModelForSeq2SeqLM

    from detox_helpers.data import load_splits
    from detox_helpers.layout import partial
    from detox_helpers.models import (
        check_lora_targets,
        from_pretrained,
        lab_lora,
        load_tokenizer,
        pick_device,
    )
    from detox_helpers.sft import train_instruct_adapter
    from detox_helpers.writes import replace_folder, writing

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


@contextmanager
def holding(layout: Layout, command: str):
    """Hold `layout`'s run-folder lock while the block runs (detox_helpers.locks: the notebooks
    check it). A nested call in the holder does nothing; so does a process of a multi-process
    run other than rank 0 (only rank 0 writes). The system releases it when the holder exits."""
    if os.environ.get(HOLDER) == str(os.getpid()) or os.environ.get("RANK", "0") != "0":
        yield
        return
    check_writable(layout.run_root)  # where the lock lives: a folder no one can write says so
    with open(layout.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise refusal(layout, handle.read()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}: {command}")
        handle.flush()
        os.environ[HOLDER] = str(os.getpid())
        try:
            yield
        finally:
            del os.environ[HOLDER]
            fcntl.flock(handle, fcntl.LOCK_UN)
