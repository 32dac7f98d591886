"""Nothing lost under concurrency and stops: one writer per run folder, a folder replaced
without a gap (a SIGKILL inside the replacement), Ctrl-C to the demo's process group."""

import errno
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from detox_helpers import cli, locks
from detox_helpers.errors import DetoxError
from detox_helpers.layout import Layout, aside, finish_replacing, partial
from detox_helpers.settings import load_settings

DIE_AT_RENAME = """
import os, signal, sys
from pathlib import Path
from detox_helpers import layout
renames, rename = [], Path.rename
def rename_then_die(self, target):
    rename(self, target)
    renames.append(target)
    if len(renames) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
Path.rename = rename_then_die
layout.replace_folder(Path(sys.argv[2]), Path(sys.argv[3]))
"""


@pytest.mark.parametrize("renames, left", [(1, "old"), (2, "new")],
                         ids=["killed with the old copy aside", "killed with the new copy in"])
def test_a_kill_inside_a_folder_replacement_leaves_one_copy_whole(tmp_path, renames, left):
    layout = Layout(tmp_path)
    folder = layout.checkpoint(2)
    for where, text in ((folder, "old"), (partial(folder), "new")):
        where.mkdir(parents=True)
        (where / "state.pt").write_text(text)
    result = subprocess.run([sys.executable, "-c", DIE_AT_RENAME, str(renames),
                             str(partial(folder)), str(folder)])
    assert result.returncode == -signal.SIGKILL
    assert all(p.name.endswith((".partial", ".replaced")) or (p / "state.pt").exists()
               for p in folder.parent.iterdir())   # every folder left is whole, or marked
    finish_replacing(folder)  # what the next run does first
    assert (folder / "state.pt").read_text() == left and not aside(folder).exists()
    assert layout.checkpoints() == [folder]


HOLD = """
import sys
from detox_helpers import locks
from detox_helpers.layout import Layout
with locks.holding(Layout(sys.argv[1]), "train"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_of_a_run_folder_is_refused_naming_the_holder(with_data, tmp_path,
                                                                      monkeypatch, capfd):
    artifacts = with_data(tmp_path / "artifacts")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(artifacts)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "held"
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(artifacts))
    for command in (["train", "--max-steps", "1"], ["compare"], ["evaluate"], ["demo"]):
        assert cli.main(command) == 2, command
        errors = [line for line in capfd.readouterr().err.splitlines()
                  if line.startswith("error: ")]
        assert len(errors) == 1 and f"process {holder.pid}: train" in errors[0], errors
    assert not Layout(artifacts).executed("tiny").exists()  # refused before any notebook ran
    with pytest.raises(DetoxError, match=f"process {holder.pid}: train"):
        locks.check_free(Layout(artifacts))  # what notebooks 03-05 check before writing
    monkeypatch.setenv("DETOX_RUN_NAME", "other")  # the way out that the line names
    with locks.holding(load_settings().layout, "train"):
        pass
    holder.kill()  # SIGKILL: the system releases the lock of a killed holder
    holder.wait()
    locks.check_free(Layout(artifacts))


def test_ctrl_c_during_the_demos_training_exits_130_and_says_how_to_continue(with_data,
                                                                           tmp_path):
    """SIGINT to the demo's whole process group, as a terminal's Ctrl-C, once notebook 04 has
    written its first checkpoint: no traceback, exit 130, the stopped notebook's copy named, the
    checkpoint named, and the exact commands that finish the run."""
    from test_robustness import SMALL

    artifacts = with_data(tmp_path / "artifacts")
    env = {**os.environ, "DETOX_ARTIFACTS_DIR": str(artifacts), "OMP_NUM_THREADS": "1",
           **{f"DETOX_{k.upper()}": str(v) for k, v in SMALL.items()},
           "DETOX_CHECKPOINT_EVERY": "1", "DETOX_MAX_PPO_STEPS": "40",
           # enough test prompts for notebook 03's "toxic enough" check: its interval's low end
           # must clear 0.05, and 3 of the first 12 references insult (with 10 prompts it did
           # not clear it in CI)
           "DETOX_EVAL_SIZE": "24"}
    process = subprocess.Popen([sys.executable, "-m", "detox_helpers", "demo"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    deadline = time.time() + 180
    while not Layout(artifacts).checkpoints() and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "04_ppo_training.ipynb was stopped" in err and "step-0000" in err
    assert (Layout(artifacts).executed("tiny") / "04_ppo_training.ipynb").exists()
    commands = [line.strip() for line in err.splitlines() if "python -m detox_helpers" in line]
    assert [c.split("python -m detox_helpers ")[1] for c in commands] == [
        "train --resume", "compare", "rloo"]
    assert all(f"DETOX_ARTIFACTS_DIR={artifacts}" in c and "DETOX_MAX_PPO_STEPS=40" in c
               for c in commands)


def test_notebook_06_refuses_a_k_that_does_not_divide_the_batch_before_training(tiny_settings,
                                                                                monkeypatch,
                                                                                tmp_path):
    from detox_helpers.unattended import run_notebook_here

    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(tmp_path))  # nothing evaluated there yet
    monkeypatch.setenv("DETOX_RLOO_K", "3")
    with pytest.raises(DetoxError, match="rloo_k=3 must divide batch_size=16"):
        run_notebook_here("06")


def test_ulimit_f_while_evaluate_writes_is_one_error_line_and_keeps_the_old_results(
        with_data, tmp_path):
    """The issue's replay: `ulimit -f 5`, then `evaluate` over an earlier evaluation of that
    name. papermill's executed copy is the first file over the limit (the notebook alone is
    larger); it was a traceback."""
    import resource

    artifacts = with_data(tmp_path / "artifacts")
    layout = Layout(artifacts)
    layout.eval_dir.mkdir(parents=True)
    old = {layout.eval_table("baseline"): "the earlier table", layout.eval_record("baseline"):
           "the earlier record"}
    for path, text in old.items():
        path.write_text(text)
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    result = subprocess.run(
        [sys.executable, "-m", "detox_helpers", "evaluate"], capture_output=True, text=True,
        env={**os.environ, "DETOX_ARTIFACTS_DIR": str(artifacts)}, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (5 * 1024, hard)))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and "03_baseline_eval.ipynb" in errors[0], errors
    assert re.search(r"it needs [0-9.]+ kB, over the file-size limit of 5\.1 kB", errors[0])
    assert {path: path.read_text() for path in old} == old
    assert not list(layout.eval_dir.glob("*.partial"))


def no_space_for(suffix: str):
    """Path.write_bytes that fails as a full disk does for files whose name ends in `suffix`."""
    write_bytes = Path.write_bytes

    def full(self, data):
        if self.name.endswith(suffix):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_bytes(self, data)
    return full


def test_a_full_disk_while_notebook_03_saves_keeps_the_old_table_and_record(
        isolated_settings, monkeypatch):
    from detox_helpers.unattended import run_notebook_here

    settings = isolated_settings()
    layout = settings.layout
    layout.eval_dir.mkdir(parents=True)
    old = {layout.eval_table("baseline"): b"old table", layout.eval_record("baseline"):
           b"old record"}
    for path, data in old.items():
        path.write_bytes(data)
    monkeypatch.setattr(Path, "write_bytes", no_space_for(f".json.{os.getpid()}.partial"))
    with pytest.raises(DetoxError) as raised:  # the record fails, after the table was written
        run_notebook_here("03", overrides=dict(artifacts_dir=layout.root, eval_size=3,
                                               eval_samples_per_prompt=2))
    assert re.fullmatch(r"Could not write .*baseline\.json \(No space left on device; it needs "
                        r"[0-9.]+ kB, [0-9.]+ [kMG]?B free on that disk\); nothing was "
                        r"replaced\..*", str(raised.value)), raised.value
    assert {path: path.read_bytes() for path in old} == old  # both old: neither replaced
    assert sorted(p.name for p in layout.eval_dir.iterdir()) == ["baseline.csv", "baseline.json"]


def test_a_full_disk_while_a_report_figure_is_written_keeps_the_old_figure(tmp_path,
                                                                           monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from detox_helpers.report import save_figure

    path = tmp_path / "training.png"
    path.write_bytes(b"the old figure")
    monkeypatch.setattr(Path, "write_bytes", no_space_for(".partial"))
    with pytest.raises(DetoxError, match=r"Could not write .*training\.png \(No space left on "
                                         r"device; it needs [0-9.]+ kB"):
        save_figure(plt.subplots()[1], path)
    assert path.read_bytes() == b"the old figure" and list(tmp_path.iterdir()) == [path]


def test_torch_save_over_a_size_limit_is_named_with_the_space_it_needed(tmp_path):
    """torch.save reports a file-size limit as a RuntimeError without an errno ("unexpected
    pos ..."): the checkpoint's message still says it ran out of room, and how much it needed
    (the size of the checkpoint before it)."""
    import resource

    import torch

    from detox_helpers.layout import writing

    scratch = tmp_path / "step-000004.partial"
    scratch.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(DetoxError) as raised:
            with writing(scratch, "the checkpoint step-000004", needed=45_000):
                torch.save({"weights": torch.zeros(10_000)}, scratch / "state.pt")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(raised.value).startswith(
        "Could not write the checkpoint step-000004 (File too large; it needs 45.0 kB, over the "
        "file-size limit of 20.0 kB (`ulimit -f`)); nothing was replaced.")
    assert not scratch.exists()
