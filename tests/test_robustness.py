"""Nothing lost, nothing stale: each mistake a user can make, as a test.

Most run the command line in this process (`cli.main`, settings from monkeypatched DETOX_*
variables), with the notebooks' cells run in this process too instead of in a papermill kernel
(the same cells, without a kernel's start-up for each command). Stopping with Ctrl-C and
SIGKILL run the real command, papermill and kernel included, in a process of their own.
"""

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time

import psutil
import pytest
import torch
from safetensors.torch import load_file

from detox_helpers import checkpoints, cli, unattended
from detox_helpers.layout import Layout, partial
from detox_helpers.unattended import run_notebook_here

# precision pinned: runs compared weight for weight must not depend on the machine's `auto`
SMALL = dict(batch_size=4, mini_batch_size=2, ppo_epochs=1, checkpoint_every=2,
             output_min_length=8, output_max_length=12, eval_size=4,
             eval_samples_per_prompt=2, precision="float32")


@pytest.fixture
def command(world_env, with_data, tmp_path, monkeypatch, capsys):
    """Run `python -m detox_helpers ARGS` in this process on a fresh artifacts folder (the
    prepared dataset copied there); returns (exit status, stdout, stderr)."""
    for name, value in world_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(with_data(tmp_path / "artifacts")))
    for name, value in SMALL.items():
        monkeypatch.setenv(f"DETOX_{name.upper()}", str(value))
    def run_here(path, settings, **parameters):
        run_notebook_here(path.name[:2], **parameters)
        return unattended.executed_copy(settings, path)
    monkeypatch.setattr(unattended, "run_notebook", run_here)

    def run(*args, **env):
        with monkeypatch.context() as for_this_call:
            for name, value in env.items():
                for_this_call.setenv(name, value)
            # Library loggers keep the stream an earlier test captured (closed since); their
            # failed writes must not pass for this command's traceback.
            for_this_call.setattr(logging, "raiseExceptions", False)
            status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture
def layout(tmp_path):
    return Layout(tmp_path / "artifacts")


def one_error_line(status, err):
    """Exit 2 and one `error:` line (progress bars of model loading may precede it)."""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    return status == 2 and len(errors) == 1 and "Traceback" not in err


def test_a_failed_start_deletes_nothing_and_a_new_run_sets_the_old_one_aside(command, layout,
                                                                                tmp_path):
    assert command("train", "--max-steps", "2")[0] == 0
    before = sorted(p.name for p in layout.checkpoints())
    status, _, err = command("train", "--max-steps", "2",
                             DETOX_REWARD_MODEL=str(tmp_path / "no-such-model"))
    assert one_error_line(status, err) and "no-such-model" in err
    assert sorted(p.name for p in layout.checkpoints()) == before == ["step-000002"]
    status, out, _ = command("train", "--max-steps", "2")
    assert status == 0 and "set aside" in out
    aside = list((layout.root / "ppo-previous").iterdir())
    assert len(aside) == 1 and (aside[0] / "checkpoints" / "step-000002").is_dir()
    assert (aside[0] / "final-adapter" / "adapter_config.json").exists()


@pytest.mark.parametrize("steps", ["-1", "0"])
def test_max_steps_below_one_is_refused_before_anything_changes(command, layout, steps):
    assert command("train", "--max-steps", "2")[0] == 0
    adapter = (layout.final_adapter / "adapter_model.safetensors").read_bytes()
    status, _, err = command("train", "--max-steps", steps)
    assert one_error_line(status, err) and "--max-steps" in err
    assert (layout.final_adapter / "adapter_model.safetensors").read_bytes() == adapter
    assert [p.name for p in layout.checkpoints()] == ["step-000002"]


def test_compare_refuses_an_adapter_from_another_run_than_the_statistics(command, layout):
    assert command("train", "--max-steps", "2")[0] == 0
    stats = layout.stats_file.read_text().splitlines()
    layout.stats_file.write_text("\n".join(stats[:2]) + "\n")   # as a stopped newer run leaves
    status, _, err = command("compare")
    assert one_error_line(status, err) and "not trained by the run" in err


def test_the_report_shows_the_settings_training_ran_with_and_a_matching_baseline(command,
                                                                                layout):
    # a baseline made under other settings first: compare must evaluate the matching one
    assert command("evaluate", DETOX_SEED="5")[0] == 0
    assert command("train", "--max-steps", "2", DETOX_LEARNING_RATE="0.0007")[0] == 0
    status, out, _ = command("compare", DETOX_LEARNING_RATE="0.5")
    said = [line for line in out.splitlines() if "baseline was made with other settings" in line]
    assert status == 0 and len(said) == 1 and "(seed 5 then, 42 now)" in said[0], said
    text = layout.report.read_text()
    assert "learning_rate `0.0007`" in text and "learning_rate `0.5`" not in text
    assert "2 PPO steps" in text
    baseline = json.loads(layout.eval_record("baseline").read_text())["settings"]
    assert baseline["seed"] == 42


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


def test_resuming_with_another_lora_shape_names_the_setting(command):
    assert command("train", "--max-steps", "2")[0] == 0
    status, _, err = command("train", "--max-steps", "3", "--resume", DETOX_LORA_R="4")
    assert one_error_line(status, err) and "lora_r" in err and "step-000002" in err


def test_resuming_with_nothing_to_resume_says_so(command):
    status, _, err = command("train", "--max-steps", "2", "--resume")
    assert one_error_line(status, err) and "Nothing to resume" in err


def test_a_state_file_that_would_run_code_is_refused(command, layout, tmp_path):
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


@pytest.mark.parametrize("name", ["results/run1", "", "../up", "a b"])
def test_a_results_name_that_is_no_file_name_is_refused_at_once(command, layout, name):
    status, _, err = command("evaluate", "--name", name)
    assert one_error_line(status, err) and "not a valid results name" in err
    assert not layout.eval_dir.exists()


def test_an_artifacts_path_that_cannot_be_written_is_refused_at_once(command, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status, _, err = command("evaluate", DETOX_ARTIFACTS_DIR=str(blocker))
    assert one_error_line(status, err) and str(blocker) in err
    # A folder no one may write into, root included (CI runs as root, who ignores file modes):
    # the kernel's /proc takes no new folders.
    status, _, err = command("evaluate", DETOX_ARTIFACTS_DIR="/proc/detox-artifacts")
    assert one_error_line(status, err) and "Cannot write into /proc/detox-artifacts" in err


def test_lora_targets_the_policy_lacks_are_one_error_line(command):
    status, _, err = command("train", "--max-steps", "1", DETOX_LORA_TARGET_MODULES="query,value")
    assert one_error_line(status, err) and "query" in err and "'q'" in err


def test_a_mistyped_relative_folder_is_a_missing_folder(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    status, _, err = command("data", DETOX_DATASET="data/dialogsum")
    assert one_error_line(status, err) and "does not exist" in err and "Hub" not in err


def test_a_stopped_write_leaves_the_previous_file(tmp_path, monkeypatch):
    from detox_helpers import layout as layout_module

    target = tmp_path / "figures.json"
    target.write_text("old, whole")

    def stop(*_):
        raise KeyboardInterrupt
    monkeypatch.setattr(layout_module.os, "replace", stop)
    with pytest.raises(KeyboardInterrupt):
        layout_module.write_atomically(target, "new")
    assert target.read_text() == "old, whole" and os.listdir(tmp_path) == ["figures.json"]


def train_process(world_env, artifacts, *args):
    env = {**os.environ, **world_env, "DETOX_ARTIFACTS_DIR": str(artifacts),
           **{f"DETOX_{k.upper()}": str(v) for k, v in SMALL.items()},
           "DETOX_CHECKPOINT_EVERY": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "detox_helpers", "train", *args],
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
        world_env, with_data, tmp_path):
    """SIGKILL lands once, at a fixed place: as soon as the second checkpoint's folder appears
    (while it is written, or the moment it is whole); the run is resumed until done, and ends
    with the adapter of a run never stopped (run here, on one thread as the commands are)."""
    steps = "3"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_notebook_here("04", overrides=dict(SMALL, artifacts_dir=str(
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
        process = train_process(world_env, artifacts, "--max-steps", steps, *resume)
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
