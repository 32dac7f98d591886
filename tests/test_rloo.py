"""Notebook 06's RLOO run: a plan it cannot run is refused before training."""

import pytest

from detox_helpers.errors import DetoxError


def test_notebook_06_refuses_a_k_that_does_not_divide_the_batch_before_training(tiny_settings,
                                                                                monkeypatch,
                                                                                tmp_path):
    from detox_helpers.unattended import run_notebook_here

    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(tmp_path))  # nothing evaluated there yet
    monkeypatch.setenv("DETOX_RLOO_K", "3")
    with pytest.raises(DetoxError, match="rloo_k=3 must divide batch_size=16"):
        run_notebook_here("06")
