"""A lab notebook executed through papermill in a kernel of its own, its output streamed here,
its executed copy kept whole (the command line's way, `detox_course.commands`). A `DetoxError`
raised in a cell comes back as that one line; any other failure names the executed copy.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from detox_helpers.errors import DetoxError
from detox_helpers.layout import shown
from detox_helpers.settings import Settings
from detox_helpers.unattended import QuietKernelManager
from detox_helpers.writes import write_atomically

ANSI_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookFailed(DetoxError):
    """A notebook raised something other than a user's mistake; its executed copy was saved."""


def user_error_names(kind: type = DetoxError) -> set[str]:
    """The class names of the errors a user can fix: how a notebook run by papermill, which
    reports a failing cell's exception by name, tells them from a bug."""
    return {kind.__name__}.union(*map(user_error_names, kind.__subclasses__()))


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
