"""Checkpoints and resuming: a damaged or leftover checkpoint, a resume that cannot continue, a
state file that would run code, and a run killed while a checkpoint is written."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import torch
from safetensors.torch import load_file

from detox_helpers import checkpoints
from detox_helpers.layout import Layout, partial
from detox_helpers.unattended import run_notebook_here


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(command, layout):
    assert command("train", "--max-steps", "4")[0] == 0
    newest = layout.checkpoints()[-1]
    state = newest / checkpoints.STATE_FILE
    state.write_bytes(state.read_bytes()[:100])
    status, out, err = command("train", "--max-steps", "4", "--resume")
    assert status == 0, err
    assert str(newest) in out + err and "Falling back" in out + err
    assert "resumed from step 2" in out + err


def test_a_leftover_partial_folder_is_not_a_checkpoint(command, layout):
    assert command("train", "--max-steps", "2")[0] == 0
    (layout.checkpoints_dir / "step-000004.partial" / "adapter").mkdir(parents=True)
    status, out, err = command("train", "--max-steps", "3", "--resume")
    assert status == 0, err
    assert "resumed from step 2" in out + err


def test_resuming_with_another_lora_shape_names_the_setting(command, one_error_line):
    assert command("train", "--max-steps", "2")[0] == 0
    status, _, err = command("train", "--max-steps", "3", "--resume", DETOX_LORA_R="4")
    assert one_error_line(status, err) and "lora_r" in err and "step-000002" in err


def test_resuming_with_nothing_to_resume_says_so(command, one_error_line):
    status, _, err = command("train", "--max-steps", "2", "--resume")
    assert one_error_line(status, err) and "Nothing to resume" in err


def test_a_state_file_that_would_run_code_is_refused(command, layout, tmp_path,
                                                     one_error_line):
    assert command("train", "--max-steps", "2")[0] == 0
    folder = layout.checkpoints()[-1]
    marker = tmp_path / "the-code-ran"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    state = torch.load(folder / checkpoints.STATE_FILE, weights_only=True)
    torch.save(dict(state, history=Payload()), folder / checkpoints.STATE_FILE)
    status, _, err = command("train", "--max-steps", "3", "--resume")
    assert one_error_line(status, err) and "cannot be read safely" in err
    assert not marker.exists()
    # the file really carries code: an unsafe load runs it
    torch.load(folder / checkpoints.STATE_FILE, weights_only=False)
    assert marker.exists()


def train_process(world_env, small, artifacts, *args):
    env = {**os.environ, **world_env, "DETOX_ARTIFACTS_DIR": str(artifacts),
           **{f"DETOX_{k.upper()}": str(v) for k, v in small.items()},
           "DETOX_CHECKPOINT_EVERY": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "detox_course", "train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def adapter_weights(artifacts):
    return load_file(Layout(artifacts).final_adapter / "adapter_model.safetensors")


def power_cut(process):
    """SIGKILL the command and every process under it at once. Its notebook kernel runs in a
    session of its own (jupyter_client starts it so), so a kill of the command's process group
    would leave the kernel writing checkpoints until it noticed its parent gone."""
    tree = [process.pid] + [child.pid for child in psutil.Process(process.pid).children(True)]
    assert len(tree) > 1, "no kernel under the command to kill"
    for pid in reversed(tree):  # the kernel, which writes, first
        os.kill(pid, signal.SIGKILL)
    process.wait()


def test_killed_while_a_checkpoint_is_written_resume_ends_with_the_uninterrupted_adapter(
        world_env, with_data, tmp_path, small_run_settings):
    """SIGKILL lands once, at a fixed place: as soon as the second checkpoint's folder appears
    (while it is written, or the moment it is whole); the run is resumed until done, and ends
    with the adapter of a run never stopped (run here, on one thread as the commands are)."""
    steps = "3"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_notebook_here("04", overrides=dict(small_run_settings, artifacts_dir=str(
            with_data(tmp_path / "whole"))), max_steps=int(steps))
    finally:
        torch.set_num_threads(threads)
    expected = adapter_weights(tmp_path / "whole")
    artifacts = with_data(tmp_path / "killed")
    second = Layout(artifacts).checkpoint(2)
    kills, resumed = 0, []
    while True:
        done = len(Layout(artifacts).checkpoints())
        resume = ["--resume"] if done else []
        process = train_process(world_env, small_run_settings, artifacts, "--max-steps", steps,
                                *resume)
        if not kills:
            while process.poll() is None and not (partial(second).exists() or second.exists()):
                time.sleep(0.002)
            assert process.poll() is None, "the run ended before its second checkpoint"
            power_cut(process)
            kills += 1
            continue
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-2000:]
        resumed += [line for line in out.splitlines() if line.startswith("resumed from")]
        if Layout(artifacts).final_adapter.exists():
            break
    # killed once, then continued from the first checkpoint or the second, whichever was whole
    assert kills == 1 and len(resumed) == 1 and re.search(r"step[- ]0*[12]\b", resumed[0]), resumed
    record = json.loads(Layout(artifacts).training_record.read_text())
    assert record["steps"] == int(steps)
    weights = adapter_weights(artifacts)
    assert weights.keys() == expected.keys()
    assert all(torch.allclose(weights[k], expected[k], atol=1e-5) for k in weights)
