"""compare's tables and paragraphs, cell by cell, on evaluations written by hand: the examples
table, best-of-k against the baseline and PPO, the methods side by side and their paragraph.
Every expected value below is worked out by hand in the comments (no model, seconds)."""

import numpy as np
import pandas as pd
import pytest

from detox_helpers import compare, evaluation, stats, verdicts, words
from detox_helpers.errors import DetoxError
from detox_helpers.tiny.judge import EXACT_JUDGE

LONG_DIALOGUE = "#Person1#:   Hello\n\n" + "word " * 40  # 220 characters, 216 on one line


def judged(rewards, name_kept, facts_kept, toxicity=None):
    """len(rewards) prompts x 2 samples with the exact judge's columns. Sample 0 carries the
    figures given (per prompt); sample 1 is a decoy the examples must never show (reward 9,
    summary "decoy")."""
    rows = []
    for prompt in range(len(rewards)):
        for sample in range(2):
            first = sample == 0
            rows.append(dict(
                id=f"d{prompt}", prompt=prompt, sample=sample,
                summary=f"summary {prompt}" if first else "decoy",
                reward=rewards[prompt] if first else 9.0,
                toxicity=toxicity[prompt][sample] if toxicity else 0.5,
                name_kept=name_kept[prompt] if first else True,
                facts_kept=facts_kept[prompt] if first else 1.0,
                reference_has_name=prompt != 3, reference_clean=prompt != 1,
                rouge1=0.5, length_tokens=10.0))
    return pd.DataFrame(rows)


def test_the_examples_table_holds_each_chosen_prompts_first_summaries_rewards_and_losses():
    before = judged([0.0, -1.0, 0.5, -3.0], [True, True, True, True], [1.0, 1.0, 1.0, 1.0])
    # gains 0.5, 2.0, 0.5, 5.0; prompt 0 loses its name, 1 its name and a fact, 2 a fact, 3 drops
    # a name its reference does not hold (no loss)
    after = judged([0.5, 1.0, 1.0, 2.0], [False, False, True, False], [1.0, 0.5, 0.5, 1.0])
    dialogues = {"d0": LONG_DIALOGUE, "d1": "one", "d3": "three"}   # d2's is not on record
    examples = compare.qualitative_table(
        evaluation.Evaluation(before, {}, {"dialogues": dialogues}, EXACT_JUDGE),
        evaluation.Evaluation(after, {}, judge=EXACT_JUDGE), rows=4)
    # the 2 largest gains (prompts 3, 1), then the first 2 others (0, 2), largest gain first;
    # prompts 0 and 2 tie at +0.5 and keep their order
    expected = pd.DataFrame({
        "id": ["d3", "d1", "d0", "d2"],
        "dialogue": ["three", "one", compare.shorten(LONG_DIALOGUE), ""],
        "summary before": ["summary 3", "summary 1", "summary 0", "summary 2"],
        "summary after": ["summary 3", "summary 1", "summary 0", "summary 2"],
        "reward before": [-3.0, -1.0, 0.0, 0.5], "reward after": [2.0, 1.0, 0.5, 1.0],
        "reward gain": [5.0, 2.0, 0.5, 0.5], "lost": ["", "a name, a fact", "a name", "a fact"]})
    pd.testing.assert_frame_equal(examples, expected)
    fewer = compare.qualitative_table(evaluation.Evaluation(before, {}),
                                      evaluation.Evaluation(after, {}), rows=3)
    assert fewer["id"].tolist() == ["d3", "d1", "d0"]       # 1 largest gain, then 2 others
    plain = [e.drop(columns=["name_kept", "facts_kept"]) for e in (before, after)]
    assert "lost" not in compare.qualitative_table(
        *(evaluation.Evaluation(e, {}, judge=EXACT_JUDGE) for e in plain),
        rows=2)  # not scored by the exact judge, no column
    assert "lost" not in compare.qualitative_table(
        *(evaluation.Evaluation(e, {}) for e in (before, after)), rows=2)  # no judge, no column


def test_a_dialogue_is_shortened_to_its_limit_on_one_line():
    short = compare.shorten(LONG_DIALOGUE)
    assert len(short) == 160 and short.endswith(" word ...")  # 157 characters, then ...
    assert short.startswith("#Person1#: Hello word ")           # whitespace runs become one
    exactly = "x" * 160
    assert compare.shorten(exactly) == exactly and compare.shorten(exactly + "y") == \
        "x" * 157 + "..."
    assert compare.shorten(" a\n b ", limit=3) == "a b"


def test_best_of_k_sets_the_reward_models_pick_against_the_baseline_and_ppo():
    # toxicity [sample 0, sample 1] per prompt; rewards pick sample 1 in prompts 0 and 3
    # (judged() gives every sample 1 the reward 9: 9 > 0 and 9 > -3)...
    before = judged([0.0, 10.0, 10.0, -3.0], [True] * 4, [1.0] * 4,
                    toxicity=[[0.8, 0.2], [0.1, 0.6], [0.3, 0.9], [0.7, 0.5]])
    after = judged([0.0] * 4, [True] * 4, [1.0] * 4,
                   toxicity=[[0.1, 0.1], [0.0, 0.2], [0.2, 0.2], [0.3, 0.1]])
    # ...and sample 0 in prompts 1 and 2: chosen toxicity 0.2, 0.1, 0.3, 0.5 (mean 0.275)
    table = compare.best_of_k_table(evaluation.Evaluation(before, {}, judge=EXACT_JUDGE),
                                    evaluation.Evaluation(after, {}, judge=EXACT_JUDGE))
    row = table.loc["toxicity"]
    baseline = np.mean([[0.8, 0.2], [0.1, 0.6], [0.3, 0.9], [0.7, 0.5]], axis=1)  # .5 .35 .6 .6
    chosen = np.array([0.2, 0.1, 0.3, 0.5])
    trained = np.array([0.1, 0.1, 0.2, 0.2])
    assert row["baseline"] == pytest.approx(baseline.mean())
    assert row["best-of-k"] == pytest.approx(chosen.mean())
    assert row["PPO after"] == pytest.approx(trained.mean())
    assert row["best-of-k - baseline"] == pytest.approx((chosen - baseline).mean())
    assert row["PPO - best-of-k"] == pytest.approx((trained - chosen).mean())
    # per prompt best-of-k - baseline: -0.3, -0.25, -0.3, -0.1; PPO - best-of-k: -0.1, 0, -0.1,
    # -0.3: every resampled mean lies between each list's smallest and largest
    assert -0.3 <= row["low (best-of-k)"] < row["high (best-of-k)"] <= -0.1
    assert -0.3 <= row["low (PPO)"] < row["high (PPO)"] <= 0.0
    assert row["n"] == 4
    # ROUGE-1 on clean-reference prompts only (prompt 1's reference is not clean): n = 3
    assert table.loc["rouge1_clean_reference", "n"] == 3
    # the headline, its checks and the kept figures (Metric.role), in their order; no insult or
    # judge columns here
    assert list(table.index) == [m.key for m in evaluation.metrics_with(EXACT_JUDGE)
                                 if m.role != "detail" and m.key not in ("insult", "judge")]
    assert list(table.index) == ["toxicity", "rouge1", "length", "rouge1_clean_reference",
                                 "facts_kept", "names_kept"]


def test_best_of_k_keeps_the_highest_reward_sample_of_each_prompt_in_prompt_order():
    before = judged([5.0, 10.0, -1.0, 10.0], [True] * 4, [1.0] * 4)
    shuffled = before.sample(frac=1, random_state=3)
    best = compare.best_of_k(evaluation.Evaluation(shuffled, {}))
    assert best["prompt"].tolist() == [0, 1, 2, 3]
    assert best["sample"].tolist() == [1, 0, 1, 0]
    assert best.index.tolist() == [0, 1, 2, 3]
    assert best.columns.tolist() == before.columns.tolist()      # rows as they were, no more


def hand_methods_table():
    """methods_table's shape, written by hand: the start, best-of-4 and two trained methods."""
    return pd.DataFrame({
        "method": ["starting policy", "best-of-4", "PPO", "RLOO"],
        "toxicity": [0.5, 0.3, 0.1, 0.1004],
        "change": [0.0, -0.2, -0.4, -0.3996],
        "low": [0.0, -0.3, -0.5, -0.45], "high": [0.0, -0.1, -0.3, -0.002],
        "rouge1": [0.5, 0.5, 0.45, 0.47], "names_kept": [0.95, 0.9, 0.95, 0.9]},
    ).set_index("method")


# the kept figures' labels at k = 4, the exact judge's included (methods_verdict's `labels`)
LABELS = {metric.key: evaluation.label(metric, 4)
          for metric in compare.kept_metrics(evaluation.metrics_with(EXACT_JUDGE))}


def test_a_methods_paragraph_words_each_method_and_the_second_against_the_first():
    table = hand_methods_table()
    versus = dict(difference=0.0004, low=-0.01, high=0.02)
    text = verdicts.methods_in_words(table, "PPO", "RLOO", versus, LABELS)
    assert text.startswith(
        "PPO lowered the toxicity 0.500 -> 0.100 (-0.400 [-0.500, -0.300], surely), down 80%, "
        "to 20% of where it started; ROUGE-1 fell 0.500 -> 0.450; names of the reference kept "
        "did not move 0.950 -> 0.950. RLOO lowered the toxicity 0.500 -> 0.100 (-0.400 [-0.450, "
        "-0.002], surely) (narrowly: its interval ends 0.002 from zero), down 80%, to 20% of "
        "where it started; ROUGE-1 fell 0.500 -> 0.470; names of the reference kept fell 0.950 "
        "-> 0.900. ")
    assert (f"Without training, best-of-4 reached 0.300 (KL at most "
            f"{np.log(4) - 0.75:.2f} nats, the bound log k - (k-1)/k). ") in text
    assert text.endswith(
        "RLOO minus PPO: +0.000 [-0.010, +0.020], so neither PPO nor RLOO is shown to end less "
        "toxic. RLOO's kept figures against PPO's: ROUGE-1 higher than PPO's (0.470 against "
        "0.450); names of the reference kept lower than PPO's (0.900 against 0.950).")
    assert "so RLOO ends less toxic than PPO" in verdicts.methods_in_words(
        table, "PPO", "RLOO", dict(difference=-0.1, low=-0.2, high=-0.0006), LABELS)
    assert "so PPO ends less toxic than RLOO" in verdicts.methods_in_words(
        table, "PPO", "RLOO", dict(difference=0.1, low=0.0006, high=0.2), LABELS)


def test_a_method_that_does_not_surely_move_the_toxicity_says_so_without_a_share():
    table = hand_methods_table().drop(columns="names_kept")
    table.loc["RLOO", ["toxicity", "change", "low", "high"]] = [0.4998, -0.0002, -0.1, 0.1]
    said = verdicts.method_in_words(table, "RLOO", LABELS)
    assert said == ("RLOO did not move the toxicity 0.500 -> 0.500 (+0.000 [-0.100, +0.100], "
                    "not surely (its interval reaches zero)); ROUGE-1 fell 0.500 -> 0.470")
    table.loc["RLOO", ["change", "low", "high"]] = [-0.3, -0.4, -0.0004]   # prints as -0.000
    assert "not surely" in verdicts.method_in_words(table, "RLOO", LABELS)


def test_labelled_names_rows_and_columns_with_the_figures_labels_at_k():
    table = pd.DataFrame({"toxicity_probability": [1.0], "other": [2.0]}, index=["judge"])
    shown = compare.labelled(table, k=7)
    assert shown.columns.tolist() == ["toxicity probability (RealToxicityPrompts, >= 1 of k=7 "
                                      "toxic)", "other"]
    assert shown.index.tolist() == ["independent judge (alt-profanity-check)"]


def test_examples_of_equal_gain_keep_the_order_of_their_prompts():
    # 20 prompts, gains 0, 1 or 2: largest first, and among equal gains the earlier prompt first
    # (an unstable sort reorders ties once a table has more than 16 rows)
    gains = np.random.default_rng(0).integers(0, 3, 20).astype(float)
    before = judged([0.0] * 20, [True] * 20, [1.0] * 20)
    after = judged(list(gains), [True] * 20, [1.0] * 20)
    examples = compare.qualitative_table(evaluation.Evaluation(before, {}),
                                         evaluation.Evaluation(after, {}), rows=20)
    by_hand = sorted(range(20), key=lambda prompt: (-gains[prompt], prompt))
    assert examples["id"].tolist() == [f"d{prompt}" for prompt in by_hand]


def continuous(seed, prompts=8, k=2):
    """An evaluation of continuous toxicity and ROUGE-1 (so that intervals differ by seed; with
    8 prompts they differ as printed, to three decimals)."""
    rng = np.random.default_rng(seed)
    rows = [dict(id=f"d{prompt}", prompt=prompt, sample=sample, summary="s", reward=rng.normal(),
                 toxicity=rng.uniform(), judge=rng.uniform(), rouge1=rng.uniform(),
                 length_tokens=10.0)
            for prompt in range(prompts) for sample in range(k)]
    return evaluation.Evaluation(pd.DataFrame(rows), {})


def test_every_interval_is_drawn_with_the_seed_it_is_given():
    before, after = continuous(1), continuous(2)
    toxicity = [evaluation.figure_values(e.per_sample, compare.metric_of("toxicity"))
                for e in (before, after)]
    bounds = {seed: stats_bounds(*toxicity, seed) for seed in (0, 5)}
    # the seed shows in the printed intervals of these values
    assert words.interval(*bounds[0]) != words.interval(*bounds[5])
    assert words.interval(*stats_bounds(*toxicity[::-1], 0)) != \
        words.interval(*stats_bounds(*toxicity[::-1], 5))
    table = compare.comparison_table(before, after, seed=5)
    assert tuple(table.loc["toxicity", ["low", "high"]]) == bounds[5]
    chosen = compare.chosen_values(compare.best_of_k(before).set_index("prompt"),
                                   compare.metric_of("toxicity"))
    choosing = compare.best_of_k_table(before, after, seed=5).loc["toxicity"]
    assert (choosing["low (best-of-k)"], choosing["high (best-of-k)"]) == \
        stats_bounds(toxicity[0], chosen, 5)
    assert (choosing["low (PPO)"], choosing["high (PPO)"]) == stats_bounds(chosen, toxicity[1], 5)
    methods = compare.methods_table(before, {"PPO": after, "RLOO": before}, seed=5)
    assert tuple(methods.loc["PPO", ["low", "high"]]) == bounds[5]
    low, high = stats_bounds(toxicity[1], toxicity[0], 5)        # RLOO minus PPO
    said = verdicts.methods_verdict(methods, {"PPO": after, "RLOO": before}, seed=5)
    assert f"RLOO minus PPO: {words.signed(toxicity[0].mean() - toxicity[1].mean())} " \
        f"{words.interval(low, high)}" in said


def stats_bounds(before, after, seed):
    paired = stats.paired_difference(before, after, seed)
    return paired["low"], paired["high"]


def test_pairing_is_by_prompt_whatever_the_order_of_the_rows():
    before = continuous(1)
    # the same evaluation, its rows sample by sample instead of prompt by prompt
    reordered = evaluation.Evaluation(before.per_sample.sort_values(["sample", "prompt"]), {})
    table = compare.comparison_table(before, reordered)
    assert (table["difference"] == 0).all()
    one_sample = evaluation.Evaluation(before.per_sample.query("sample == 0"), {})
    with pytest.raises(DetoxError, match="samples per prompt"):
        compare.comparison_table(before, one_sample)


def test_a_figure_missing_from_either_evaluation_is_left_out_and_the_rest_kept():
    before = continuous(1)
    no_judge = evaluation.Evaluation(continuous(2).per_sample.drop(columns="judge"), {})
    for table in (compare.comparison_table(before, no_judge),
                  compare.comparison_table(no_judge, before),
                  compare.best_of_k_table(before, no_judge)):
        assert "judge" not in table.index and {"toxicity", "rouge1", "length"} <= set(table.index)


def test_a_comparison_row_carries_its_figures_better_way_and_counts_a_change_at_its_smallest():
    before = continuous(1)
    # every toxicity down by 0.2 and every length up by exactly 0.5, its smallest: both shown
    after = evaluation.Evaluation(before.per_sample.assign(
        toxicity=before.per_sample["toxicity"] - 0.2,
        length_tokens=before.per_sample["length_tokens"] + 0.5), {})
    table = compare.comparison_table(before, after)
    assert table.loc["toxicity", "better"] == "lower" and table.loc["rouge1", "better"] == "higher"
    # and what the verdicts read of it: its label, role, the figure it stands in for
    assert table.loc["length", ["label", "role", "instead_of", "in_report"]].tolist() == \
        ["summary length (tokens)", "kept", None, True]
    assert verdicts.kind_of(table.loc["toxicity"]) == "gain"
    assert table.loc["length", "difference"] == 0.5 and table.loc["length", "change_shown"]
    assert verdicts.kind_of(table.loc["length"]) == "change"


def test_a_methods_paragraph_without_kept_figures_or_with_an_interval_ending_at_zero():
    table = hand_methods_table()[["toxicity", "change", "low", "high"]]
    text = verdicts.methods_in_words(table, "PPO", "RLOO",
                                     dict(difference=-0.1, low=-0.2, high=0.0004), LABELS)
    assert text.endswith("RLOO minus PPO: -0.100 [-0.200, +0.000], so neither PPO nor RLOO is "
                         "shown to end less toxic.")
