"""One writer per run folder. Every command that writes a run holds an OS file lock on its folder
(`detox_course.commands.holding`), which the system releases when the holder exits, even killed;
a second writer is refused in one line naming the holder. The notebooks check it here before they
write (a notebook in JupyterLab is refused while a command works there), except against the
command that started their kernel."""

from __future__ import annotations

import fcntl
import os

from .errors import DetoxError
from .layout import Layout, shown

HOLDER = "LAB_LOCK_HOLDER"  # set for the kernels a command starts: the process id that holds it


def refusal(layout: Layout, holder: str) -> DetoxError:
    return DetoxError(f"Another process is writing {shown(layout.run_root)} "
                      f"({holder.strip() or 'a process'}). Wait for it to finish, or give this "
                      "run a name of its own (DETOX_RUN_NAME, run_name).")


def check_free(layout: Layout) -> None:
    """Before a notebook writes a run: refuse when another process holds its folder's lock
    (not the command that started this kernel; with several processes, rank 0 checks)."""
    if os.environ.get("RANK", "0") != "0" or not layout.lock_file.exists():
        return
    with open(layout.lock_file) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read()
            ours = os.environ.get(HOLDER)
            if not (ours and holder.startswith(f"process {ours}:")):
                raise refusal(layout, holder) from None
