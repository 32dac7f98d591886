import copy
import dataclasses
import json
import shutil

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from detox_helpers.errors import DetoxError
from detox_helpers.reward import RewardModel, labels_reversed, load_reward_model, reward_texts

INSULT = "Anna is a stupid idiot."
CLEAN = "Anna books a table for 4 people at noon on Friday."


@pytest.fixture(scope="module")
def classifier(tiny_settings):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_settings.reward_model)
    return model, AutoTokenizer.from_pretrained(tiny_settings.reward_model)


def swapped_labels(model):
    """The same classifier with its two output rows, and its label names, in the other order."""
    swapped = copy.deepcopy(model)
    head = swapped.classifier.out_proj
    with torch.no_grad():
        head.weight.copy_(head.weight.flip(0))
        head.bias.copy_(head.bias.flip(0))
    swapped.config.id2label = {0: "hate", 1: "nothate"}
    swapped.config.label2id = {"hate": 0, "nothate": 1}
    return swapped


def test_reward_is_the_nothate_logit_even_when_hate_scores_higher(classifier):
    model, tokenizer = classifier
    reward_model = RewardModel(model, tokenizer)
    logits = reward_model.logits([INSULT, CLEAN])
    assert logits[0, 1] > logits[0, 0]          # the insult: `hate` is the larger logit
    assert torch.equal(reward_model.rewards([INSULT, CLEAN]), logits[:, 0])
    assert reward_model.rewards([INSULT])[0] < reward_model.rewards([CLEAN])[0]


def test_label_order_does_not_change_reward_or_toxicity(classifier):
    model, tokenizer = classifier
    usual, swapped = RewardModel(model, tokenizer), RewardModel(swapped_labels(model), tokenizer)
    texts = [INSULT, CLEAN]
    assert torch.allclose(usual.rewards(texts), swapped.rewards(texts))
    assert torch.allclose(usual.toxicity(texts), swapped.toxicity(texts))
    # reading position 0 instead would have rewarded the insult in the swapped model
    assert not torch.allclose(swapped.logits(texts)[:, 0], usual.rewards(texts))


def test_labels_reversed_scores_by_name_as_before_and_by_position_otherwise(classifier):
    # what notebook 03's check calls a learner's scoring code with
    model, tokenizer = classifier
    reward_model = RewardModel(model, tokenizer)
    reversed_model = labels_reversed(reward_model)
    assert (reversed_model.clean, reversed_model.toxic_indices) == (1, [0])
    assert reversed_model.model.config.id2label == {0: "hate", 1: "nothate"}
    assert reward_model.model.config.id2label == {0: "nothate", 1: "hate"}  # the original kept
    texts = [INSULT, CLEAN]
    assert torch.allclose(reversed_model.logits(texts), reward_model.logits(texts).flip(1))
    for by_name, reference in zip(reversed_model.score(texts), reward_model.score(texts),
                                  strict=True):
        assert torch.allclose(by_name, reference)


def test_toxicity_is_the_probability_of_hate(classifier):
    model, tokenizer = classifier
    reward_model = RewardModel(model, tokenizer)
    rewards, toxicity = reward_model.score([INSULT, CLEAN])
    expected = reward_model.logits([INSULT, CLEAN]).softmax(-1)[:, 1]
    assert torch.allclose(toxicity, expected)
    assert toxicity[0] > 0.5 > toxicity[1] and torch.equal(rewards, reward_model.rewards(
        [INSULT, CLEAN]))


def test_a_classifier_without_the_labels_is_a_clear_error(classifier):
    model, tokenizer = classifier
    other = copy.deepcopy(model)
    other.config.id2label = {0: "NEGATIVE", 1: "POSITIVE"}
    with pytest.raises(DetoxError, match="no 'nothate' label.*NEGATIVE"):
        RewardModel(other, tokenizer, name="sentiment-model")


def test_long_texts_are_truncated_to_the_model_limit(classifier):
    model, tokenizer = classifier
    reward_model = RewardModel(model, tokenizer, batch_size=2)
    long = " ".join([CLEAN] * 300)  # far past the limit
    assert len(tokenizer(long)["input_ids"]) > reward_model.max_length
    scores = reward_model.toxicity([long, long + " " + INSULT, INSULT + " " + long])
    # the classifier reads the first max_length tokens only: an insult past them is not seen
    assert scores[1].item() == pytest.approx(scores[0].item(), abs=1e-4)
    assert scores[2] > 0.5 > scores[1]


def test_texts_scored_in_length_sorted_batches_come_back_in_the_callers_order(classifier):
    model, tokenizer = classifier
    texts = [CLEAN, INSULT + " " + CLEAN * 3, "Fine.", INSULT, CLEAN * 2]  # lengths mixed
    alone = torch.cat([RewardModel(model, tokenizer).logits([t]) for t in texts])
    batched = RewardModel(model, tokenizer, batch_size=2).logits(texts)
    assert torch.allclose(batched, alone, atol=1e-5)
    assert not torch.allclose(batched, alone.flip(0), atol=1e-5)  # the rows differ


def test_reward_reads_the_summary_or_prompt_plus_summary():
    assert reward_texts(["P1", "P2"], ["s1", "s2"], "summary") == ["s1", "s2"]
    assert reward_texts(["P1", "P2"], ["s1", "s2"], "prompt+summary") == ["P1 s1", "P2 s2"]


def test_load_reward_model_uses_the_settings(tiny_settings, classifier):
    loaded = load_reward_model(tiny_settings)
    by_hand = RewardModel(*classifier)
    assert loaded.clean == 0 and loaded.toxic_indices == [1]
    assert torch.equal(loaded.toxicity([CLEAN, INSULT]), by_hand.toxicity([CLEAN, INSULT]))


THREE_LABELS = {0: "nothate", 1: "hate", 2: "offensive"}


@pytest.fixture(scope="module")
def three_label_folder(tiny_settings, classifier, tmp_path_factory):
    """A tiny classifier with a third label, `offensive` (random head), saved with the tiny
    tokenizer."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(tiny_settings.reward_model)
    config.id2label, config.num_labels = THREE_LABELS, 3
    config.label2id = {name: index for index, name in THREE_LABELS.items()}
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("three-labels")
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    classifier[1].save_pretrained(folder)
    return folder


def test_a_classifier_with_a_label_not_named_toxic_is_refused(tiny_settings, three_label_folder):
    settings = dataclasses.replace(tiny_settings, reward_model=str(three_label_folder))
    with pytest.raises(DetoxError, match=r"label\(s\) \['offensive'\], neither 'nothate' nor "
                                         r"named in toxic_labels='hate'.*'hate,offensive'"):
        load_reward_model(settings)
    with pytest.raises(DetoxError, match="no 'insult' label, which toxic_labels='hate,insult'"):
        load_reward_model(dataclasses.replace(settings, toxic_labels="hate,insult"))


def test_toxicity_sums_the_toxic_labels_and_the_reward_stays_the_nothate_logit(
        tiny_settings, three_label_folder):
    settings = dataclasses.replace(tiny_settings, reward_model=str(three_label_folder),
                                   toxic_labels="Offensive, HATE")
    reward_model = load_reward_model(settings)
    logits = reward_model.logits([INSULT, CLEAN])
    rewards, toxicity = reward_model.score([INSULT, CLEAN])
    assert torch.equal(rewards, logits[:, 0])
    assert torch.allclose(toxicity, 1 - logits.softmax(-1)[:, 0])  # hate + offensive


def test_a_config_that_does_not_fit_the_weights_is_a_clear_error(tiny_settings, tmp_path):
    folder = tmp_path / "broken-reward"
    shutil.copytree(tiny_settings.reward_model, folder)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(index): name for index, name in THREE_LABELS.items()}
    config["label2id"] = {name: index for index, name in THREE_LABELS.items()}
    (folder / "config.json").write_text(json.dumps(config))
    settings = dataclasses.replace(tiny_settings, reward_model=str(folder),
                                   toxic_labels="hate,offensive")
    with pytest.raises(DetoxError, match=f"{folder}.*weights do not fit its config.json"):
        load_reward_model(settings)
