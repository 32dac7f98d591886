"""Nothing lost under concurrency and stops: one writer per run folder, a folder replaced
without a gap (a SIGKILL inside the replacement), Ctrl-C to the demo's process group."""

import os
import signal
import subprocess
import sys
import time

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
