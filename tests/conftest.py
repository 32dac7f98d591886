"""Shared fixtures: tests work offline on the tiny profile (the environment that says so is set
by the repository's conftest.py, which pytest loads first)."""

import shutil
from pathlib import Path

import pytest

from detox_helpers.unattended import run_notebook_here


@pytest.fixture(scope="session")
def prepared_data():
    """The default tiny dataset, prepared once per session by notebook 01 (run in this process)
    in the tests' artifacts folder; returns that folder's `data/`."""
    from detox_helpers.settings import load_settings
    from detox_helpers.tiny.world import ensure_tiny_world

    settings = load_settings("tiny")
    ensure_tiny_world(settings)
    run_notebook_here("01", profile="tiny", overrides={"artifacts_dir": settings.artifacts_dir})
    return settings.layout.root / "data"


@pytest.fixture(scope="session")
def tiny_settings(prepared_data):
    """Tiny-profile settings, the shipped tiny world checked and its dataset prepared."""
    from detox_helpers.settings import load_settings

    return load_settings("tiny")


@pytest.fixture(scope="session")
def with_data(prepared_data):
    """`with_data(folder)`: copy the prepared dataset into the artifacts folder `folder` (made
    if missing), so that a fresh artifacts folder needs no run of notebook 01; returns it."""
    def copy(folder):
        shutil.copytree(prepared_data, Path(folder) / prepared_data.name, dirs_exist_ok=True)
        return Path(folder)
    return copy


@pytest.fixture
def isolated_settings(tiny_settings, with_data, tmp_path):
    """Tiny settings that write into a fresh folder (the shipped world serves models, the
    prepared dataset is copied there); keywords override any setting, e.g.
    `isolated_settings(batch_size=4)`."""
    from detox_helpers.tiny.world import world_dir, world_settings

    def make(**overrides):
        overrides.setdefault("artifacts_dir", tmp_path / "artifacts")
        with_data(overrides["artifacts_dir"])
        return world_settings(world_dir(), **overrides)
    return make


@pytest.fixture
def world_env(tiny_settings):
    """DETOX_* variables that point a command at the shipped world's parts."""
    from detox_helpers.layout import WORLD_PARTS

    return {f"DETOX_{setting.upper()}": getattr(tiny_settings, setting) for setting in WORLD_PARTS}


@pytest.fixture
def run_notebook():
    """`run_notebook("04", overrides={...}, max_steps=2)`: see run_notebook_here."""
    return run_notebook_here


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory, with_data):
    """The demo's run, once per session: notebooks 04 and 05 run here with the tiny profile's
    own settings (seed 42, every step) in a folder of their own. Returns (settings, the claims'
    figures, notebook 05's variables). Tests that train named runs beside it use its folder;
    tests that would replace its evaluations copy it first."""
    from detox_helpers.tiny import claims
    from detox_helpers.tiny.world import world_dir, world_settings

    settings = world_settings(world_dir(), artifacts_dir=with_data(
        tmp_path_factory.mktemp("demo") / "artifacts"))
    variables = {}

    def run(number, **parameters):
        variables[number] = run_notebook_here(number, **parameters)
    # notebook 05's own claims check on too: the demo's run is the run it is written for
    return settings, claims.measure(settings, run, check_claims=True), variables["05"]


@pytest.fixture(scope="session")
def student_copies(tmp_path_factory):
    """nbgrader's student copy of every notebook (`make student`), by the notebook's stem."""
    from detox_course.course_folder import write_student_notebooks

    folder = tmp_path_factory.mktemp("student")
    return {path.stem: path for path in write_student_notebooks(folder)}


# A small, quick training run; precision pinned: runs compared weight for weight must not depend
# on the machine's `auto`.
SMALL = dict(batch_size=4, mini_batch_size=2, ppo_epochs=1, checkpoint_every=2,
             output_min_length=8, output_max_length=12, eval_size=4,
             eval_samples_per_prompt=2, precision="float32")


@pytest.fixture
def small_run_settings():
    """The settings of a small, quick run (the `command` fixture's), as keywords."""
    return dict(SMALL)


@pytest.fixture
def command(world_env, with_data, tmp_path, monkeypatch, capsys):
    """Run `python -m detox_course ARGS` in this process on a fresh artifacts folder (the
    prepared dataset copied there, the small run's settings); returns (exit status, stdout,
    stderr). The notebooks' cells run in this process too, without a papermill kernel."""
    import logging

    from detox_course import __main__ as cli
    from detox_course import execute

    for name, value in world_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(with_data(tmp_path / "artifacts")))
    for name, value in SMALL.items():
        monkeypatch.setenv(f"DETOX_{name.upper()}", str(value))
    def run_here(path, settings, **parameters):
        run_notebook_here(path.name[:2], **parameters)
        return execute.executed_copy(settings, path)
    monkeypatch.setattr(execute, "run_notebook", run_here)

    def run(*args, **env):
        with monkeypatch.context() as for_this_call:
            for name, value in env.items():
                for_this_call.setenv(name, value)
            # Library loggers keep the stream an earlier test captured (closed since); their
            # failed writes must not pass for this command's traceback.
            for_this_call.setattr(logging, "raiseExceptions", False)
            status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture(scope="session")
def papermill_here():
    """`papermill_here(patch)`: notebook 07's second run (notebook 04 through
    `papermill.execute_notebook`) executed in this process instead, on `patch` (a MonkeyPatch)."""
    import papermill

    def in_this_process(patch) -> None:
        patch.setattr(papermill, "execute_notebook", lambda path, _, parameters, **__:
                      run_notebook_here(path, **parameters))
    return in_this_process


@pytest.fixture
def layout(tmp_path):
    """The layout of the `command` fixture's artifacts folder."""
    from detox_helpers.layout import Layout

    return Layout(tmp_path / "artifacts")


@pytest.fixture
def one_error_line():
    """`one_error_line(status, err)`: exit 2 and one `error:` line (progress bars of model
    loading may precede it)."""
    def check(status, err):
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        return status == 2 and len(errors) == 1 and "Traceback" not in err
    return check


@pytest.fixture
def no_space_for():
    """`no_space_for(suffix)`: a Path.write_bytes that fails as a full disk does for files whose
    name ends in `suffix`."""
    import errno
    import os

    def make(suffix: str):
        write_bytes = Path.write_bytes

        def full(self, data):
            if self.name.endswith(suffix):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return write_bytes(self, data)
        return full
    return make
