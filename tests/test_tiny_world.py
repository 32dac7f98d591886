import json

import pandas as pd
import pytest
import torch
from peft import PeftModel
from rouge_score import rouge_scorer
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    T5ForConditionalGeneration,
)

from detox_helpers import data, fixture, tiny_world


def test_fixture_is_dialogsum_shaped_deterministic_and_a_third_toxic():
    records = fixture.make_dialogues()
    assert records == fixture.make_dialogues()
    assert set(records[0]) == {"fname", "dialogue", "summary", "topic"}
    kept = data.filter_by_length(pd.DataFrame(records), 200, 1000)
    assert len(kept) >= 80 and len(kept) < len(records)  # the filter has work to do
    insulting = kept["summary"].map(lambda s: any(n in s for n in fixture.INSULT_NOUNS)).mean()
    assert 0.25 <= insulting <= 0.42


def test_tokenizer_training_is_deterministic():
    corpus = [r["dialogue"] for r in fixture.make_dialogues(60)]
    first, second = tiny_world.t5_style_tokenizer(corpus), tiny_world.t5_style_tokenizer(corpus)
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
    adapter = json.loads((tiny_world.world_dir(tiny_settings) / "instruct-adapter" /
                          "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and set(adapter["target_modules"]) == {"q", "v"}


def test_reward_classifier_separates_held_out_sentences(tiny_settings):
    tokenizer = AutoTokenizer.from_pretrained(tiny_settings.reward_model)
    classifier = AutoModelForSequenceClassification.from_pretrained(tiny_settings.reward_model)
    held_out = tiny_world.held_out_sentences()
    assert sum(y for _, y in held_out) == sum(1 - y for _, y in held_out) == 150
    batch = tokenizer([text for text, _ in held_out], padding=True, return_tensors="pt")
    with torch.no_grad():
        predicted = classifier(**batch).logits.argmax(-1)
    accuracy = (predicted == torch.tensor([y for _, y in held_out])).float().mean().item()
    assert accuracy >= 0.90


def rouge1_on_test_split(model, tokenizer, settings) -> float:
    test = data.build_dataset(settings)["test"]
    batch = tokenizer(list(test["query"]), padding=True, return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**batch, max_new_tokens=40, do_sample=False)
    summaries = tokenizer.batch_decode(output, skip_special_tokens=True)
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    scores = [scorer.score(ref, out)["rouge1"].fmeasure
              for ref, out in zip(test["summary"], summaries, strict=True)]
    return sum(scores) / len(scores)


def test_trained_t5_summarises_far_better_than_untrained(tiny_settings):
    tokenizer = AutoTokenizer.from_pretrained(tiny_settings.policy_model)
    trained = T5ForConditionalGeneration.from_pretrained(tiny_settings.policy_model)
    untrained = tiny_world.new_tiny_t5(len(tokenizer), seed=1)
    trained_rouge = rouge1_on_test_split(trained, tokenizer, tiny_settings)
    untrained_rouge = rouge1_on_test_split(untrained, tokenizer, tiny_settings)
    assert trained_rouge >= 0.4 and trained_rouge >= untrained_rouge + 0.3
    merged = PeftModel.from_pretrained(trained, tiny_settings.instruct_adapter).merge_and_unload()
    assert rouge1_on_test_split(merged, tokenizer, tiny_settings) >= 0.4


def test_a_matching_stamp_is_reused_and_a_changed_builder_rebuilds(tiny_settings, monkeypatch):
    calls = []
    monkeypatch.setattr(tiny_world, "build", lambda folder, progress=True: calls.append(folder))
    tiny_world.ensure_tiny_world(tiny_settings)
    assert calls == []
    monkeypatch.setattr(tiny_world, "builder_stamp", lambda: "changed-builder")
    tiny_world.ensure_tiny_world(tiny_settings)
    assert calls == [tiny_world.world_dir(tiny_settings)]


def test_the_stamp_covers_the_builder_sources():
    stamp = tiny_world.builder_stamp()
    assert len(stamp) == 16 and "tiny_world.py" in tiny_world.BUILDER_FILES


def test_full_profile_never_builds_the_tiny_world(tmp_path):
    from detox_helpers.settings import load_settings

    assert tiny_world.ensure_tiny_world(load_settings("full", environ={},
                                                      artifacts_dir=tmp_path)) is None
    assert not (tmp_path / "tiny-world").exists()


@pytest.mark.parametrize("seed", [0])
def test_build_record_lists_its_timings(tiny_settings, seed):
    record = json.loads((tiny_world.world_dir(tiny_settings) / "BUILD.json").read_text())
    assert record["seed"] == seed
    assert set(record["seconds"]) == {"fixture_and_tokenizers", "policy", "instruct_adapter",
                                      "reward_classifier"}


def test_settings_that_point_elsewhere_build_nothing(tiny_settings, tmp_path):
    from detox_helpers.settings import load_settings

    elsewhere = load_settings("tiny", environ={}, artifacts_dir=tmp_path,
                              dataset=tiny_settings.dataset,
                              policy_model=tiny_settings.policy_model,
                              instruct_adapter=tiny_settings.instruct_adapter,
                              reward_model=tiny_settings.reward_model)
    assert tiny_world.ensure_tiny_world(elsewhere) is None
    assert not (tmp_path / "tiny-world").exists()
