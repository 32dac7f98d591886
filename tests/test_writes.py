"""Files and folders written whole: a stopped write leaves the previous file, a SIGKILL inside a
folder replacement leaves one whole copy, and a write over a size limit names the space needed."""

import os
import signal
import subprocess
import sys

import pytest

from detox_helpers.errors import DetoxError, first_line
from detox_helpers.layout import Layout, aside, partial
from detox_helpers.writes import finish_replacing


def test_a_stopped_write_leaves_the_previous_file(tmp_path, monkeypatch):
    from detox_helpers import writes

    target = tmp_path / "figures.json"
    target.write_text("old, whole")

    def stop(*_):
        raise KeyboardInterrupt
    monkeypatch.setattr(writes.os, "replace", stop)
    with pytest.raises(KeyboardInterrupt):
        writes.write_atomically(target, "new")
    assert target.read_text() == "old, whole" and os.listdir(tmp_path) == ["figures.json"]


DIE_AT_RENAME = """
import os, signal, sys
from pathlib import Path
from detox_helpers import writes
renames, rename = [], Path.rename
def rename_then_die(self, target):
    rename(self, target)
    renames.append(target)
    if len(renames) == int(sys.argv[1]):
        os.kill(os.getpid(), signal.SIGKILL)
Path.rename = rename_then_die
writes.replace_folder(Path(sys.argv[2]), Path(sys.argv[3]))
"""


@pytest.mark.parametrize("renames, left", [(1, "old"), (2, "new")],
                         ids=["killed with the old copy aside", "killed with the new copy in"])
def test_a_kill_inside_a_folder_replacement_leaves_one_copy_whole(tmp_path, renames, left):
    layout = Layout(tmp_path)
    folder = layout.checkpoint(2)
    for where, text in ((folder, "old"), (partial(folder), "new")):
        where.mkdir(parents=True)
        (where / "state.pt").write_text(text)
    result = subprocess.run([sys.executable, "-c", DIE_AT_RENAME, str(renames),
                             str(partial(folder)), str(folder)])
    assert result.returncode == -signal.SIGKILL
    assert all(p.name.endswith((".partial", ".replaced")) or (p / "state.pt").exists()
               for p in folder.parent.iterdir())   # every folder left is whole, or marked
    finish_replacing(folder)  # what the next run does first
    assert (folder / "state.pt").read_text() == left and not aside(folder).exists()
    assert layout.checkpoints() == [folder]


def test_torch_save_over_a_size_limit_is_named_with_the_space_it_needed(tmp_path):
    """torch.save reports a file-size limit as a RuntimeError without an errno ("unexpected
    pos ..."): the checkpoint's message still says it ran out of room, and how much it needed
    (the size of the checkpoint before it)."""
    import resource

    import torch

    from detox_helpers.writes import writing

    scratch = tmp_path / "step-000004.partial"
    scratch.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(DetoxError) as raised:
            with writing(scratch, "the checkpoint step-000004", needed=45_000):
                torch.save({"weights": torch.zeros(10_000)}, scratch / "state.pt")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(raised.value).startswith(
        "Could not write the checkpoint step-000004 (File too large; it needs 45.0 kB, over the "
        "file-size limit of 20.0 kB (`ulimit -f`)); nothing was replaced.")
    assert not scratch.exists()


def test_a_library_error_is_quoted_by_its_first_line_or_its_type():
    assert first_line(OSError("disk full\nTraceback: deep inside")) == "disk full"
    assert first_line(ValueError("x" * 500)) == "x" * 200
    assert first_line(RuntimeError("  \n")) == "RuntimeError"  # not an IndexError
