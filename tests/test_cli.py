"""The command line: its help, each command's output, a notebook run through papermill, the
mistakes a user can make as one `error:` line before anything changes, a Ctrl-C or a file-size
limit during a command, and training in several processes."""

import os
import re
import signal
import subprocess
import sys
import time

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from detox_course import __main__ as cli
from detox_course import commands, execute
from detox_helpers import unattended
from detox_helpers.errors import DetoxError
from detox_helpers.layout import Layout


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "detox_course", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=300)


COMMANDS = ["demo", "run", "build-tiny", "data", "evaluate", "train", "compare", "make-adapter",
            "rloo", "curve"]


@pytest.fixture(scope="module")
def help_text():
    result = run_cli("--help")
    assert result.returncode == 0
    return result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_each_command_on_its_own_line(help_text, command):
    # by its own name, where argparse lists it: in the {...} of choices and on a line of its
    # own with its help ("train" inside another command's help text is not "train" listed)
    choices = re.search(r"^  \{(.+)\}$", help_text, re.MULTILINE)
    assert choices and command in choices.group(1).split(",")
    assert re.search(rf"^    {re.escape(command)} +\S", help_text, re.MULTILINE), help_text


def test_build_tiny_checks_the_shipped_world_and_prints_its_quality(tiny_settings):
    result = run_cli("build-tiny")
    assert result.returncode == 0, result.stderr
    assert '"held_out_accuracy"' in result.stdout and "tiny-world" in result.stdout


def test_build_tiny_never_replaces_a_folder_that_is_not_a_world(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_cli("build-tiny", "--output", str(tmp_path))
    assert result.returncode == 2 and "not a tiny world" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_data_command_prints_the_split_sizes(tiny_settings, capfd):
    assert cli.main(["data"]) == 0
    sizes = re.search(r"(\d+) train and (\d+) test dialogues", capfd.readouterr().out)
    assert sizes and min(int(n) for n in sizes.groups()) >= 1


@pytest.mark.parametrize("env, words", [
    ({"DETOX_BATCH_SIZE": "many"}, "DETOX_BATCH_SIZE='many'"),
    ({"DETOX_PROFILE": "huge"}, "Unknown profile 'huge'"),
    ({"DETOX_PROFILE": "full"}, "no network"),
])
def test_problems_a_user_can_fix_are_one_clear_line(env, words, monkeypatch, capfd):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["data"]) == 2
    err = capfd.readouterr().err
    assert words in err and "Traceback" not in err and err.startswith("error: ")


def write_notebook(path, *sources):
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources],
                                metadata={"kernelspec": {"name": "python3",
                                                         "display_name": "Python 3",
                                                         "language": "python"}}), path)


def test_a_notebook_runs_through_papermill_and_a_failure_is_named_with_its_copy(tmp_path,
                                                                                 tiny_settings):
    settings = tiny_settings.__class__(**{**tiny_settings.__dict__,
                                          "artifacts_dir": str(tmp_path / "artifacts")})
    write_notebook(tmp_path / "01_ok.ipynb", "x = 1 + 1", "print(x)")
    write_notebook(tmp_path / "02_bad.ipynb", "y = 2", "assert y == 3, 'y is not 3'")
    write_notebook(tmp_path / "03_mistake.ipynb", "from detox_helpers.errors import DetoxError",
                   "raise DetoxError('batch_size is \\x1b[31mtoo large\\x1b[0m')")  # colour
    written = execute.run_notebook(tmp_path / "01_ok.ipynb", settings)
    assert nbformat.read(written, as_version=4).cells[1].outputs[0]["text"].strip() == "2"
    with pytest.raises(execute.NotebookFailed, match="02_bad.ipynb failed.*y is not 3"):
        execute.run_notebook(tmp_path / "02_bad.ipynb", settings)
    partial = nbformat.read(written.parent / "02_bad.ipynb", as_version=4)
    code = [cell for cell in partial.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, 2]  # up to the failing cell
    with pytest.raises(DetoxError, match="^batch_size is too large$") as raised:
        execute.run_notebook(tmp_path / "03_mistake.ipynb", settings)
    assert not isinstance(raised.value, execute.NotebookFailed)  # a mistake, not a bug


def by_number(names):
    """Notebook names in the order of their leading number, sorted here, not by the code
    under test."""
    return sorted(names, key=lambda name: int(name.split("_")[0]))


def test_the_lab_notebooks_are_found_in_order():
    on_disk = [name for name in os.listdir(unattended.NOTEBOOKS_DIR)
               if re.fullmatch(r"\d\d_.+\.ipynb", name)]
    names = [path.name for path in unattended.notebook_paths()]
    assert names == by_number(on_disk)
    assert [int(name[:2]) for name in names] == list(range(1, len(names) + 1))


def test_the_notebooks_come_in_order_whatever_order_the_folder_lists_them(tmp_path, monkeypatch):
    names = ["02_b.ipynb", "10_j.ipynb", "01_a.ipynb", "03_c.ipynb"]
    for name in [*names, "notes.ipynb", "4_x.ipynb"]:
        (tmp_path / name).write_text("{}")
    glob = type(tmp_path).glob
    # a folder that lists its files backwards: the order must come from notebook_paths
    monkeypatch.setattr(type(tmp_path), "glob",
                        lambda self, pattern: reversed(sorted(glob(self, pattern))))
    monkeypatch.setattr(unattended, "NOTEBOOKS_DIR", tmp_path)
    assert [path.name for path in unattended.notebook_paths()] == by_number(names)


def test_compare_without_a_trained_adapter_says_what_to_run(with_data, tmp_path, monkeypatch,
                                                            capfd):
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(with_data(tmp_path)))
    assert cli.main(["compare"]) == 2
    assert "04_ppo_training.ipynb" in capfd.readouterr().err
    assert not Layout(tmp_path).executed("tiny").exists()  # said before any notebook ran


def test_training_runs_in_several_processes(world_env, with_data, tmp_path):
    """Two CPU processes under torchrun, as `accelerate launch` starts them on two GPUs."""
    env = {**os.environ, **world_env, "DETOX_ARTIFACTS_DIR": str(with_data(tmp_path)),
           "DETOX_DEVICE": "cpu", "DETOX_BATCH_SIZE": "4", "DETOX_MINI_BATCH_SIZE": "2",
           "OMP_NUM_THREADS": "1"}
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    result = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "detox_course", "train",
                             "--max-steps", "2"], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("2 steps; last step") == 1      # only the main process reports
    assert len(Layout(tmp_path).stats_file.read_text().splitlines()) == 1 + 2
    # each process ran the whole notebook in its own kernel, and its last check compared the
    # processes: their own prompts, the same weights at the end
    for name in ("04_ppo_training.ipynb", "04_ppo_training.rank1.ipynb"):
        cells = nbformat.read(Layout(tmp_path).executed("tiny") / name, 4).cells
        assert all(c.execution_count for c in cells if c.cell_type == "code"), name
        printed = "".join(output.get("text", "") for c in cells if c.cell_type == "code"
                          for output in c.outputs)
        assert "2 processes: each its own prompts in the last step, the same weights" in printed


def test_the_notebook_kernels_get_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    for key, value in (("DETOX_ARTIFACTS_DIR", "art"), ("DETOX_DATASET", "data"),
                       ("DETOX_POLICY_MODEL", "not-a-folder-here")):
        monkeypatch.setenv(key, value)
    commands.kernel_environment()
    assert os.environ["DETOX_ARTIFACTS_DIR"] == str(tmp_path / "art")
    assert os.environ["DETOX_DATASET"] == str(tmp_path / "data")
    assert os.environ["DETOX_POLICY_MODEL"] == "not-a-folder-here"  # a hub id stays one


def test_make_adapter_fine_tunes_one_that_the_lab_can_start_from(with_data, tmp_path,
                                                                 monkeypatch, capsys):
    from detox_helpers.models import load_policy
    from detox_helpers.settings import load_settings

    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(with_data(tmp_path / "artifacts")))
    monkeypatch.setenv("DETOX_SFT_STEPS", "3")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep")   # a folder that is no adapter
    assert cli.main(["make-adapter", "--output", str(tmp_path / "notes")]) == 2
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep"
    capsys.readouterr()
    assert cli.main(["make-adapter", "--output", str(tmp_path / "adapter")]) == 0
    printed = capsys.readouterr()
    assert "instruct adapter steps: the first 1 of 3 took" in printed.out + printed.err
    assert f"DETOX_INSTRUCT_ADAPTER={tmp_path / 'adapter'}" in printed.out
    shipped, _ = load_policy(load_settings())
    made, _ = load_policy(load_settings(instruct_adapter=str(tmp_path / "adapter")))
    weights = dict(shipped.named_parameters())
    # merged in: the policy differs from the shipped world's exactly where LoRA went (q and v)
    changed = {name.split(".")[-2] for name, p in made.named_parameters()
               if not torch.equal(p, weights[name])}
    assert changed == {"q", "v"}


def test_a_failed_start_deletes_nothing_and_a_new_run_sets_the_old_one_aside(
        command, layout, tmp_path, one_error_line):
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
def test_max_steps_below_one_is_refused_before_anything_changes(command, layout, steps,
                                                                one_error_line):
    assert command("train", "--max-steps", "2")[0] == 0
    adapter = (layout.final_adapter / "adapter_model.safetensors").read_bytes()
    status, _, err = command("train", "--max-steps", steps)
    assert one_error_line(status, err) and "--max-steps" in err
    assert (layout.final_adapter / "adapter_model.safetensors").read_bytes() == adapter
    assert [p.name for p in layout.checkpoints()] == ["step-000002"]


def test_compare_refuses_an_adapter_from_another_run_than_the_statistics(command, layout,
                                                                         one_error_line):
    assert command("train", "--max-steps", "2")[0] == 0
    stats = layout.stats_file.read_text().splitlines()
    layout.stats_file.write_text("\n".join(stats[:2]) + "\n")   # as a stopped newer run leaves
    status, _, err = command("compare")
    assert one_error_line(status, err) and "not trained by the run" in err


@pytest.mark.parametrize("name", ["results/run1", "", "../up", "a b"])
def test_a_results_name_that_is_no_file_name_is_refused_at_once(command, layout, name,
                                                                one_error_line):
    status, _, err = command("evaluate", "--name", name)
    assert one_error_line(status, err) and "not a valid results name" in err
    assert not layout.eval_dir.exists()


def test_an_artifacts_path_that_cannot_be_written_is_refused_at_once(command, tmp_path,
                                                                     one_error_line):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    status, _, err = command("evaluate", DETOX_ARTIFACTS_DIR=str(blocker))
    assert one_error_line(status, err) and str(blocker) in err
    # A folder no one may write into, root included (CI runs as root, who ignores file modes):
    # the kernel's /proc takes no new folders.
    status, _, err = command("evaluate", DETOX_ARTIFACTS_DIR="/proc/detox-artifacts")
    assert one_error_line(status, err) and "Cannot write into /proc/detox-artifacts" in err


def test_lora_targets_the_policy_lacks_are_one_error_line(command, one_error_line):
    status, _, err = command("train", "--max-steps", "1", DETOX_LORA_TARGET_MODULES="query,value")
    assert one_error_line(status, err) and "query" in err and "'q'" in err


def test_a_mistyped_relative_folder_is_a_missing_folder(command, tmp_path, monkeypatch,
                                                        one_error_line):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    status, _, err = command("data", DETOX_DATASET="data/dialogsum")
    assert one_error_line(status, err) and "does not exist" in err and "Hub" not in err


def test_ctrl_c_during_the_demos_training_exits_130_and_says_how_to_continue(
        with_data, tmp_path, small_run_settings):
    """SIGINT to the demo's whole process group, as a terminal's Ctrl-C, once notebook 04 has
    written its first checkpoint: no traceback, exit 130, the stopped notebook's copy named, the
    checkpoint named, and the exact commands that finish the run."""
    artifacts = with_data(tmp_path / "artifacts")
    env = {**os.environ, "DETOX_ARTIFACTS_DIR": str(artifacts), "OMP_NUM_THREADS": "1",
           **{f"DETOX_{k.upper()}": str(v) for k, v in small_run_settings.items()},
           "DETOX_CHECKPOINT_EVERY": "1", "DETOX_MAX_PPO_STEPS": "40",
           # enough test prompts for notebook 03's "toxic enough" check: its interval's low end
           # must clear 0.05, and 3 of the first 12 references insult (with 10 prompts it did
           # not clear it in CI)
           "DETOX_EVAL_SIZE": "24"}
    # a shell's background job ignores SIGINT, and Python keeps an ignored SIGINT ignored: the
    # demo gets a terminal's default, wherever the tests were started from
    process = subprocess.Popen([sys.executable, "-m", "detox_course", "demo"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(
                                   signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while not Layout(artifacts).checkpoints() and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "04_ppo_training.ipynb was stopped" in err and "step-0000" in err
    assert (Layout(artifacts).executed("tiny") / "04_ppo_training.ipynb").exists()
    commands = [line.strip() for line in err.splitlines() if "python -m detox_course" in line]
    assert [c.split("python -m detox_course ")[1] for c in commands] == [
        "train --resume", "compare", "rloo", "curve"]
    assert all(f"DETOX_ARTIFACTS_DIR={artifacts}" in c and "DETOX_MAX_PPO_STEPS=40" in c
               for c in commands)


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
        [sys.executable, "-m", "detox_course", "evaluate"], capture_output=True, text=True,
        env={**os.environ, "DETOX_ARTIFACTS_DIR": str(artifacts)}, timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (5 * 1024, hard)))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(errors) == 1 and "03_baseline_eval.ipynb" in errors[0], errors
    assert re.search(r"it needs [0-9.]+ kB, over the file-size limit of 5\.1 kB", errors[0])
    assert {path: path.read_text() for path in old} == old
    assert not list(layout.eval_dir.glob("*.partial"))
