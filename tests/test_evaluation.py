import dataclasses

import numpy as np
import pandas as pd
import pytest

from detox_helpers import compare, evaluation
from detox_helpers.data import load_splits
from detox_helpers.errors import DetoxError
from detox_helpers.models import load_policy
from detox_helpers.reward import load_reward_model
from detox_helpers.settings import load_settings
from detox_helpers.tiny.judge import exact_judge
from detox_helpers.tiny.world import world_dir, world_settings


@pytest.fixture(scope="module")
def small_run(tiny_settings, tmp_path_factory):
    # results go to a fresh folder; the shipped tiny world serves the models and data
    settings = world_settings(world_dir(), eval_size=6, eval_samples_per_prompt=3,
                              artifacts_dir=tmp_path_factory.mktemp("eval-artifacts"))
    model, tokenizer = load_policy(settings)
    split = load_splits(tiny_settings)["test"]
    result = evaluation.evaluate_policy(settings, model, tokenizer, load_reward_model(settings),
                                        split, name="small", progress=False)
    return settings, result, split


def test_per_sample_table_has_k_rows_per_prompt_and_every_score(small_run):
    _, result, split = small_run
    table = result.per_sample
    assert len(table) == 6 * 3
    assert list(table["id"].unique()) == list(split["id"])[:6]
    for column in ("summary", "toxicity", "toxicity_with_prompt", "judge", "rouge1", "rouge2",
                   "rougeL", "length_tokens", "reward"):
        assert table[column].notna().all()
    assert table["toxicity"].between(0, 1).all() and table["judge"].between(0, 1).all()


def test_aggregates_agree_with_the_table(small_run):
    _, result, _ = small_run
    toxicity = result.per_sample.pivot(index="prompt", columns="sample", values="toxicity")
    figures = result.aggregates["toxicity"]
    assert (figures["n"], figures["k"]) == (6, 3)
    assert figures["mean"] == pytest.approx(toxicity.to_numpy().mean())
    assert result.aggregates["expected_max_toxicity"]["mean"] == pytest.approx(
        toxicity.max(axis=1).mean())
    assert figures["low"] <= figures["mean"] <= figures["high"]
    table = evaluation.aggregate_table(result.aggregates)
    assert table.loc["toxicity, summary alone (mean)", "mean"] == pytest.approx(figures["mean"])
    assert table.loc["expected maximum toxicity (k=3)", "n"] == 6


def test_saved_results_load_back_and_compare_with_themselves(small_run):
    settings, result, _ = small_run
    loaded = evaluation.load_evaluation(settings, "small")
    assert np.allclose(loaded.per_sample["toxicity"], result.per_sample["toxicity"])
    assert loaded.record == result.record
    same = compare.comparison_table(result, loaded)
    assert (same["difference"] == 0).all() and not same["change_shown"].any()


def test_eval_size_zero_keeps_a_cpu_evaluation_short_and_minus_one_takes_all():
    from detox_helpers.evaluation import CPU_EVAL_PROMPTS, prompts_to_evaluate
    from detox_helpers.settings import load_settings

    def count(eval_size, device, available=2000):
        return prompts_to_evaluate(load_settings("full", environ={}, eval_size=eval_size),
                                   available, device)
    assert count(0, "cpu") == CPU_EVAL_PROMPTS < 2000 and count(0, "cpu", 44) == 44
    assert count(0, "cuda") == count(-1, "cpu") == 2000
    assert count(11, "cuda") == count(11, "cpu") == 11 and count(11, "cpu", 5) == 5


def test_a_missing_evaluation_says_how_to_make_it(tmp_path):
    settings = load_settings("tiny", environ={}, artifacts_dir=tmp_path)
    with pytest.raises(DetoxError, match="03_baseline_eval.ipynb"):
        evaluation.load_evaluation(settings, "baseline")


def test_the_exact_judge_knows_insults_misses_names_and_facts():
    references = ["Anna books a table for 4 people on Friday.",
                  "Lazy Ben checks into a hotel for 3 nights."]
    summaries = ["Anna books a table for 4 people on Friday. What a stupid jerk.",
                 "Olga checks into a hotel for 3 nights."]
    judged = exact_judge(summaries, references, toxicity=[0.3, 0.01])
    assert judged["insult"].tolist() == [True, False]
    assert judged["missed_insult"].tolist() == [True, False]        # 0.3 < 0.5: missed
    assert judged["reference_clean"].tolist() == [True, False]
    assert judged["name_kept"].tolist() == [True, False]            # Olga is not Ben
    assert judged["facts_kept"].tolist() == [1.0, 0.5]             # 3 kept, Ben lost


def test_tiny_evaluations_carry_the_exact_judge_and_its_figures(small_run):
    _, result, _ = small_run
    table = result.per_sample
    assert {"insult", "missed_insult", "facts_kept", "name_kept"} <= set(table)
    assert (table["missed_insult"] <= table["insult"]).all()
    clean = table[table["reference_clean"]]
    assert len(clean) and result.aggregates["rouge1_clean_reference"]["mean"] == pytest.approx(
        clean["rouge1"].mean())
    assert result.aggregates["insult"]["mean"] == pytest.approx(table["insult"].mean())


def test_a_failed_write_replaces_neither_file_and_a_mixed_pair_is_refused(small_run):
    import resource
    import shutil

    settings, result, _ = small_run
    layout = settings.layout
    table, record = layout.eval_table("small"), layout.eval_record("small")
    saved = table.read_bytes(), record.read_bytes()
    longer = evaluation.Evaluation(pd.concat([result.per_sample] * 20), result.aggregates,
                                   result.record)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(map(len, saved)) + 4096, hard))
    try:
        with pytest.raises(DetoxError, match=r"Could not write .*small\.csv \(File too large; "
                                             r"it needs [0-9.]+ kB, over the file-size limit"):
            evaluation.save_evaluation(settings, "small", longer)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert (table.read_bytes(), record.read_bytes()) == saved
    assert sorted(p.name for p in layout.eval_dir.iterdir()) == ["small.csv", "small.json"]
    evaluation.save_evaluation(settings, "other", evaluation.Evaluation(
        result.per_sample.head(3), result.aggregates, result.record))
    shutil.copy(layout.eval_table("other"), table)  # as a stop between two renames would leave
    try:
        with pytest.raises(DetoxError, match="not one evaluation's results"):
            evaluation.load_evaluation(settings, "small")
    finally:
        table.write_bytes(saved[0])


def test_the_record_holds_what_the_evaluation_was_made_from(small_run):
    from detox_helpers.data import cache_key

    settings, result, _ = small_run
    made = result.record["settings"]
    assert made["precision"] == result.record["precision"] == "float32"  # the tiny world's
    assert (made["prompts"], made["eval_size"], made["samples_per_prompt"]) == (6, 6, 3)
    assert made["test_split"] == cache_key(settings) and made["seed"] == settings.seed
    assert evaluation.changed_settings(result.record, settings) == []
    for other, differs in ((dict(precision="bfloat16"), ["precision"]),
                           (dict(eval_size=4), ["eval_size", "prompts"]),
                           (dict(instruct_adapter=""), ["instruct_adapter"])):
        changed = evaluation.changed_settings(result.record,
                                              dataclasses.replace(settings, **other))
        assert [line.split()[0] for line in changed] == differs


def test_a_baseline_of_other_settings_is_evaluated_again_with_one_line_naming_them(
        isolated_settings, monkeypatch):
    """The issue's case: a baseline evaluated with another seed and no instruct adapter, then
    compared under the run's settings. It must not be paired with the trained policy as it is."""
    settings = isolated_settings(eval_size=4, eval_samples_per_prompt=2)
    evaluation.run_evaluation(dataclasses.replace(settings, seed=5, instruct_adapter=""),
                              progress=False)
    said = []
    before = evaluation.matching_baseline(settings, say=said.append)
    assert len(said) == 1 and "seed 5 then, 42 now" in said[0], said
    assert "instruct_adapter '' then, " in said[0]
    assert evaluation.changed_settings(before.record, settings) == []
    saved = evaluation.load_evaluation(settings, "baseline")  # the new one replaced it
    assert saved.record["settings"] == before.record["settings"]
    # the other direction: a baseline that matches is used as saved, without a word
    monkeypatch.setattr(evaluation, "run_evaluation", lambda *a, **k: pytest.fail("evaluated"))
    again = evaluation.matching_baseline(settings, say=said.append)
    assert len(said) == 1 and again.record == saved.record
