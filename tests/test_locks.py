"""One writer per run folder: a second command on a folder another process holds is refused,
naming the holder and the way out."""

import subprocess
import sys

import pytest

from detox_course import __main__ as cli
from detox_course.commands import holding
from detox_helpers import locks
from detox_helpers.errors import DetoxError
from detox_helpers.layout import Layout
from detox_helpers.settings import load_settings

HOLD = """
import sys
from detox_course.commands import holding
from detox_helpers.layout import Layout
with holding(Layout(sys.argv[1]), "train"):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_of_a_run_folder_is_refused_naming_the_holder(with_data, tmp_path,
                                                                      monkeypatch, capfd):
    artifacts = with_data(tmp_path / "artifacts")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(artifacts)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == "held"
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(artifacts))
    for command in (["train", "--max-steps", "1"], ["compare"], ["evaluate"], ["demo"]):
        assert cli.main(command) == 2, command
        errors = [line for line in capfd.readouterr().err.splitlines()
                  if line.startswith("error: ")]
        assert len(errors) == 1 and f"process {holder.pid}: train" in errors[0], errors
    assert not Layout(artifacts).executed("tiny").exists()  # refused before any notebook ran
    with pytest.raises(DetoxError, match=f"process {holder.pid}: train"):
        locks.check_free(Layout(artifacts))  # what notebooks 03-05 check before writing
    monkeypatch.setenv("DETOX_RUN_NAME", "other")  # the way out that the line names
    with holding(load_settings().layout, "train"):
        pass
    holder.kill()  # SIGKILL: the system releases the lock of a killed holder
    holder.wait()
    locks.check_free(Layout(artifacts))
