"""One writer per run folder. Every command that writes a run (demo, run, evaluate, train,
compare) holds an OS file lock on the folder while it works; the system releases it when the
holder exits, even killed. A second writer is refused with one line naming the holder. The
notebooks check the lock before they write, so a notebook in JupyterLab is refused while a
command works in its folder; the kernels a command starts are told that their command holds it.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager

from .errors import DetoxError
from .layout import Layout, shown
from .writes import check_writable

HOLDER = "LAB_LOCK_HOLDER"  # set for the kernels a command starts: the process id that holds it


def _refusal(layout: Layout, holder: str) -> DetoxError:
    return DetoxError(f"Another process is writing {shown(layout.run_root)} "
                      f"({holder.strip() or 'a process'}). Wait for it to finish, or give this "
                      "run a name of its own (DETOX_RUN_NAME, run_name).")


@contextmanager
def holding(layout: Layout, command: str):
    """Hold `layout`'s run-folder lock while the block runs. A nested call in the holder does
    nothing; so does a process of a multi-process run other than rank 0 (only rank 0 writes)."""
    if os.environ.get(HOLDER) == str(os.getpid()) or os.environ.get("RANK", "0") != "0":
        yield
        return
    check_writable(layout.run_root)  # where the lock lives: a folder no one can write says so
    with open(layout.lock_file, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise _refusal(layout, handle.read()) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}: {command}")
        handle.flush()
        os.environ[HOLDER] = str(os.getpid())
        try:
            yield
        finally:
            del os.environ[HOLDER]
            fcntl.flock(handle, fcntl.LOCK_UN)


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
                raise _refusal(layout, holder) from None
