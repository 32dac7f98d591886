import os
import re
import subprocess
import sys

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from detox_helpers import cli, unattended
from detox_helpers.errors import DetoxError
from detox_helpers.layout import Layout


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "detox_helpers", *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=300)


COMMANDS = ["demo", "run", "build-tiny", "data", "evaluate", "train", "compare", "make-adapter",
            "rloo"]


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
    written = unattended.run_notebook(tmp_path / "01_ok.ipynb", settings)
    assert nbformat.read(written, as_version=4).cells[1].outputs[0]["text"].strip() == "2"
    with pytest.raises(unattended.NotebookFailed, match="02_bad.ipynb failed.*y is not 3"):
        unattended.run_notebook(tmp_path / "02_bad.ipynb", settings)
    partial = nbformat.read(written.parent / "02_bad.ipynb", as_version=4)
    code = [cell for cell in partial.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == [1, 2]  # up to the failing cell
    with pytest.raises(DetoxError, match="^batch_size is too large$") as raised:
        unattended.run_notebook(tmp_path / "03_mistake.ipynb", settings)
    assert not isinstance(raised.value, unattended.NotebookFailed)  # a mistake, not a bug


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
    result = subprocess.run([torchrun, "--nproc_per_node", "2", "-m", "detox_helpers", "train",
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
    cli.kernel_environment()
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
