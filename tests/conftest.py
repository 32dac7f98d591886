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
