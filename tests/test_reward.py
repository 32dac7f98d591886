"""reward: the reward is the nothate logit and the toxicity the toxic labels' probability, read
by label name, on classifiers made by hand and on the tiny world's; texts scored in batches,
at most 512 tokens each; the texts the reward reads; a classifier the lab cannot use."""

import copy
import dataclasses
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, BatchEncoding

from detox_helpers import reward
from detox_helpers.errors import DetoxError
from detox_helpers.reward import RewardModel, labels_reversed, load_reward_model, reward_texts

INSULT = "Anna is a stupid idiot."
CLEAN = "Anna books a table for 4 people at noon on Friday."


class WordTokenizer:
    """Reads a text as two numbers: its count of "rude" and its length; records max_length."""
    model_max_length = 512

    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        self.max_length = max_length
        return BatchEncoding(dict(input_ids=torch.tensor(
            [[text.split().count("rude"), len(text)] for text in texts], dtype=torch.float)))


class WordClassifier(torch.nn.Module):
    """Logits by hand, labels in the order `id2label` gives: hate = the count of "rude",
    nothate = 0.5 - that count, a third label (if any) = the text's length / 100."""

    def __init__(self, id2label):
        super().__init__()
        self.config = SimpleNamespace(id2label=id2label)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.batches = []

    def forward(self, input_ids):
        self.batches.append(len(input_ids))
        rude, length = input_ids[:, 0] * self.scale, input_ids[:, 1]
        by_name = dict(hate=rude, nothate=0.5 - rude, offensive=length / 100)
        return SimpleNamespace(logits=torch.stack(
            [by_name[self.config.id2label[i].lower()] for i in range(len(self.config.id2label))],
            -1))


@pytest.mark.parametrize("id2label", [{0: "hate", 1: "nothate"}, {0: "NotHate", 1: "HATE"}])
def test_reward_and_toxicity_by_hand(id2label):
    model = reward.RewardModel(WordClassifier(id2label), WordTokenizer())
    texts = ["calm", "rude", "rude rude words"]
    rewards, toxicity = model.score(texts)
    # reward: the nothate logit 0.5 - n; toxicity: softmax's hate share 1 / (1 + e^(0.5 - 2n))
    assert rewards.tolist() == pytest.approx([0.5, -0.5, -1.5])
    assert toxicity.tolist() == pytest.approx([1 / (1 + np.exp(0.5 - 2 * n)) for n in (0, 1, 2)])
    assert torch.equal(model.rewards(texts), rewards)
    assert torch.equal(model.toxicity(texts), toxicity)


def test_several_toxic_labels_add_up_and_the_reward_stays_nothates():
    model = reward.RewardModel(WordClassifier({0: "offensive", 1: "nothate", 2: "hate"}),
                               WordTokenizer(), toxic_labels="hate,offensive")
    rewards, toxicity = model.score(["rude"])        # logits: offensive 0.04, nothate -0.5,
    logits = np.array([0.04, -0.5, 1.0])              # hate 1
    shares = np.exp(logits) / np.exp(logits).sum()
    assert rewards.item() == pytest.approx(-0.5)
    assert toxicity.item() == pytest.approx(shares[0] + shares[2])


def test_texts_are_scored_longest_first_in_batches_and_returned_in_order():
    classifier = WordClassifier({0: "hate", 1: "nothate"})
    model = reward.RewardModel(classifier, WordTokenizer(), batch_size=2)
    texts = ["rude", "a much longer calm text", "rude rude and long", "calm", "rude x"]
    assert model.rewards(texts).tolist() == pytest.approx([-0.5, 0.5, -1.5, 0.5, -0.5])
    assert classifier.batches == [2, 2, 1]
    # one batch keeps its order (see RewardModel.logits); no texts, no rows
    assert model.logits(texts[:2]).shape == (2, 2) and model.logits([]).shape == (0, 2)


@pytest.mark.parametrize("limit, used", [(128, 128), (512, 512), (10**30, 512), (None, 512)])
def test_the_classifier_reads_at_most_512_tokens(limit, used):
    tokenizer = WordTokenizer()
    tokenizer.model_max_length = limit
    model = reward.RewardModel(WordClassifier({0: "hate", 1: "nothate"}), tokenizer)
    model.rewards(["calm"])
    assert model.max_length == tokenizer.max_length == used


@pytest.fixture(scope="module")
def classifier(tiny_settings):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_settings.reward_model)
    return model, AutoTokenizer.from_pretrained(tiny_settings.reward_model)


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


def test_prompt_and_summary_texts_pair_strictly():
    with pytest.raises(ValueError):
        reward.reward_texts(["P1"], ["s1", "s2"], "prompt+summary")


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


def test_every_label_must_be_nothate_or_named_toxic(tiny_settings, three_label_folder):
    labels = {0: "nothate", 1: "hate", 2: "Offensive"}
    assert reward.toxic_indices(labels, "offensive,HATE", "m") == [2, 1]
    with pytest.raises(DetoxError, match=r"\['offensive'\], neither 'nothate' nor named in "
                                         r"toxic_labels='hate'.*toxic_labels='hate,offensive'"):
        reward.toxic_indices(labels, "hate", "m")
    with pytest.raises(DetoxError, match="'m' has no 'insult' label"):
        reward.toxic_indices(labels, "hate,offensive,insult", "m")
    # and load_reward_model refuses such a classifier by the settings' toxic_labels
    settings = dataclasses.replace(tiny_settings, reward_model=str(three_label_folder))
    with pytest.raises(DetoxError, match=r"label\(s\) \['offensive'\], neither 'nothate' nor "
                                         r"named in toxic_labels='hate'.*'hate,offensive'"):
        load_reward_model(settings)
    with pytest.raises(DetoxError, match="no 'insult' label, which toxic_labels='hate,insult'"):
        load_reward_model(dataclasses.replace(settings, toxic_labels="hate,insult"))


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
