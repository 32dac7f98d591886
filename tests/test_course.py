"""The course kit's fast checks: every notebook starts on a hosted runtime."""

import importlib.util
import sys
from types import SimpleNamespace

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from detox_helpers.unattended import notebook_paths

NOTEBOOKS = notebook_paths()


def hosted_runtime_cell(path):
    """The code cell that installs the checkout where the package is missing, and its index."""
    cells = nbformat.read(path, as_version=4).cells
    found = [(index, cell) for index, cell in enumerate(cells)
             if cell.cell_type == "code" and "find_spec(\"detox_helpers\")" in cell.source]
    assert len(found) == 1, f"{path.name}: {len(found)} hosted-runtime cells, not one"
    return found[0]


def run_cell(cell, monkeypatch):
    """Run the cell as a kernel would, with a stand-in shell that records `%pip` lines."""
    magics = []
    shell = SimpleNamespace(run_line_magic=lambda name, line: magics.append((name, line)))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(TransformerManager().transform_cell(cell.source), {"get_ipython": lambda: shell})
    return magics


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_every_notebook_installs_the_checkout_first_and_only_where_it_is_missing(path,
                                                                                 monkeypatch):
    """Colab runs every notebook in its own runtime: each must install the lab before its first
    import of it, and, in .venv where the package is importable, call no pip at all."""
    cells = nbformat.read(path, as_version=4).cells
    index, cell = hosted_runtime_cell(path)
    title = next(i for i, c in enumerate(cells) if c.cell_type == "markdown"
                 and c.source.startswith("# "))
    assert index == title + 1, f"{path.name}: the cell is not right after the title"
    assert cell.source == hosted_runtime_cell(NOTEBOOKS[0])[1].source  # one text everywhere
    monkeypatch.chdir(path.parent)
    assert run_cell(cell, monkeypatch) == []
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert run_cell(cell, monkeypatch) == [("pip", "install --quiet -r ../requirements.txt -e ..")]
