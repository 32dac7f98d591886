"""The notebooks keep the lab in view (issue 36): in each, calls of the libraries outnumber calls
into `detox_helpers`, no code cell is longer than 25 lines, and notebook 04's loop body is at most
20 lines with generate, score and `ppo_trainer.step` in it. Counted by
`benchmarks/notebook_calls.py`, whose docstring states the rule. Notebook 05 shows its
statistics (the paired bootstrap, best-of-k and its KL bound) in its own code, and notebook 06
counts both methods' optimiser steps per batch."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("notebook_calls",
                                               ROOT / "benchmarks" / "notebook_calls.py")
notebook_calls = importlib.util.module_from_spec(_spec)
sys.modules["notebook_calls"] = notebook_calls  # its dataclass looks its module up
_spec.loader.exec_module(notebook_calls)

ALL = sorted(notebook_calls.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# The notebooks held to the rule, one line each: all seven.
HELD = ["01", "02", "03", "04", "05", "06", "07"]


def notebook(number: str) -> Path:
    return next(path for path in ALL if path.name.startswith(number))


@pytest.fixture(scope="module")
def counts():
    return {path.name[:2]: notebook_calls.count(path) for path in ALL}


def test_every_notebook_is_counted(counts):
    assert len(counts) == 7 and all(c.package + c.library > 0 for c in counts.values())


@pytest.mark.parametrize("number", HELD)
def test_library_calls_outnumber_the_packages_and_cells_are_short(counts, number):
    counted = counts[number]
    assert counted.library_leads, (f"notebook {number}: {counted.library} library calls, "
                                   f"{counted.package} into detox_helpers")
    assert counted.short_cells, f"notebook {number}: a code cell of {counted.longest} lines"


def test_the_ppo_loop_body_is_short_and_does_the_three_things():
    path = notebook("04")
    assert notebook_calls.loop_body_lines(path) <= 20
    loop = next("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                if "ppo_trainer.step(" in "".join(c["source"]) and c["cell_type"] == "code")
    assert "generate(" in loop and "reward_model.score(" in loop


def code_of(number: str) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(notebook(number).read_text())["cells"]
                     if c["cell_type"] == "code")


def test_notebook_05_shows_the_bootstrap_and_calls_one_source_for_best_of_k():
    code = code_of("05")
    for shown in ("np.random.default_rng(", "np.percentile("):  # the bootstrap, in view
        assert shown in code, f"notebook 05 no longer shows {shown!r}"
    # best-of-k, its KL bound and the tables have one source, the package, called in view
    for called in ("compare.best_of_k(before)", "compare.best_of_k_kl(k)",
                   "compare.comparison_table(", "compare.best_of_k_table("):
        assert called in code, f"notebook 05 no longer calls {called!r}"
    for copy in ('samples.groupby("prompt")["reward"].idxmax()', "np.log(k) - (k - 1) / k"):
        assert copy not in code, f"notebook 05 writes {copy!r} beside the package's"


def test_notebook_06_counts_the_optimiser_steps_of_both_methods():
    code = code_of("06")
    assert 'table["optimiser steps per batch"]' in code
    assert 'ppo_run["batch_size"] // ppo_run["mini_batch_size"] * ppo_run["ppo_epochs"]' in code


def write_notebook(folder: Path, *cells: str) -> Path:
    path = folder / "99_made.ipynb"
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source,
                                           "metadata": {}} for source in cells]}))
    return path


def test_the_rule_counts_package_objects_and_a_library_method_of_a_package_class(tmp_path):
    path = write_notebook(
        tmp_path,
        "from detox_helpers import trl_patch\nfrom detox_helpers.settings import load_settings\n"
        "import torch\nimport time\n%pip --version",
        "settings = load_settings('tiny')\nsettings.layout.data_cache('x')\n"
        "trainer = trl_patch.FirstTokenPPOTrainer()\ntrainer.step(1)\n"
        "trainer.batched_forward_pass()\n"
        "torch.ones(2).sum()\ntime.perf_counter()\nprint(len('a'.strip()))\n"
        "f = None\nf()\ndef g():\n    pass\ng()")
    counted = notebook_calls.count(path)
    assert counted.calls["package"] == ["load_settings", "settings.layout.data_cache",
                                        "trl_patch.FirstTokenPPOTrainer",
                                        "trainer.batched_forward_pass"]
    assert counted.calls["library"] == ["trainer.step", "torch.ones"]  # .sum: not a plain name
    assert counted.standard == 1  # time.perf_counter; print, len, str.strip, f, g: not counted
    assert not counted.library_leads and counted.short_cells


def test_a_long_cell_fails_the_limit(tmp_path):
    path = write_notebook(tmp_path, "import torch\n" + "torch.ones(1)\n" * 25)
    counted = notebook_calls.count(path)
    assert counted.library_leads and not counted.short_cells
