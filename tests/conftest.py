"""Shared set-up: tests (and the notebooks nbval runs) work offline on the tiny profile.

The environment is set here, at import, so that the notebook kernels nbval starts inherit it.
Test runs keep their own artifacts folder, so they never overwrite a user's results.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ["DETOX_PROFILE"] = "tiny"
os.environ.setdefault("DETOX_ARTIFACTS_DIR", str(REPO / "artifacts" / "tests"))
# The notebooks run under nbval on a reduced step count; the learning test uses the full one.
os.environ.setdefault("DETOX_MAX_PPO_STEPS", "12")
# Never reach for a hub: a hub id fails at once instead of after retries.
for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[variable] = "1"


@pytest.fixture(scope="session")
def tiny_settings():
    """Tiny-profile settings, the shipped tiny world checked."""
    from detox_helpers.settings import load_settings
    from detox_helpers.tiny_world import ensure_tiny_world

    settings = load_settings("tiny")
    ensure_tiny_world(settings)
    return settings


@pytest.fixture
def isolated_settings(tiny_settings, tmp_path):
    """Tiny settings that write into a fresh folder (the shipped world serves models and data);
    keywords override any setting, e.g. `isolated_settings(batch_size=4)`."""
    from detox_helpers.tiny_world import world_dir, world_settings

    def make(**overrides):
        overrides.setdefault("artifacts_dir", tmp_path / "artifacts")
        return world_settings(world_dir(), **overrides)
    return make


@pytest.fixture
def world_env(tiny_settings):
    """DETOX_* variables that point a command at the shipped world's parts."""
    from detox_helpers.layout import WORLD_PARTS

    return {f"DETOX_{setting.upper()}": getattr(tiny_settings, setting) for setting in WORLD_PARTS}
