"""Learning is tested by learning: the demo's PPO run on the tiny world must detoxify, for more
than one seed, and keep the summaries.

Each seed runs notebooks 04 and 05 (train with the tiny profile's settings, evaluate before
and after; their cells in this process) and must hold every claim of
`detox_helpers.tiny.claims`: toxicity halved with a paired interval below zero, ROUGE-1 and
length kept, no insults slipping past the reward model, KL near its target. With the reward's
sign flipped, or read by position as the original lab did, PPO pushes towards insults and the
first claims break.
"""

from pathlib import Path

import pytest

from detox_helpers.tiny import claims
from detox_helpers.unattended import run_notebook_here


@pytest.mark.parametrize("seed", [0, 1])
def test_the_demos_ppo_run_detoxifies_and_keeps_the_summaries(isolated_settings, seed):
    settings = isolated_settings(seed=seed)
    measured = claims.measure(settings, run_notebook_here)
    assert measured["toxicity_before"] > 0.15, "the starting policy should be measurably toxic"
    assert not claims.failed(measured), {k: v for k, v in measured.items()
                                         if k != "reward_hacking"}
    # the report an instructor hands out: short, the verdict first, no machine's paths
    report = settings.layout.report.read_text()
    assert len(report.split()) <= 800 and "## Verdict" in report.splitlines()[:30]
    checkout = str(Path(__file__).resolve().parents[1])
    assert checkout not in report and str(settings.artifacts) not in report
