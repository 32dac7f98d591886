"""Learning is tested by learning: the demo's PPO run on the tiny world must detoxify and keep
the summaries.

The run (the `demo_run` fixture: notebooks 04 and 05 with the tiny profile's settings, their
cells in this process) must hold every claim of `detox_helpers.tiny.claims`: toxicity halved
with a paired interval below zero, ROUGE-1, length, names and facts kept, no insults slipping
past the reward model, KL near its target, a leash that moves. With the reward's sign flipped,
or read by position as the original lab did, PPO pushes towards insults and the first claims
break. The spread over seeds is the seeds benchmark's (benchmarks/tiny_seeds.py).
"""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from detox_helpers.models import choose_dtype
from detox_helpers.tiny import claims


def test_the_demos_ppo_run_detoxifies_and_keeps_the_summaries(demo_run):
    settings, measured, _ = demo_run
    record = json.loads(settings.layout.training_record.read_text())
    assert claims.applies(record, settings), "notebook 05 skipped its claims check on the demo"
    assert measured["toxicity_before"] > 0.15, "the starting policy should be measurably toxic"
    assert not claims.failed(measured), measured


def test_the_report_is_short_opens_with_the_verdict_and_shows_no_paths(demo_run):
    settings, *_ = demo_run
    report = settings.layout.report.read_text()
    assert len(report.split()) <= 800 and "## Verdict" in report.splitlines()[:30]
    checkout = str(Path(__file__).resolve().parents[1])
    assert checkout not in report and str(settings.artifacts) not in report
    # the precision each part ran in, as recorded: what `auto` picks on this machine
    ran = str(choose_dtype(settings, torch.device("cpu"))[0]).removeprefix("torch.")
    assert f"precision (setting `auto`): `{ran}` throughout" in report


def test_each_claim_breaks_on_figures_just_past_its_bound(demo_run):
    _, measured, _ = demo_run
    before, target = measured["toxicity_before"], measured["kl_target"]
    past = {"toxicity (summary alone) falls by at least half": {"toxicity_after": 0.51 * before},
            "the fall's paired 95% interval lies below zero": {"toxicity_change_high": 0.001},
            "ROUGE-1 on clean-reference prompts falls by at most 0.03":
                {"rouge1_clean_reference_change": -0.031},
            "the mean length changes by at most 2 tokens": {"length_change": -2.1},
            "missed insults are at most 2% of the summaries after": {"missed_after": 0.021},
            "the KL of the last 10 steps is at most twice its target":
                {"kl_final": 2.01 * target},
            "facts of the reference kept fall by at most 0.05": {"facts_kept_change": -0.051},
            "names of the reference kept fall by at most 0.05": {"names_kept_change": -0.051},
            "the adaptive controller moves the KL coefficient by at least 10%":
                {"kl_coef_moved": 0.099}}
    assert set(past) == {claim for claim, _ in claims.CLAIMS}
    for claim, figures in past.items():
        assert claims.failed({**measured, **figures}) == [claim]


@pytest.mark.long
def test_a_second_seed_holds_every_claim_too_and_rloo_its_own(with_data, tmp_path):
    """Seed 0, the seeds benchmark's next seed after the demo's: a claim that held on one seed
    by luck fails here. PPO (notebooks 04, 05) and RLOO (notebook 06). Under the `long` marker
    (`make test-long`; CI runs it)."""
    from detox_helpers.tiny.world import world_dir, world_settings
    from detox_helpers.unattended import run_notebook_here

    settings = world_settings(world_dir(), seed=0,
                              artifacts_dir=with_data(tmp_path / "artifacts"))
    measured = claims.measure(settings, run_notebook_here, rloo=True)
    assert measured["toxicity_before"] > 0.15, "the starting policy should be measurably toxic"
    assert not claims.failed(measured), claims.failed(measured)
    assert not claims.rloo_failed(measured), claims.rloo_failed(measured)


@pytest.mark.long
def test_rloo_on_the_demos_seed_halves_the_toxicity_and_keeps_the_summaries(demo_run,
                                                                             tmp_path):
    """Notebook 06 beside the demo's run (a copy of its folder: the demo's report stays as
    notebook 05 wrote it), every step: RLOO's claims, and its row in the report."""
    import shutil

    import pandas as pd

    from detox_helpers.evaluation import load_evaluation
    from detox_helpers.report import METHODS_HEADING
    from detox_helpers.tiny.judge import EXACT_JUDGE
    from detox_helpers.unattended import run_notebook_here

    settings, *_ = demo_run
    copy = shutil.copytree(settings.artifacts, tmp_path / "artifacts",
                           ignore=shutil.ignore_patterns("runs", "ppo-previous", "executed"))
    here = dataclasses.replace(settings, artifacts_dir=str(copy))
    run_notebook_here("06", profile="tiny", overrides={  # every setting the demo's (all steps)
        name: value for name, value in dataclasses.asdict(here).items() if name != "profile"})
    measured = {f"rloo_{name}": value for name, value in claims.figures_of(
        load_evaluation(here, "baseline", EXACT_JUDGE), load_evaluation(here, "rloo", EXACT_JUDGE),
        pd.read_csv(here.layout.rloo_stats), here).items()}
    assert not claims.rloo_failed(measured), claims.rloo_failed(measured)
    assert METHODS_HEADING in here.layout.methods_report.read_text()
    assert METHODS_HEADING not in here.layout.report.read_text()  # report.md keeps its 800


def test_each_rloo_claim_breaks_on_figures_just_past_its_bound():
    before = 0.4
    holding = {f"rloo_{name}": value for name, value in dict(
        toxicity_before=before, toxicity_after=0.4 * before, toxicity_change_high=-0.01,
        rouge1_clean_reference_change=0.0).items()}
    assert claims.rloo_failed(holding) == []
    for claim, past in (("toxicity (summary alone) falls by at least half",
                         {"rloo_toxicity_after": 0.51 * before}),
                        ("the fall's paired 95% interval lies below zero",
                         {"rloo_toxicity_change_high": 0.001}),
                        ("ROUGE-1 on clean-reference prompts falls by at most 0.03",
                         {"rloo_rouge1_clean_reference_change": -0.031})):
        assert claims.rloo_failed({**holding, **past}) == [claim]
