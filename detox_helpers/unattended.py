"""The lab's notebooks, found by number; the kernel papermill starts for one of them (quiet);
and their code cells run in this process (for the tests and the tiny world's checks). The
command line runs them through papermill (`detox_course.execute`), notebook 07 its second run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

from jupyter_client.manager import AsyncKernelManager

from .errors import DetoxError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class QuietKernelManager(AsyncKernelManager):
    """A kernel whose own log (a start-up notice, the tail of a kernel stopped by Ctrl-C) stays
    out of the terminal: what the notebook prints still streams, as its cells' output."""

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        return await super()._async_launch_kernel(kernel_cmd, stderr=subprocess.DEVNULL, **kw)


def notebook_paths() -> list[Path]:
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise DetoxError(f"No numbered notebooks in {NOTEBOOKS_DIR}: run from a clone of the "
                         "repository (pip install -e .).")
    return paths


def notebook(number: str) -> Path:
    """The lab notebook whose name starts with `number`, e.g. "04"."""
    return next(path for path in notebook_paths() if path.name.startswith(number))


def run_notebook_here(name: str | Path, **parameters) -> dict:
    """Run notebook `name`'s code cells (its number, e.g. "01", or a path) here, `parameters` set
    after its parameters cell (as papermill injects them); returns its variables."""
    import linecache

    import matplotlib
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    matplotlib.use("Agg")
    path = Path(name) if str(name).endswith(".ipynb") else notebook(name)
    namespace = {"__name__": "__main__", "display": _display}
    for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        # IPython's own reading of a cell: a `%pip` line becomes a call, as in a kernel; and,
        # as a kernel does, the source is kept where `inspect` finds a cell's functions.
        source = TransformerManager().transform_cell(cell.source)
        filename = f"<{path.name}:{number}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), namespace)
        if "parameters" in cell.metadata.get("tags", []):
            namespace.update(parameters)
    return namespace


def _display(*objects, display_id=None, **kwargs):
    """IPython's `display`, a kernel's built-in, here shows nothing: tests read variables. With
    `display_id=True` it returns, as in a kernel, a handle to `update`."""
    return SimpleNamespace(update=lambda *objects, **kwargs: None) if display_id else None
