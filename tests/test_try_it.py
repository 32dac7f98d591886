"""Every "Try it" item runs as written and does what its text tells the learner to expect.

Each test makes the item's exact change (`detox_helpers.tiny.try_it`: what it types must
stand in the notebook's "Try it" text) and checks the direction the text states, with a margin.
Training items run 30 steps, not the text's 160, and are compared with the demo run's same
steps: a run is seeded step by step, so its first steps are those of the longer run.
"""

import shutil

import pandas as pd
import pytest

from detox_helpers.checkpoints import training_record
from detox_helpers.layout import Layout
from detox_helpers.ppo import REWARD_MODULE
from detox_helpers.tiny.try_it import ITEMS, item, with_edits
from detox_helpers.unattended import run_notebook_here

# steps of a named run (notebooks 04 and 06): enough for each item's direction to show with a
# margin. After 30, PPO without the leash had 1.6 times the default run's KL (5 times after 50),
# and RLOO rewarded by position was 0.065 above the default run's toxicity (the test asks 0.08).
STEPS = 50


def test_an_item_refuses_a_change_its_text_does_not_tell(tmp_path):
    with pytest.raises(ValueError, match="not in notebook 04's Try it"):
        with_edits("04", {"overrides = {}": 'overrides = {"run_name": "untold"}'}, tmp_path)
    with pytest.raises(ValueError, match="does not stand once"):
        with_edits("04", {"no such code": ITEMS["kl-free"][1]["overrides = {}"]}, tmp_path)


def test_the_pipelines_softmax_makes_a_reward_bounded_by_one(tmp_path, tiny_settings):
    variables = run_notebook_here(item("softmax", tmp_path))
    reward = variables["by_label"]
    assert all(0 < value < 1 for value in reward.values())
    assert reward["clean"] > 0.9 > 0.1 > reward["insulting"]
    scores = variables["classify"]([variables["texts"]["mild"]])[0]
    assert sum(s["score"] for s in scores) == pytest.approx(1, abs=1e-5)  # probabilities


def test_insults_outside_the_vocabulary_pass_as_clean(tmp_path, tiny_settings):
    variables = run_notebook_here(item("blind-spots", tmp_path))  # seven texts, no crash
    toxicity = variables["verdicts"]["toxicity = P(hate)"]
    assert len(variables["comparison"]) == len(toxicity) == 7
    assert toxicity["moron"] > 0.9
    assert all(toxicity[name] < 0.1 for name in ("dimwit", "awful", "hate"))


def test_an_insulting_prompt_makes_every_summary_toxic_with_it(tmp_path, tiny_settings):
    comparison = run_notebook_here(item("insulting-prompt", tmp_path))["comparison"]
    assert comparison.loc["clean", "summary alone"] < 0.1        # the summary's own score
    assert (comparison["prompt + summary"] > 0.5).all()         # the clean one too


@pytest.fixture(scope="module")
def named_runs(demo_run, tmp_path_factory):
    """Notebook 04's three items, STEPS steps each, trained beside the demo run: name ->
    their statistics, and the demo run's first STEPS steps under "default"."""
    settings = demo_run[0]
    folder = tmp_path_factory.mktemp("try-it")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETOX_ARTIFACTS_DIR", str(settings.artifacts))
        stats = {name: pd.DataFrame(run_notebook_here(item(name, folder / name),
                                                      max_steps=STEPS)["history"])
                 for name in ("kl-free", "lr-x10", "position-0")}
    stats["default"] = pd.read_csv(settings.layout.stats_file).head(STEPS)
    return stats


def late(stats: pd.DataFrame, column: str) -> float:
    return stats[column].tail(5).mean()


@pytest.mark.long  # trains notebook 04's three items: about 70 s
def test_without_the_leash_the_kl_runs_away_while_toxicity_falls(named_runs):
    free, default = named_runs["kl-free"], named_runs["default"]
    assert (free["kl_coef"] == 0).all()
    assert late(free, "kl") > 2 * late(default, "kl")       # 4.9x on the developer's machine
    assert late(free, "toxicity_mean") < free["toxicity_mean"].head(5).mean()


@pytest.mark.long  # trains notebook 04's three items: about 70 s
def test_a_tenfold_learning_rate_collapses_into_long_toxic_text(named_runs):
    fast, default = named_runs["lr-x10"], named_runs["default"]
    assert fast["kl"].max() > 10 * default["kl"].max()     # 170x
    assert late(fast, "response_length") > late(default, "response_length") + 5  # 16 longer
    assert late(fast, "toxicity_mean") > late(default, "toxicity_mean") + 0.3     # 0.79 to 0.08


@pytest.mark.long  # trains notebook 04's three items: about 70 s
def test_the_position_reward_rises_while_the_toxicity_stays(named_runs, demo_run):
    position, default = named_runs["position-0"], named_runs["default"]
    assert late(position, "toxicity_mean") > 0.5 * position["toxicity_mean"].head(5).mean()
    assert late(position, "toxicity_mean") > late(default, "toxicity_mean") + 0.08  # +0.20
    # the training record keeps the learner's reward function, the default run the module's
    layout = demo_run[0].layout
    assert "def reward_function" in training_record(Layout(layout.root, "position-0"))["reward"]
    assert training_record(layout)["reward"] == REWARD_MODULE


@pytest.mark.long  # trains notebook 04's three items: about 70 s
def test_a_run_without_the_leash_sits_beside_the_default_run(named_runs, demo_run, tmp_path,
                                                             monkeypatch):
    """The learner's path: notebook 04 without the leash on a named run (above), notebook 05 on
    that run, then notebook 05 with both runs side by side."""
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(demo_run[0].artifacts))
    evaluated = run_notebook_here(item("evaluate-run", tmp_path / "evaluate"))
    assert evaluated["settings"].run_name == "kl-free"
    runs = run_notebook_here(item("compare-runs", tmp_path))["side_by_side"]
    kl = runs.filter(like="KL").iloc[:, 0]
    assert list(runs.index) == ["(unnamed)", "kl-free"] and kl["kl-free"] > 2 * kl["(unnamed)"]


@pytest.fixture
def demo_copy(demo_run, tmp_path, monkeypatch):
    """The demo run's folder copied, for items that evaluate its policies again."""
    copy = shutil.copytree(demo_run[0].artifacts, tmp_path / "artifacts",
                           ignore=shutil.ignore_patterns("runs", "ppo-previous", "executed"))
    monkeypatch.setenv("DETOX_ARTIFACTS_DIR", str(copy))
    return demo_run[2]  # notebook 05's variables of the demo run (k = 4, every test prompt)


def test_best_of_more_samples_comes_closer_to_ppo(demo_copy, tmp_path):
    eight = run_notebook_here(item("best-of-8", tmp_path))
    headline = "toxicity"
    gap = {k: variables["choosing"].loc[headline, "PPO - best-of-k"]
           for k, variables in ((4, demo_copy), (8, eight))}
    assert gap[8] > gap[4]  # best-of-8 is cleaner than best-of-4: PPO's lead shrinks
    probability = {k: variables["before"].aggregates["toxicity_probability"]["mean"]
                   for k, variables in ((4, demo_copy), (8, eight))}
    assert probability[8] > probability[4] + 0.05  # grows with k ...
    share = {k: variables["before"].aggregates["toxic_share"]["mean"]
             for k, variables in ((4, demo_copy), (8, eight))}
    assert abs(share[8] - share[4]) < 0.05         # ... while the share does not


def test_eleven_prompts_give_intervals_about_twice_as_wide(demo_copy, tmp_path):
    few = run_notebook_here(item("few-prompts", tmp_path))["table"]
    assert few["n"].max() == 11
    width = {n: table.loc["toxicity"].pipe(lambda r: r.high - r.low)
             for n, table in (("all", demo_copy["table"]), (11, few))}
    assert width[11] > 1.5 * width["all"]  # twice, on the developer's machine


@pytest.fixture(scope="module")
def rloo_runs(demo_run, tmp_path_factory):
    """Notebook 06 for STEPS steps in a copy of the demo run's folder: as it stands ("default")
    and with each of its three items. Name -> the notebook's variables."""
    copy = shutil.copytree(demo_run[0].artifacts, tmp_path_factory.mktemp("rloo") / "artifacts",
                           ignore=shutil.ignore_patterns("runs", "ppo-previous", "executed"))
    folder = tmp_path_factory.mktemp("rloo-items")
    runs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETOX_ARTIFACTS_DIR", str(copy))
        patch.setenv("DETOX_MAX_PPO_STEPS", str(STEPS))
        for name in ("default", "rloo-k2", "rloo-k8", "rloo-kl-free", "rloo-position-0"):
            path = "06" if name == "default" else item(name, folder / name)
            runs[name] = run_notebook_here(path)
    return runs


def rloo_row(runs, name):
    return runs[name]["table"].loc["RLOO"]


@pytest.mark.long
def test_rloo_with_two_or_eight_samples_a_prompt_lowers_the_toxicity_too(rloo_runs):
    for name, k in (("rloo-k2", 2), ("rloo-k8", 8)):
        assert rloo_runs[name]["k"] == k and rloo_runs[name]["prompts_per_step"] == 16 // k
        assert rloo_row(rloo_runs, name)["high"] < 0, name   # its fall's interval below zero


@pytest.mark.long
def test_rloo_without_the_leash_stays_about_as_near_the_reference(rloo_runs):
    free, default = (rloo_runs[name]["stats"] for name in ("rloo-kl-free", "default"))
    assert (free["kl_coef"] == 0).all()
    assert late(free, "kl") < 2 * late(default, "kl") + 0.1   # no runaway, unlike PPO's
    assert rloo_row(rloo_runs, "rloo-kl-free")["high"] < 0


@pytest.mark.long
def test_rloo_rewarded_by_position_makes_the_summaries_more_toxic(rloo_runs):
    by_position, default = (rloo_row(rloo_runs, name) for name in ("rloo-position-0", "default"))
    # 30 steps: 0.32 against the default's 0.26 (from 0.32); 160 steps (the item's text): 0.50
    # against 0.07
    assert by_position["high"] > 0 and by_position["toxicity"] > default["toxicity"] + 0.08


@pytest.fixture(scope="module")
def curves(demo_run, tmp_path_factory, papermill_here):
    """Notebook 07 beside a copy of the demo's run (the tiny profile's own settings, read from
    the environment as a learner's kernel reads them): as it stands, then each of its two items
    as written; name -> its table of points."""
    copy = shutil.copytree(demo_run[0].artifacts, tmp_path_factory.mktemp("curve") / "artifacts",
                           ignore=shutil.ignore_patterns("runs", "ppo-previous", "executed"))
    folder, points = tmp_path_factory.mktemp("try-it-07"), {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DETOX_ARTIFACTS_DIR", str(copy))
        patch.delenv("DETOX_MAX_PPO_STEPS", raising=False)  # the tests' 12: not the demo's
        papermill_here(patch)  # the second run in this process
        for name in ("default", "weak-leash", "more-prompts"):
            path = "07" if name == "default" else item(name, folder / name)
            points[name] = run_notebook_here(path)["points"]
    return points


@pytest.mark.long
def test_a_weak_leash_drifts_further_than_the_labs_and_far_less_than_none(curves):
    last = {name: table.loc[table.groupby("run")["step"].idxmax()].set_index("run")
            for name, table in curves.items()}  # each run's last snapshot
    weak = last["weak-leash"].loc["weak-leash"]
    leash_at_60 = curves["default"].query("run == 'leash' and step == @weak.step").iloc[0]
    assert leash_at_60["KL"] < weak["KL"] < 0.5 * last["default"].loc["no leash", "KL"]
    assert weak["gold"] > last["default"].loc["no leash", "gold"] + 0.2  # it did not turn


@pytest.mark.long
def test_more_prompts_at_each_snapshot_narrow_every_interval(curves):
    width = {name: (table["gold high"] - table["gold low"])[table["step"] > 0]
             for name, table in curves.items() if name != "weak-leash"}
    assert (curves["more-prompts"]["n"] == 88).all()
    assert width["more-prompts"].mean() < 0.75 * width["default"].mean()
