"""Notebook 07's over-optimisation curve: the snapshots PPO keeps along a run, Gao et al.'s fit
and its peak, the curve's points against a hand computation on a small run, and the claims
(checked on the demo's seed and on seed 0 under the `long` marker)."""

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from detox_helpers import stats
from detox_helpers.checkpoints import snapshots
from detox_helpers.tiny import claims
from detox_helpers.unattended import run_notebook_here

# A small run: 4 steps of 4 prompts, a snapshot every 2; 3 test prompts x 2 summaries a snapshot.
SMALL_CURVE = dict(batch_size=4, mini_batch_size=2, ppo_epochs=1, max_ppo_steps=4,
                   checkpoint_every=2, snapshot_every=2, output_min_length=8,
                   output_max_length=12, eval_max_new_tokens=12, eval_samples_per_prompt=2,
                   curve_prompts=3, precision="float32")


def gao(d, g0=0.5, a=0.3, b=0.1):
    return g0 + a * np.sqrt(d) - b * d


def test_the_fit_recovers_a_known_curve_and_its_peak():
    kl = np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0])
    assert stats.gao_fit(kl, gao(kl)) == pytest.approx((0.5, 0.3, 0.1))
    assert stats.peak_kl(0.3, 0.1) == pytest.approx(2.25)  # (a / 2b)^2
    assert stats.peak_kl(-0.1, 0.1) == 0.0                  # falls from the start
    assert stats.peak_kl(0.3, -0.01) == np.inf              # never turns down


def test_the_peak_interval_pins_a_real_peak_and_refuses_an_extrapolated_one():
    rng = np.random.default_rng(0)
    kl = np.tile([0.0, 0.5, 1.0, 2.0, 4.0, 8.0], (60, 1)) + rng.normal(0, 0.05, (60, 6))
    fit = stats.peak_interval(kl, gao(kl.clip(0)) + rng.normal(0, 0.1, kl.shape), n_boot=300)
    assert fit["supported"] and fit["low"] < 2.25 < fit["high"] and fit["n"] == 60
    # still rising at the last point: the peak lies beyond what was measured
    rising = stats.peak_interval(kl, gao(kl.clip(0), b=0.01) + rng.normal(0, 0.1, kl.shape),
                                 n_boot=300)
    assert not rising["supported"] and rising["high"] > kl.mean(axis=0).max()
    with pytest.raises(ValueError, match="prompts, points"):
        stats.peak_interval(kl, kl[:, :3])


@pytest.fixture(scope="module")
def small_curve(with_data, tmp_path_factory, papermill_here):
    """Notebook 04 (the leash) and notebook 07 (which trains the run without it, in this
    process) on SMALL_CURVE: the settings' keywords and notebook 07's variables."""
    overrides = dict(SMALL_CURVE, artifacts_dir=str(with_data(
        tmp_path_factory.mktemp("curve") / "artifacts")))
    run_notebook_here("04", profile="tiny", overrides=overrides)
    with pytest.MonkeyPatch.context() as patch:
        papermill_here(patch)
        # the run without the leash as long as the leashed one here (the notebook's is 60 steps)
        no_leash = {"run_name": "no-leash", "init_kl_coef": 0.0, "adaptive_kl": False,
                    "max_ppo_steps": SMALL_CURVE["max_ppo_steps"]}
        return overrides, run_notebook_here("07", profile="tiny", overrides=overrides,
                                            no_leash=no_leash)


def test_a_run_keeps_its_adapter_at_the_start_every_few_steps_and_at_the_end(small_curve):
    from safetensors.torch import load_file

    variables = small_curve[1]
    for run in variables["runs"].values():
        kept = snapshots(run.layout)
        assert list(kept) == [0, 2, 4]
        start = load_file(kept[0] / "adapter_model.safetensors")
        assert all(not weights.any() for name, weights in start.items() if "lora_B" in name)
        last = load_file(kept[4] / "adapter_model.safetensors")
        final = load_file(run.layout.final_adapter / "adapter_model.safetensors")
        assert all(torch.equal(last[name], final[name]) for name in final)


def test_the_curves_points_match_a_hand_computation(small_curve):
    variables = small_curve[1]
    curve, points, seed = variables["curve"], variables["points"], variables["settings"].seed
    assert len(points) == 6 and (points["n"] == 3).all()
    for _, point in points.iterrows():
        at = curve[(curve["run"] == point["run"]) & (curve["step"] == point["step"])]
        start = curve[(curve["run"] == point["run"]) & (curve["step"] == 0)]
        assert point["KL"] == pytest.approx(at["kl"].mean())
        assert point["reward"] == pytest.approx(at["reward"].mean())
        clean_and_faithful = ~at["insult"].astype(bool) & (at["facts_kept"] >= 1)
        assert point["gold"] == pytest.approx(clean_and_faithful.mean())
        # the paired interval against the start, by hand: prompts resampled together
        change = (at.groupby("prompt")["gold"].mean() - start.groupby("prompt")["gold"].mean())
        picks = np.random.default_rng(seed).integers(0, 3, size=(stats.N_BOOT, 3))
        draws = change.to_numpy()[picks].mean(axis=1)
        assert point["gold change"] == pytest.approx(change.mean())
        assert [point["gold low"], point["gold high"]] == pytest.approx(
            np.percentile(draws, [2.5, 97.5]))


def test_each_snapshots_kl_is_its_summaries_log_ratio_to_the_reference(small_curve):
    """The last snapshot of the run without the leash, again by hand: its summaries drawn with
    the same seed, each scored token by token with the adapter on and off."""
    from peft import PeftModel

    from detox_helpers.generation import generate, sampling_kwargs
    from detox_helpers.models import load_policy

    variables = small_curve[1]
    settings, run = variables["settings"], variables["runs"]["no leash"]
    policy, tokenizer = load_policy(settings, torch.device("cpu"))
    model = PeftModel.from_pretrained(policy, snapshots(run.layout)[4]).eval()
    prompts = variables["prompt_ids"]
    drawn = generate(model, tokenizer, prompts, seed=settings.seed, progress=False,
                     batch_size=settings.eval_batch_size or len(prompts),
                     **sampling_kwargs(settings, settings.eval_max_new_tokens))
    table = variables["curve"]
    table = table[(table["run"] == "no leash") & (table["step"] == 4)]
    assert drawn.texts == table["summary"].tolist()

    def logprob(prompt, summary):
        with torch.no_grad():
            logits = model(input_ids=torch.as_tensor(prompt)[None],
                           decoder_input_ids=summary[None, :-1]).logits[0]
        return logits.log_softmax(-1).gather(-1, summary[1:, None]).sum().item()
    for prompt, summary, measured in zip(prompts, drawn.token_ids, table["kl"], strict=True):
        on = logprob(prompt, summary)
        with model.disable_adapter():
            off = logprob(prompt, summary)
        assert on - off == pytest.approx(measured, abs=1e-4)


def test_the_verdict_and_the_plot_come_from_the_figures(small_curve):
    variables = small_curve[1]
    assert set(variables["fits"]) == {"leash", "no leash"}
    for name in ("**leash**", "**no leash**"):
        assert name in variables["verdict"]
    best = variables["best"]
    for name, top in best.iterrows():
        of_run = variables["points"][variables["points"]["run"] == name]
        assert top["gold"] == of_run["gold"].max()
        assert f"best at step {int(top['step'])} (KL {top['KL']:.2f})" in variables["verdict"]
    assert "Proxy and gold against sqrt(KL)" in variables["fig"]._suptitle.get_text()


def a_curve(proxy_last=1.6, gold_last=0.1, leash_kl=0.6):
    """A per-summary table as notebook 07 saves it: 20 prompts x 2 samples at steps 0, 20, 40
    of both runs; without the leash the gold peaks at step 20 (KL 0.5) and ends at `gold_last`
    (KL 10), the proxy ends at `proxy_last`; with it the KL ends at `leash_kl`."""
    rows = []
    shape = {"no leash": {0: (0.0, 0.6, 0.6), 20: (0.5, 1.2, 0.9), 40: (10.0, proxy_last,
                                                                      gold_last)},
             "leash": {0: (0.0, 0.6, 0.6), 20: (0.3, 1.1, 0.85), 40: (leash_kl, 1.5, 0.9)}}
    rng = np.random.default_rng(1)
    for run, steps in shape.items():
        for step, (kl, reward, gold) in steps.items():
            for prompt in range(20):
                for sample in range(2):
                    rows.append(dict(run=run, step=step, prompt=prompt, sample=sample,
                                     kl=kl, reward=reward + rng.normal(0, 0.05),
                                     gold=float(rng.random() < gold)))
    return pd.DataFrame(rows)


def test_the_curve_claims_hold_on_a_turn_and_each_breaks_past_its_bound():
    measured = claims.curve_figures(a_curve())
    assert measured["curve_free_best_step"] == 20 and measured["curve_free_kl_best"] == 0.5
    assert measured["curve_free_kl_fallen"] == 10.0
    assert claims.curve_failed(measured) == []
    gold, proxy, leash = (claim for claim, _ in claims.CURVE_CLAIMS)
    # the proxy level with its best: the reward model does not see the fall either
    assert claims.curve_failed(claims.curve_figures(a_curve(proxy_last=1.2))) == []
    assert claims.curve_failed(claims.curve_figures(a_curve(proxy_last=1.0))) == [proxy]
    # no fall shown: the gold claim breaks (the leash's then holds whatever its KL)
    assert claims.curve_failed(claims.curve_figures(a_curve(gold_last=0.9))) == [gold]
    assert claims.curve_failed(claims.curve_figures(a_curve(leash_kl=10.5))) == [leash]


def test_notebook_07_checks_its_claims_only_on_the_demos_settings():
    from detox_helpers.checkpoints import training_settings
    from detox_helpers.ppo import REWARD_MODULE
    from detox_helpers.settings import load_settings

    demo = load_settings("tiny", environ={})
    record = {"reward": REWARD_MODULE, "steps": demo.max_ppo_steps,
              "settings": training_settings(demo)}
    unleashed = dataclasses.replace(demo, run_name="no-leash", init_kl_coef=0.0,
                                    adaptive_kl=False, max_ppo_steps=claims.NO_LEASH_STEPS)
    assert claims.curve_applies(record, demo, unleashed)
    assert not claims.curve_applies(record, demo, dataclasses.replace(unleashed,
                                                                      max_ppo_steps=160))
    assert not claims.curve_applies(record, demo, dataclasses.replace(unleashed,
                                                                      init_kl_coef=0.05))
    assert not claims.curve_applies(record, dataclasses.replace(demo, curve_prompts=8),
                                    dataclasses.replace(unleashed, curve_prompts=8))
    assert not claims.curve_applies(record | {"steps": 12}, demo, unleashed)


@pytest.mark.long
def test_the_demos_seed_shows_the_turn_and_the_leash_stops_short(demo_run, tmp_path,
                                                                 papermill_here):
    """Notebook 07 beside the demo's run (a copy of its folder), every step of both runs."""
    settings, *_ = demo_run
    copy = shutil.copytree(settings.artifacts, tmp_path / "artifacts",
                           ignore=shutil.ignore_patterns("runs", "ppo-previous", "executed"))
    here = dataclasses.replace(settings, artifacts_dir=str(copy))
    with pytest.MonkeyPatch.context() as patch:
        papermill_here(patch)
        run_notebook_here("07", profile="tiny", overrides={
            name: value for name, value in dataclasses.asdict(here).items() if name != "profile"})
    measured = claims.curve_figures(pd.read_csv(here.layout.eval_table(claims.CURVE_TABLE)),
                                    here.seed)
    assert not claims.curve_failed(measured), measured


@pytest.mark.long
def test_seed_0_shows_the_turn_and_the_leash_stops_short(with_data, tmp_path, papermill_here):
    from detox_helpers.tiny.world import world_dir, world_settings

    settings = world_settings(world_dir(), seed=0, artifacts_dir=with_data(tmp_path / "artifacts"))
    with pytest.MonkeyPatch.context() as patch:
        papermill_here(patch)
        measured = claims.measure(settings, run_notebook_here, curve=True)
    assert not claims.curve_failed(measured), measured
