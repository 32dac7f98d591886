"""The nbgrader course folder: each lab notebook the source of its own assignment, and the
student copies nbgrader releases from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from detox_helpers.errors import DetoxError
from detox_helpers.settings import ENV_PREFIX
from detox_helpers.unattended import NOTEBOOKS_DIR, notebook_paths

STUDENT_DIR = NOTEBOOKS_DIR.parent / "student"
DEFAULT_TIMEOUT = 300  # seconds one cell may run


def assignments() -> dict[str, Path]:
    """The lab's notebooks by assignment name (the file's stem)."""
    return {path.stem: path for path in notebook_paths()}


def tools_environment(**variables) -> dict:
    """The environment of grading's commands and kernels: the grader's own DETOX_* settings
    (`variables`) and none of the caller's, so that a class is graded alike from any shell.
    nbgrader's commands call `alembic`, installed beside this Python: its folder goes first on
    PATH. Grading never reaches a hub."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    offline = {name: "1" for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                                      "TRANSFORMERS_OFFLINE")}
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(ENV_PREFIX)}
    return {**inherited, "PATH": path, **offline, **variables}


def nbgrader(root: Path, *args: str, env: dict | None = None, log: Path | None = None) -> int:
    """Run one nbgrader command in the course folder `root`; its log goes to `log`."""
    command = [sys.executable, "-m", "nbgrader", *args]
    with open(log or os.devnull, "a") as output:
        return subprocess.run(command, cwd=root, env=env or tools_environment(), stdout=output,
                              stderr=subprocess.STDOUT).returncode


def write_course(root: Path, timeout: int = DEFAULT_TIMEOUT) -> Path:
    """A course folder in `root`: nbgrader's configuration, each notebook as the source of its
    own assignment, and the gradebook and release copies that generate_assignment writes."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"c.CourseDirectory.root = {str(root.resolve())!r}\n"
        "c.CourseDirectory.course_id = 'detox-lab'\n"
        "# a deleted graded cell comes back from the source (and scores what it checks)\n"
        "c.OverwriteCells.add_missing_cells = True\n"
        "# a check fails by raising; what libraries print to stderr (a transformers warning,\n"
        "# a progress bar) would otherwise score the check 0\n"
        "c.IgnorePattern.enabled = True\n"
        "c.IgnorePattern.pattern = r'(?s).*'\n"
        f"c.ExecutePreprocessor.timeout = {int(timeout)}\n")
    config = Config()
    config.CourseDirectory.root = str(root.resolve())
    api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
    for name, path in assignments().items():
        (root / "source" / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / "source" / name / path.name)
        with tools_on_path():  # in this process: one start-up for all six
            made = api.generate_assignment(name, force=True)
        if not made["success"]:
            raise DetoxError(f"nbgrader could not generate {name}:\n{made['error'][-2000:]}")
    return root


@contextmanager
def tools_on_path():
    before = os.environ.get("PATH", "")
    os.environ["PATH"] = tools_environment()["PATH"]
    try:
        yield
    finally:
        os.environ["PATH"] = before


def write_student_notebooks(folder: Path = STUDENT_DIR) -> list[Path]:
    """The student copy of every notebook (nbgrader's release) in `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="course-") as scratch:
        root = write_course(Path(scratch))
        written = []
        for name, path in assignments().items():
            target = folder / path.name
            shutil.copy(root / "release" / name / path.name, target)
            written.append(target)
    return written
