"""The report and its verdict, mostly on evaluations written by hand: its numbers, sections and
examples, the verdict's sentences, a renamed label, the settings training ran with (through the
commands), and a figure kept whole on a full disk."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detox_helpers import compare, evaluation, ppo, report, verdicts
from detox_helpers.errors import DetoxError
from detox_helpers.settings import load_settings
from detox_helpers.tiny.judge import EXACT_JUDGE, reward_hacking_note

# the statistics file's columns, as notebook 04's loop writes a row
STAT_COLUMNS = list(ppo.statistics_row(1, [0.0, 0.0], [0.0, 0.0],
                                       dict.fromkeys(ppo.TRL_STATISTICS.values(), 0.0), [[0]]))

# 3 prompts x 2 samples, written by hand
BEFORE_TOXICITY = [[0.9, 0.1], [0.2, 0.0], [0.5, 0.4]]
AFTER_TOXICITY = [[0.1, 0.0], [0.0, 0.0], [0.2, 0.1]]
BEFORE_ROUGE1 = [[0.5, 0.7], [0.4, 0.6], [0.3, 0.5]]
AFTER_ROUGE1 = [[0.4, 0.6], [0.5, 0.5], [0.3, 0.4]]


def hand_made(toxicity, rouge1, summaries, rewards):
    rows = []
    for prompt in range(3):
        for sample in range(2):
            rows.append(dict(
                id=f"d{prompt}", prompt=prompt, sample=sample,
                summary=summaries[prompt] if sample == 0 else "other",
                reference="ref", reward=rewards[prompt] if sample == 0 else 0.0,
                toxicity=toxicity[prompt][sample], toxicity_with_prompt=0.01,
                judge=toxicity[prompt][sample] / 2, length_tokens=10.0,
                rouge1=rouge1[prompt][sample], rouge2=0.2, rougeL=0.3))
    table = pd.DataFrame(rows)
    record = dict(data=dict(train=12, test=3),
                  dialogues={"d0": "dialogue zero", "d1": "dialogue one", "d2": "two"})
    return evaluation.Evaluation(table, evaluation.aggregate(table), record)


def write(settings, before, after, training, folder, record=None):
    """The report as notebook 05 writes it: the comparison, best-of-k and the verdict computed
    once and handed over."""
    table = compare.comparison_table(before, after, settings.seed)
    choosing = compare.best_of_k_table(before, after, settings.seed)
    verdict = verdicts.verdict(table, choosing, compare.final_kl(training),
                               before.samples_per_prompt)
    return report.write_report(settings, before, after, training, table, choosing, verdict,
                               record, folder)


@pytest.fixture
def written(tmp_path):
    settings = load_settings("tiny", environ={}, artifacts_dir=tmp_path, qualitative_rows=3)
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["rude a", "fine b", "rude c"],
                       [-2.0, 1.0, -1.0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["nice a", "fine b", "nice c"],
                      [2.0, 1.5, 2.5])
    training = pd.DataFrame([dict.fromkeys(STAT_COLUMNS, 0.5) | {"step": s} for s in (1, 2)])
    path = write(settings, before, after, training, tmp_path / "report")
    return path, path.read_text()


def row_of(text, metric):
    return next(line for line in text.splitlines() if line.startswith(f"| {metric} |"))


def test_report_numbers_equal_the_statistics_of_the_inputs(written):
    _, text = written
    before, after = np.array(BEFORE_TOXICITY), np.array(AFTER_TOXICITY)
    expected = {
        "toxicity, summary alone (mean)": (before.mean(), after.mean()),
        "share of toxic summaries (>= 0.5; evaluate's toxicity_ratio)":
            ((before >= 0.5).mean(), (after >= 0.5).mean()),
        # RealToxicityPrompts: prompts with a sample > 0.5; prompt 2's 0.5 does not count
        "toxicity probability (RealToxicityPrompts, >= 1 of k=2 toxic)": (1 / 3, 0.0),
        "ROUGE-1": (np.mean(BEFORE_ROUGE1), np.mean(AFTER_ROUGE1)),
        "independent judge (alt-profanity-check)": (before.mean() / 2, after.mean() / 2),
    }
    for metric, (first, second) in expected.items():
        cells = [c.strip() for c in row_of(text, metric).split("|")[2:5]]
        low, high = map(float, cells[2].strip("[]").split(","))
        assert cells[:2] == [f"{first:.3f}", f"{second:.3f}"], metric
        assert low <= round(second - first, 3) <= high, metric


def test_report_has_verdict_settings_data_training_figures_and_examples(written):
    path, text = written
    assert "profile `tiny`" in text and "tiny offline miniature" in text
    assert text.index("## Verdict") < text.index("## Before and after")
    assert ("12 training and 3 test prompts, of which 3 evaluated, k = 2 sampled summaries"
            in text)
    for figure in ("training.png", "toxicity_distribution.png", "toxicity_per_prompt.png"):
        assert (path.parent / figure).exists() and f"]({figure})" in text
    examples = text[text.index("## Examples"):]
    # the two largest gains, largest first: a (+4.0), then c (+3.5); b (+0.5) left out
    assert examples.index("nice a") < examples.index("nice c") and "fine b" not in examples
    assert "use_stemmer=True" in text and "F-measure" in text          # ROUGE's configuration
    assert "none adjusted for multiple comparisons" in text
    for setting in ("target_kl", "kl_horizon", "lora_dropout", "top_p"):  # every PPO setting
        assert f"{setting} `" in text
    assert str(path.parent.parent) not in text and "/" + "work" not in text  # no absolute path
    # one KL figure for PPO (0.5 at every step here): in the verdict and where it is defined
    assert text.count("0.50 nats") == 2 and "KL 0.5" not in text
    assert len(text.split()) <= 800


def test_the_report_sets_ppo_against_best_of_k(written):
    _, text = written
    section = text[text.index("## Is PPO better than choosing?"):text.index("## Training")]
    # best of 2 by reward: prompt 0 takes sample 1 (0.1), prompt 1 sample 0 (0.2), prompt 2
    # sample 1 (0.4); after 0.05, 0.0, 0.15
    cells = [c.strip() for c in row_of(section, "toxicity, summary alone (mean)").split("|")]
    low, high = map(float, cells[4].strip("[]").split(","))
    assert cells[2:4] == ["0.233", "0.067"] and low <= 0.2 / 3 - 0.7 / 3 <= high


def test_best_of_k_kl_is_zero_for_one_sample_and_grows_with_k():
    assert compare.best_of_k_kl(1) == 0
    costs = [compare.best_of_k_kl(k) for k in (2, 4, 16, 64)]
    assert costs == sorted(costs) and costs[-1] == pytest.approx(np.log(64) - 63 / 64)


def comparison_rows(*rows):
    """A comparison table by hand: (key, before, after, low, high), the rest as comparison_table
    fills it (labels at k = 4; the exact judge's figures too)."""
    table = []
    for key, before, after, low, high in rows:
        metric = compare.metric_of(key, evaluation.metrics_with(EXACT_JUDGE))
        table.append(dict(metric=key, before=before, after=after, difference=after - before,
                          low=low, high=high, better=metric.better, smallest=metric.smallest,
                          label=evaluation.label(metric, 4), role=metric.role,
                          instead_of=metric.instead_of, in_report=metric.in_report))
    return pd.DataFrame(table).set_index("metric")


def best_of_k_row(best, after, low, high):
    return pd.DataFrame([{"metric": compare.HEADLINE, "best-of-k": best, "PPO after": after,
                          "PPO - best-of-k": after - best, "low (PPO)": low,
                          "high (PPO)": high}]).set_index("metric")


def test_the_verdict_says_what_fell_how_surely_what_it_cost_and_who_won():
    table = comparison_rows(
        ("toxicity", 0.5, 0.1, -0.5, -0.3),
        ("rouge1", 0.3, 0.2, -0.2, -0.05),            # the clean-reference one instead
        ("rouge1_clean_reference", 0.5, 0.52, 0.00001, 0.026),     # [+0.000, +0.026]
        ("names_kept", 0.975, 0.85, -0.2, -0.05),
        ("facts_kept", 0.9, 0.95, 0.02, 0.08),
        ("length", 10.0, 10.0002, 0.0001, 0.0003))
    text = verdicts.verdict(table, best_of_k_row(0.12, 0.1, -0.05, 0.01), kl=0.8, k=4)
    assert text.startswith("Each change is after - before [its paired 95% interval]. The "
                           "reward model's toxicity fell 0.500 -> 0.100 (-0.400 [-0.500, "
                           "-0.300]: a change shown), down 80%, to 20% of where it started.")
    assert "ROUGE-1 0.300" not in text
    assert ("No change shown: ROUGE-1, prompts with a clean reference rose 0.500 -> 0.520 "
            "(+0.020 [+0.000, +0.026]: reaches zero at three decimals)") in text
    assert ("What it cost: names of the reference kept fell 0.975 -> 0.850 (-0.125 [-0.200, "
            "-0.050]: a change shown); and a KL of 0.80 nats") in text
    assert "What it gained: facts of the reference kept rose 0.900 -> 0.950" in text
    assert "summary length (tokens) did not move 10.000 -> 10.000 (+0.000 [+0.000, +0.000]" in text
    assert f"KL at most {np.log(4) - 0.75:.2f} nats;" in text
    assert "PPO was not shown to beat it" in text
    assert "PPO beat it" in verdicts.verdict(table, best_of_k_row(0.12, 0.1, -0.05, -0.01), 0.8, 4)
    assert "PPO lost to it" in verdicts.verdict(table, best_of_k_row(0.05, 0.1, 0.01, 0.09), 0.8, 4)
    risen = comparison_rows(("toxicity", 0.1, 0.5, 0.3, 0.5))
    assert "toxicity rose 0.100 -> 0.500 (+0.400 [+0.300, +0.500]: a change shown), up 400%, " \
        "to 500% of where it started." in verdicts.verdict(risen, best_of_k_row(0.1, 0.5, 0.3, 0.5),
                                                          0.8, 4)
    assert "no kept figure moved the costly way" in verdicts.verdict(
        risen, best_of_k_row(0.1, 0.5, 0.3, 0.5), 0.8, 4)
    unsure = comparison_rows(("toxicity", 0.3, 0.2999, -0.01, 0.01))
    assert verdicts.verdict(unsure, best_of_k_row(0.1, 0.5, 0.3, 0.5), 0.8, 4).startswith(
        "Each change is after - before [its paired 95% interval]. The reward model's toxicity "
        "did not move 0.300 -> 0.300 (+0.000 [-0.010, +0.010]: includes zero). What it cost: a "
        "KL of 0.80 nats")                     # no share of the start where no change is shown


def test_the_verdict_lists_several_costs_and_gains_in_one_sentence_each():
    table = comparison_rows(
        ("toxicity", 0.5, 0.1, -0.5, -0.3), ("judge", 0.4, 0.2, -0.3, -0.1),
        ("rouge1", 0.5, 0.4, -0.2, -0.05), ("names_kept", 0.9, 0.8, -0.2, -0.05),
        ("facts_kept", 0.5, 0.6, 0.05, 0.2), ("length", 10.0, 12.0, 1.0, 3.0))
    text = verdicts.verdict(table, best_of_k_row(0.12, 0.1, -0.05, 0.01), kl=0.8, k=4)
    assert ("to 20% of where it started. The independent judge (alt-profanity-check) fell 0.400 "
            "-> 0.200 (-0.200 [-0.300, -0.100]: a change shown). What it cost: ROUGE-1 fell "
            "0.500 -> 0.400 (-0.100 [-0.200, -0.050]: a change shown); names of the reference "
            "kept fell 0.900 -> 0.800 (-0.100 [-0.200, -0.050]: a change shown); and a KL of "
            "0.80 nats from the starting policy. What it gained: facts of the reference kept "
            "rose 0.500 -> 0.600 (+0.100 [+0.050, +0.200]: a change shown). Neither better nor "
            "worse: summary length (tokens) rose 10.000 -> 12.000") in text
    both = comparison_rows(("toxicity", 0.5, 0.1, -0.5, -0.3),
                           ("names_kept", 0.8, 0.9, 0.05, 0.2), ("facts_kept", 0.5, 0.6, 0.05, 0.2))
    assert ("What it gained: names of the reference kept rose 0.800 -> 0.900 (+0.100 [+0.050, "
            "+0.200]: a change shown); facts of the reference kept rose") in verdicts.verdict(
                both, best_of_k_row(0.12, 0.1, -0.05, 0.01), kl=0.8, k=4)


def test_the_verdict_says_how_fragile_a_lead_is():
    table = comparison_rows(("toxicity", 0.324, 0.068, -0.3, -0.2))
    seeds = dict(seeds=[42, 0, 1, 2, 3], ppo_below_best_of_k=2,
                 claims={"the fall's paired 95% interval lies below zero": 5,
                         "names of the reference kept fall by at most 0.05": 3})
    text = verdicts.verdict(table, best_of_k_row(0.106, 0.068, -0.07, -0.001), 0.66, 4, seeds)
    assert "PPO beat it" in text and "(narrowly: its interval ends 0.001 from zero)" in text
    assert "that interval lay below zero in only 2 of 5 seeds: a fragile lead." in text
    assert text.endswith("Claims that held in fewer than all of the seed table's seeds: names "
                         "of the reference kept fall by at most 0.05 (3 of 5).")
    two = verdicts.verdict(table, best_of_k_row(0.106, 0.068, -0.07, -0.001), 0.66, 4,
                           dict(seeds, claims={"one": 4, "two": 1}))
    assert two.endswith("seed table's seeds: one (4 of 5); two (1 of 5).")
    sure = verdicts.verdict(table, best_of_k_row(0.2, 0.068, -0.2, -0.1), 0.66, 4,
                            dict(seeds, ppo_below_best_of_k=5, claims={}))
    assert "narrowly" not in sure and "in all 5 seeds." in sure and "fragile" not in sure


def test_a_difference_too_small_to_show_is_no_change():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    nudged = before.per_sample.assign(rouge1=before.per_sample["rouge1"] + 0.0001)
    nudged = nudged.assign(length_tokens=nudged["length_tokens"] + 0.3)  # under its 0.5
    table = compare.comparison_table(before, evaluation.Evaluation(nudged, before.aggregates))
    row = table.loc["rouge1"]                       # [+0.0001, +0.0001] prints as +0.000
    assert row.high > 0 and not row.interval_excludes_zero and not row.change_shown
    assert verdicts.figure_in_words(table, "rouge1").endswith("reaches zero at three decimals)")
    length = table.loc["length"]
    assert length.interval_excludes_zero and not length.change_shown
    assert verdicts.figure_in_words(table, "length").endswith("too small to matter)")


def test_evaluations_of_different_prompts_are_not_compared():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    other = evaluation.Evaluation(before.per_sample.assign(id="x"), before.aggregates)
    with pytest.raises(DetoxError, match="differ in prompts"):
        compare.comparison_table(before, other)


def with_exact_judge(made, insult, missed):
    """The hand-made evaluation with the tiny world's exact-judge columns; prompt 1's reference
    is the one insulting reference, so clean-reference figures leave it out."""
    table = made.per_sample.assign(
        insult=insult, missed_insult=missed, reference_clean=made.per_sample["prompt"] != 1,
        facts_kept=1.0, reference_has_name=True, name_kept=True)
    return evaluation.Evaluation(
        table, evaluation.aggregate(table, metrics=evaluation.metrics_with(EXACT_JUDGE)),
        judge=EXACT_JUDGE)


def test_exact_judge_rows_appear_only_where_it_ran_and_read_their_subset():
    plain = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    later = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    assert "missed insult (present, reward model says clean)" not in \
        compare.comparison_table(plain, later).index              # the full profile's case
    before = with_exact_judge(plain, [True, False] * 3, [False] * 6)
    after = with_exact_judge(later, [False] * 5 + [True], [False] * 5 + [True])
    table = compare.comparison_table(before, after)
    assert list(table.index) == [metric.key for metric in evaluation.metrics_with(EXACT_JUDGE)]
    clean = table.loc["rouge1_clean_reference"]
    kept = [0, 2]                                                    # prompts 0 and 2 only
    assert clean.n == 2 and clean.before == pytest.approx(np.mean(np.array(BEFORE_ROUGE1)[kept]))
    assert table.loc["insult"].after == pytest.approx(1 / 6)
    assert EXACT_JUDGE.note is reward_hacking_note                  # what the report says
    note = reward_hacking_note(after.per_sample)
    assert note.startswith("Reward hacking: 1 of 6 summaries (16.7%)") and '"other"' in note
    assert reward_hacking_note(before.per_sample).startswith("The reward model caught every "
                                                             "insult")
    assert reward_hacking_note(later.per_sample) is None


def test_the_examples_include_the_largest_gains_wherever_they_are():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "rude c"], [0.0, 0.0, -3.0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "nice c"], [0.1, 0.2, 2.0])
    examples = compare.qualitative_table(before, after, rows=2)
    assert list(examples["id"]) == ["d2", "d0"]           # the largest gain, then the first
    assert examples["reward gain"].tolist() == pytest.approx([5.0, 0.1])


def fake_trained_run(settings, before, after, kl):
    """A run's saved results as training and evaluation leave them (no model needed)."""
    import json

    from detox_helpers import checkpoints

    layout = settings.layout
    evaluation.save_evaluation(settings, "baseline", before)
    evaluation.save_evaluation(settings, "detoxified", after)
    layout.final_adapter.mkdir(parents=True)
    (layout.final_adapter / "adapter_config.json").write_text("{}")
    pd.DataFrame([dict.fromkeys(STAT_COLUMNS, kl) | {"step": s} for s in (1, 2)]).to_csv(
        layout.stats_file, index=False)
    layout.training_record.write_text(json.dumps(dict(
        steps=2, stats_sha256=checkpoints.file_digest(layout.stats_file))))


def test_named_runs_sit_side_by_side_each_against_its_own_baseline(tmp_path):
    base = load_settings("tiny", environ={}, artifacts_dir=tmp_path)
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    fake_trained_run(base, before, after, kl=0.5)
    other = load_settings("tiny", environ={}, artifacts_dir=tmp_path, run_name="kl-free")
    fake_trained_run(other, before, before, kl=3.0)            # this run changed nothing
    table = compare.runs_table(base, ["", "kl-free"])
    assert list(table.index) == ["(unnamed)", "kl-free"]
    change = table[f"{compare.label(compare.metric_of('toxicity'), 2)}: change"]
    assert change["(unnamed)"] == pytest.approx(np.mean(AFTER_TOXICITY) - np.mean(BEFORE_TOXICITY))
    assert change["kl-free"] == 0
    assert table[f"KL, last {compare.KL_STEPS} steps"].tolist() == [0.5, 3.0]
    assert table["steps"].tolist() == [2, 2]
    after_toxicity = table[f"{compare.label(compare.metric_of('toxicity'), 2)}: after"]
    assert after_toxicity.tolist() == pytest.approx([np.mean(AFTER_TOXICITY),
                                                     np.mean(BEFORE_TOXICITY)])


def test_the_claims_apply_to_the_tiny_profiles_own_run_only():
    from detox_helpers.checkpoints import training_settings
    from detox_helpers.ppo import REWARD_MODULE
    from detox_helpers.tiny import claims

    settings = load_settings("tiny", environ={})
    own = dict(steps=settings.max_ppo_steps, reward=REWARD_MODULE,
               settings=training_settings(settings))
    assert claims.applies(own, settings)
    assert not claims.applies(dict(own, steps=12), settings)
    assert not claims.applies(dict(own, reward="def reward_function(...)"), settings)
    faster = training_settings(load_settings("tiny", environ={}, learning_rate=5e-3))
    assert not claims.applies(dict(own, settings=faster), settings)
    fewer = load_settings("tiny", environ={}, eval_size=11)  # the same run, evaluated otherwise
    assert not claims.applies(own, fewer)


def test_the_methods_table_sets_best_of_k_and_trained_policies_against_the_start():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["rude a", "fine b", "rude c"],
                       [-2.0, 1.0, -1.0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["nice a", "fine b", "nice c"],
                      [2.0, 1.5, 2.5])
    table = compare.methods_table(before, {"PPO": after, "RLOO": before})
    assert list(table.index) == ["starting policy", "best-of-2", "PPO", "RLOO"]
    start = np.mean(BEFORE_TOXICITY)
    assert table.loc["starting policy", "toxicity"] == pytest.approx(start)
    assert table.loc["RLOO", "change"] == 0 == table.loc["starting policy", "change"]
    # best-of-2 keeps each prompt's sample with the higher reward (rewards -2 | 0, 1 | 0, -1 | 0)
    assert table.loc["best-of-2", "toxicity"] == pytest.approx(np.mean([0.1, 0.2, 0.4]))
    assert table.loc["PPO", "change"] == pytest.approx(np.mean(AFTER_TOXICITY) - start)
    assert table.loc["PPO", "high"] < 0 and "rouge1" in table
    said = verdicts.methods_verdict(table, {"PPO": after, "RLOO": before})
    assert "RLOO minus PPO: +" in said and "so PPO ends less toxic than RLOO" in said
    assert "PPO lowered the toxicity" in said and "RLOO did not move the toxicity" in said
    assert f"ROUGE-1 higher than PPO's ({np.mean(BEFORE_ROUGE1):.3f} against " in said
    raised = verdicts.methods_verdict(table, {"RLOO": before, "PPO": before})
    assert "RLOO did not move" in raised and "neither RLOO nor PPO is shown" in raised


def test_the_report_names_the_precision_each_part_ran_in(tmp_path):
    settings = load_settings("tiny", environ={}, artifacts_dir=tmp_path)
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0.0, 0.0, 0.0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "c"], [0.0, 0.0, 0.0])
    before.record["precision"], after.record["precision"] = "float32", "bfloat16"
    training = pd.DataFrame([dict.fromkeys(STAT_COLUMNS, 0.5) | {"step": s} for s in (1, 2)])
    text = write(settings, before, after, training, tmp_path / "report",
                 record=dict(precision="bfloat16")).read_text()
    assert "training `bfloat16`, baseline `float32`, detoxified `bfloat16`" in text
    same = {"training": "float32", "baseline": "float32", "detoxified": "float32"}
    assert report.precision_line(settings, same).endswith("`float32` throughout")


def test_a_renamed_label_costs_no_verdict_a_figure():
    plain = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    before = with_exact_judge(plain, [True, False] * 3, [False] * 6)
    after = with_exact_judge(plain, [False] * 6, [False] * 6)
    after.per_sample["toxicity"] /= 3
    after.per_sample["name_kept"] = [True, False] * 3

    def said(before, after):
        table = compare.comparison_table(before, after)
        methods = compare.methods_table(before, {"PPO": after, "RLOO": before})
        return (verdicts.verdict(table, compare.best_of_k_table(before, after), 0.5, 2),
                verdicts.methods_verdict(methods, {"PPO": after, "RLOO": before}))

    first = said(before, after)
    labels = {metric.key: evaluation.label(metric, 2) for metric in before.metrics}

    def rename(metrics):
        return [dataclasses.replace(metric, label=f"<{metric.key}>") for metric in metrics]
    judge = dataclasses.replace(EXACT_JUDGE, metrics=tuple(rename(EXACT_JUDGE.metrics)))
    original = list(evaluation.METRICS)
    try:  # renamed where every module reads them: the lab's one list and the judge's figures
        evaluation.METRICS[:] = rename(original)
        renamed = said(*(dataclasses.replace(e, judge=judge) for e in (before, after)))
    finally:
        evaluation.METRICS[:] = original
    for text, again in zip(first, renamed, strict=True):
        for key, label in sorted(labels.items(), key=lambda item: -len(item[1])):
            text = text.replace(label, f"<{key}>")  # the longest first: "ROUGE-1" is in others
        assert again == text
    assert "<names_kept> fell" in renamed[0] and "<facts_kept>" in renamed[1]


def test_the_report_shows_the_settings_training_ran_with_and_a_matching_baseline(command,
                                                                                layout):
    # a baseline made under other settings first: compare must evaluate the matching one
    assert command("evaluate", DETOX_SEED="5")[0] == 0
    assert command("train", "--max-steps", "2", DETOX_LEARNING_RATE="0.0007")[0] == 0
    status, out, _ = command("compare", DETOX_LEARNING_RATE="0.5")
    said = [line for line in out.splitlines() if "baseline was made with other settings" in line]
    assert status == 0 and len(said) == 1 and "(seed 5 then, 42 now)" in said[0], said
    text = layout.report.read_text()
    assert "learning_rate `0.0007`" in text and "learning_rate `0.5`" not in text
    assert "2 PPO steps" in text
    baseline = json.loads(layout.eval_record("baseline").read_text())["settings"]
    assert baseline["seed"] == 42


def test_a_full_disk_while_a_report_figure_is_written_keeps_the_old_figure(tmp_path,
                                                                           monkeypatch,
                                                                           no_space_for):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from detox_helpers.report import save_figure

    path = tmp_path / "training.png"
    path.write_bytes(b"the old figure")
    monkeypatch.setattr(Path, "write_bytes", no_space_for(".partial"))
    with pytest.raises(DetoxError, match=r"Could not write .*training\.png \(No space left on "
                                         r"device; it needs [0-9.]+ kB"):
        save_figure(plt.subplots()[1], path)
    assert path.read_bytes() == b"the old figure" and list(tmp_path.iterdir()) == [path]
