"""Learning is tested by learning: a short PPO run on the tiny world must detoxify.

It would fail if the reward's sign or its label lookup were wrong: then PPO would push the
summaries towards insults, and the paired difference would be positive.
"""

from detox_helpers import evaluation, ppo
from detox_helpers.data import build_dataset


def test_a_short_ppo_run_lowers_toxicity_with_bounded_kl(isolated_settings):
    # the tiny profile's own PPO settings; 8 samples per prompt make the measurement precise
    settings = isolated_settings(eval_samples_per_prompt=8)
    run = ppo.start(settings, progress=False)
    test = build_dataset(settings)["test"]
    before = evaluation.evaluate_policy(settings, run.policy, run.tokenizer, run.reward_model,
                                        test, progress=False)
    ppo.train(settings, run=run, progress=False)
    after = evaluation.evaluate_policy(settings, run.policy, run.tokenizer, run.reward_model,
                                       test, progress=False)
    change = evaluation.paired_comparison(before, after, "toxicity")
    assert change["before"] > 0.15, "the starting policy should be measurably toxic"
    assert change["excludes_zero"] and change["high"] < -0.05, change   # down, with a margin
    final_kl = [row["kl"] for row in run.stats[-10:]]
    assert max(final_kl) < 20, final_kl                                 # still on the leash
    assert after.aggregates["rouge1"]["mean"] > 0.4                     # still summarising
