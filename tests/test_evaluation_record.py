"""An evaluation's record: what it says it was made with, what a later run finds changed, and
its table and record saved and loaded as one (no model; seconds)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from detox_helpers import evaluation
from detox_helpers.data import cache_key
from detox_helpers.errors import DetoxError
from detox_helpers.models import pick_device
from detox_helpers.settings import load_settings


@pytest.fixture
def settings(tmp_path):
    return load_settings("tiny", environ={}, artifacts_dir=tmp_path, precision="float32",
                         eval_size=5)


def test_an_evaluation_records_every_setting_that_shapes_its_numbers(settings):
    assert evaluation.made_with(settings) == dict(
        profile="tiny", policy_model=settings.policy_model,
        instruct_adapter=settings.instruct_adapter, reward_model=settings.reward_model,
        samples_per_prompt=settings.eval_samples_per_prompt, eval_size=5,
        max_new_tokens=settings.eval_max_new_tokens, seed=42,
        toxic_labels=settings.toxic_labels, test_split=cache_key(settings), precision="float32")
    assert evaluation.made_with(settings, "bfloat16")["precision"] == "bfloat16"


def test_a_later_run_names_each_setting_that_changed_and_the_prompts_it_would_take(settings):
    then = dict(settings=dict(evaluation.made_with(settings), prompts=5), data=dict(test=88))
    assert evaluation.changed_settings(then, settings) == []
    seed_7 = dict(then, settings=dict(then["settings"], seed=7, prompts=3))
    assert evaluation.changed_settings(seed_7, settings) == ["prompts 3 then, 5 now",
                                                             "seed 7 then, 42 now"]
    # a split of 4 test prompts: eval_size=5 takes the 4 there are
    fewer = dict(then, data=dict(test=4))
    assert evaluation.changed_settings(fewer, settings) == ["prompts 5 then, 4 now"]
    # a record without settings (made before they were kept) differs in every one
    assert len(evaluation.changed_settings({}, settings)) == len(evaluation.made_with(settings))


def test_a_changed_path_is_named_relative_to_the_checkout():
    checkout = Path(evaluation.__file__).resolve().parents[1]   # the package's own checkout
    inside = str(checkout / "artifacts" / "model")
    assert evaluation._plain(inside) == repr("artifacts/model")
    assert evaluation._plain("google/flan-t5-base") == repr("google/flan-t5-base")
    assert evaluation._plain(None) == "None" and evaluation._plain(4) == "4"


def saved(settings, name="baseline"):
    """An evaluation with the summaries a CSV reader would take for missing values."""
    per_sample = pd.DataFrame(dict(prompt=[0, 0, 1], sample=[0, 1, 0],
                                   summary=["NA", "", "None"], toxicity=[0.25, 0.5, 0.125]))
    made = evaluation.Evaluation(per_sample, {"toxicity": {"mean": 0.3}},
                                 dict(settings=evaluation.made_with(settings), data=dict(test=2)))
    evaluation.save_evaluation(settings, name, made)
    return made


def test_an_evaluation_is_loaded_as_it_was_saved(settings):
    made = saved(settings)
    loaded = evaluation.load_evaluation(settings, "baseline")
    pd.testing.assert_frame_equal(loaded.per_sample, made.per_sample)
    assert loaded.aggregates == made.aggregates and loaded.record == made.record


@pytest.mark.parametrize("damage", ["edit the table", "drop the digest", "break the record"])
def test_a_table_and_record_that_do_not_belong_together_are_refused(settings, damage):
    saved(settings)
    table, record = (settings.layout.eval_table("baseline"),
                     settings.layout.eval_record("baseline"))
    if damage == "edit the table":
        table.write_text(table.read_text().replace("0.25", "0.35"))
    elif damage == "drop the digest":
        record.write_text(json.dumps({k: v for k, v in json.loads(record.read_text()).items()
                                      if k != "table_sha256"}))
    else:
        record.write_text("{")
    with pytest.raises(DetoxError, match="are not one evaluation's results"):
        evaluation.load_evaluation(settings, "baseline")


def test_a_missing_evaluation_names_what_makes_it(settings):
    with pytest.raises(DetoxError, match="run notebook 03_baseline_eval.ipynb or `python -m "
                                         "detox_helpers evaluate` first"):
        evaluation.load_evaluation(settings, "baseline")
    with pytest.raises(DetoxError, match="run notebook 05_compare.ipynb or `python -m "
                                         "detox_helpers compare` first"):
        evaluation.load_evaluation(settings, "detoxified")


def test_eval_size_zero_compares_the_prompts_this_machine_would_take(tmp_path):
    # eval_size=0: every test prompt on a GPU, at most CPU_EVAL_PROMPTS on a CPU
    settings = load_settings("tiny", environ={}, artifacts_dir=tmp_path, precision="float32",
                             eval_size=0)
    here = evaluation.prompts_to_evaluate(settings, 500, pick_device(settings))
    assert here == (500 if pick_device(settings).type == "cuda" else evaluation.CPU_EVAL_PROMPTS)
    then = dict(settings=dict(evaluation.made_with(settings), prompts=here + 1),
                data=dict(test=500))
    assert evaluation.changed_settings(then, settings) == [f"prompts {here + 1} then, {here} now"]
