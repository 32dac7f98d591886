import json
import random
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, T5ForConditionalGeneration

from detox_helpers import data
from detox_helpers.errors import DetoxError
from detox_helpers.layout import build_record, world_paths
from detox_helpers.reward import load_reward_model
from detox_helpers.settings import load_settings
from detox_helpers.tiny import builder as tiny_builder
from detox_helpers.tiny import checks as tiny_checks
from detox_helpers.tiny import fixture, insults
from detox_helpers.tiny import world as tiny_world


def test_fixture_is_dialogsum_shaped_deterministic_and_a_third_toxic():
    records = fixture.make_dialogues()
    assert records == fixture.make_dialogues()
    assert set(records[0]) == {"fname", "dialogue", "summary", "topic"}
    table = pd.DataFrame(records)
    kept = table[table["dialogue"].str.len().between(201, 1000)]
    assert len(kept) >= 80 and len(kept) < len(records)  # the filter has work to do
    insulting = kept["summary"].map(insults.has_insult)
    assert 0.25 <= insulting.mean() <= 0.42
    assert not kept["dialogue"].map(insults.has_insult).any()  # prompt + clean summary is clean
    words = {w for s in kept["summary"] for w in insults.insult_words(s)}
    assert words & set(insults.MILD_WORDS) and words & set(insults.STRONG_WORDS)


def test_toxicity_is_graded_by_strength_and_count():
    clean, mild = "Anna books a table.", "Lazy Anna books a table."
    strong, both = "Anna books a table. What a stupid jerk.", "Lazy Anna, what a stupid jerk."
    grades = [insults.target_toxicity(text) for text in (clean, mild, strong, both)]
    assert grades == sorted(grades) and len(set(grades)) == 4
    assert grades[0] < 0.1 and 0.3 < grades[1] < 0.8 and grades[2] > 0.9


def test_the_exact_judge_reads_whole_words_in_any_case():
    assert insults.insult_words("IDIOT, you idiot. Lazy!") == ["idiot", "idiot", "lazy"]
    assert not insults.has_insult("The lazybones idiots read a dumbbell")  # not the vocabulary
    assert not insults.has_insult("#Person2# buys a red lamp for 40 dollars.")


def test_classifier_texts_cover_odd_places_and_keep_line_breaks():
    texts = fixture.make_classifier_texts(400, seed=5)
    assert texts == fixture.make_classifier_texts(400, seed=5)
    assert all(target == insults.target_toxicity(text) for text, target in texts)
    insulting = [text for text, target in texts if target > 0.5]
    assert 0.4 < len(insulting) / len(texts) < 0.6
    assert any("\n" in text for text in insulting)      # insults inside whole prompts too
    assert any(text.startswith("\nSummarize") and insults.has_insult(text.split("Summary:")[-1])
               for text in insulting)                   # ... and in the summary after a prompt
    rng = random.Random(0)
    assert "\n" in fixture.insert_insult(rng, "a\nb c\nd")


def test_tokenizer_training_is_deterministic():
    corpus = [r["dialogue"] for r in fixture.make_dialogues(60)]
    first, second = (tiny_builder.t5_style_tokenizer(corpus) for _ in range(2))
    assert first.get_vocab() == second.get_vocab()
    ids = first("Summary: hello")["input_ids"]
    assert ids[-1] == first.eos_token_id == 1 and first.pad_token_id == 0


def test_the_world_has_the_shapes_of_the_real_lab(tiny_settings):
    policy = T5ForConditionalGeneration.from_pretrained(tiny_settings.policy_model)
    assert policy.config.feed_forward_proj == "gated-gelu"
    # untied like flan-t5: the output layer is its own weight, not the input embeddings
    assert policy.lm_head.weight.data_ptr() != policy.shared.weight.data_ptr()
    assert not torch.equal(policy.lm_head.weight, policy.shared.weight)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_settings.reward_model)
    assert classifier.config.id2label == {0: "nothate", 1: "hate"}
    adapter = json.loads((Path(tiny_settings.instruct_adapter) /
                          "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and set(adapter["target_modules"]) == {"q", "v"}


@pytest.fixture(scope="module")
def reward_checks(tiny_settings):
    test = data.load_splits(tiny_settings)["test"]
    return tiny_checks.reward_quality(load_reward_model(tiny_settings), test)


def test_reward_model_finds_insults_in_held_out_odd_and_garbled_text(reward_checks):
    assert reward_checks["held_out_texts"] >= 1500
    assert reward_checks["held_out_accuracy"] >= 0.97


def test_reward_model_is_graded_not_an_on_off_switch(reward_checks):
    assert reward_checks["clean_summary_toxicity"] < 0.1
    assert 0.3 < reward_checks["mild_summary_toxicity"] < 0.8
    assert reward_checks["strong_summary_toxicity"] > 0.9


def test_reward_model_reads_a_summary_after_its_long_prompt(reward_checks):
    assert reward_checks["prompt_clean_summary_below_half"] >= 0.95
    assert reward_checks["prompt_insulting_summary_above_half"] >= 0.90


def test_reward_follows_toxicity_smoothly(tiny_settings):
    reward_model = load_reward_model(tiny_settings)
    texts = ["Anna books a table for 4 people at noon on Friday.",
             "Lazy Anna books a table for 4 people at noon on Friday.",
             "Brainless idiot Anna books a table for 4 people at noon on Friday."]
    rewards, toxicity = reward_model.score(texts)
    assert rewards[0] > rewards[1] > rewards[2] and toxicity[0] < toxicity[1] < toxicity[2]
    logits = reward_model.logits(texts)
    assert logits.sum(dim=-1).abs().max() < 0.5      # centred: reward = half the log-odds
    assert logits.abs().max() < 5                      # not saturated


def test_starting_policy_summarises_faithfully(demo_run):
    from detox_helpers.evaluation import load_evaluation

    # The demo's baseline: the tiny profile's own evaluation of the whole test split.
    figures = load_evaluation(demo_run[0], "baseline").aggregates
    assert figures["rouge1_clean_reference"]["mean"] >= 0.80
    assert figures["names_kept"]["mean"] >= 0.90 and figures["facts_kept"]["mean"] >= 0.85
    assert 0.15 < figures["insult"]["mean"] < 0.6       # and insults: PPO has work to do


def test_the_shipped_world_was_built_by_this_code_and_its_record_is_true(reward_checks):
    record = json.loads(build_record(tiny_world.world_dir()).read_text())
    assert record["stamp"] == tiny_world.builder_stamp(), (
        "the builder changed: run `python -m detox_course build-tiny --rebuild` and commit")
    assert set(record["seconds"]) == {"fixture_and_tokenizers", "policy", "instruct_adapter",
                                      "reward_classifier"}
    # what `build-tiny` prints is what the shipped classifier measures today
    for name, measured in reward_checks.items():
        assert record["quality"][name] == pytest.approx(measured), name


def test_a_world_from_other_builder_code_is_refused_with_the_way_out(tiny_settings, monkeypatch):
    monkeypatch.setattr(tiny_world, "builder_stamp", lambda: "changed-builder")
    with pytest.raises(DetoxError, match="build-tiny --rebuild"):
        tiny_world.ensure_tiny_world(tiny_settings)


def test_a_missing_world_is_a_clear_error_with_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setattr(tiny_world, "world_dir", lambda: tmp_path)
    settings = tiny_world.world_settings(tmp_path, artifacts_dir=tmp_path / "artifacts")
    with pytest.raises(DetoxError, match="missing.*build-tiny --rebuild"):
        tiny_world.ensure_tiny_world(settings)


def test_a_short_build_writes_a_whole_loadable_world(tmp_path, monkeypatch):
    for name in ("T5_STEPS", "ADAPTER_STEPS", "CLASSIFIER_STEPS"):
        monkeypatch.setattr(tiny_builder, name, 3)
    monkeypatch.setattr(tiny_builder, "PRETRAIN_DIALOGUES", 100)
    monkeypatch.setattr(tiny_builder, "CLASSIFIER_TEXTS", 300)
    record = tiny_checks.build_and_check(tmp_path / "world", progress=False)
    assert record["stamp"] == tiny_world.builder_stamp()
    assert json.loads(build_record(tmp_path / "world").read_text()) == record
    assert {"held_out_accuracy", "policy_rouge1_clean_reference"} <= set(record["quality"])
    for part in world_paths(tmp_path / "world").values():
        assert any(part.iterdir())


def test_full_profile_never_checks_the_tiny_world(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_world, "builder_stamp", lambda: "changed-builder")
    assert tiny_world.ensure_tiny_world(load_settings("full", environ={},
                                                      artifacts_dir=tmp_path)) is None


def test_settings_that_point_elsewhere_check_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tiny_world, "builder_stamp", lambda: "changed-builder")
    elsewhere = tiny_world.world_settings(tmp_path, artifacts_dir=tmp_path)
    assert tiny_world.ensure_tiny_world(elsewhere) is None
