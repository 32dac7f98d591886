"""Running the lab's notebooks unattended: through papermill for the command line (a
`DetoxError` in a cell comes back as that one line; any other failure names the executed copy),
or their code cells in this process for tests and the tiny world's checks.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from jupyter_client.manager import AsyncKernelManager

from .errors import DetoxError, user_error_names
from .layout import shown
from .settings import Settings
from .writes import write_atomically

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class QuietKernelManager(AsyncKernelManager):
    """A kernel whose own log (a start-up notice, the tail of a kernel stopped by Ctrl-C) stays
    out of the terminal: what the notebook prints still streams, as its cells' output."""

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        return await super()._async_launch_kernel(kernel_cmd, stderr=subprocess.DEVNULL, **kw)


class NotebookFailed(DetoxError):
    """A notebook raised something other than a user's mistake; its executed copy was saved."""


def notebook_paths() -> list[Path]:
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise DetoxError(f"No numbered notebooks in {NOTEBOOKS_DIR}: run from a clone of the "
                         "repository (pip install -e .).")
    return paths


def notebook(number: str) -> Path:
    """The lab notebook whose name starts with `number`, e.g. "04"."""
    return next(path for path in notebook_paths() if path.name.startswith(number))


def executed_copy(settings: Settings, path: Path) -> Path:
    """Where a run keeps its executed notebook; each process of a multi-process run its own."""
    rank = os.environ.get("RANK", "0")
    name = path.name if rank == "0" else f"{path.stem}.rank{rank}{path.suffix}"
    return settings.layout.executed(settings.profile) / name


def run_notebook(path: Path, settings: Settings, **parameters) -> Path:
    """Execute one notebook in a fresh kernel, its output streamed here; returns the executed
    copy. The kernel reads this process's DETOX_* variables: `settings` only says where the
    executed copy goes."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output = executed_copy(settings, path).resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    keep_whole(output.parent)
    # After Ctrl-C, nbclient's pending reply holds the stopped kernel's error; asyncio would
    # print that task's traceback at exit, after the command has said how to continue.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    try:
        papermill.execute_notebook(str(path), str(output), parameters=parameters,
                                   cwd=str(path.parent), kernel_name="python3",
                                   progress_bar=False, stdout_file=sys.stdout,
                                   stderr_file=sys.stderr,
                                   kernel_manager_class=QuietKernelManager)
    except PapermillExecutionError as error:
        message = ANSI_CODES.sub("", error.evalue)  # a kernel colours what it reports
        if error.ename in user_error_names():
            raise DetoxError(message) from None
        raise NotebookFailed(f"{path.name} failed ({error.ename}: {message}); the executed "
                             f"copy up to the failing cell is {shown(output)}") from None
    return output


def keep_whole(folder: Path) -> None:
    """papermill writes the executed copies in `folder` whole (aside, then renamed in, as
    writes.write_atomically): a full disk is one error line naming the copy and the space it
    needed, not a traceback, and the last whole copy stays."""
    from papermill.iorw import LocalHandler, papermill_io

    class WholeCopies(LocalHandler):
        whole = True  # how papermill's registry shows that a folder is done

        def write(self, buf, path):
            write_atomically(Path(path), buf)

    scheme = str(folder.resolve())
    # papermill's registry, asked the handler of a path in `folder`, says whether it is done
    if not getattr(papermill_io.get_handler(os.path.join(scheme, "")), "whole", False):
        papermill_io.register(scheme, WholeCopies())  # for paths that start with `scheme`


def run_notebook_here(name: str | Path, **parameters) -> dict:
    """Run the code cells of notebook `name` (its number, e.g. "01", or a path) in this process,
    `parameters` set after its parameters cell (as papermill injects them); returns its
    variables."""
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
