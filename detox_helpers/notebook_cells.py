"""A lab notebook's code cells, run in this process: what the tests and the tiny world's checks
use to run a notebook many times without a kernel's start-up and imports (seconds each)."""

from __future__ import annotations

from .unattended import notebook


def run_notebook_here(name: str, **parameters) -> dict:
    """Run a lab notebook's code cells in this process, its parameters cell followed by
    `parameters` (as papermill injects them); returns the notebook's variables.

    The same cells as JupyterLab and the command line run; `name` is the notebook's number,
    e.g. "01".
    """
    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    path = notebook(name)
    namespace = {"__name__": "__main__", "display": _display}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        exec(compile(cell.source, f"{path.name}", "exec"), namespace)
        if "parameters" in cell.metadata.get("tags", []):
            namespace.update(parameters)
    return namespace


class _Shown:
    """What `display(..., display_id=True)` returns in a kernel: a handle to update."""

    def update(self, *objects, **kwargs):
        pass


def _display(*objects, display_id=None, **kwargs):
    """IPython's `display`, a kernel's built-in, here shows nothing: tests read variables."""
    return _Shown() if display_id else None

