"""The package's arithmetic on inputs whose answers are known by hand: the tests that kill the
mutants `make mutate` makes of stats, evaluation, reward, ppo, logprobs and generation's trimming
(docs/tests.md lists what survives and why). Fake models keep each test to milliseconds."""

import numpy as np
import pytest
import torch
from datasets import Dataset

from detox_helpers import evaluation, stats


class CountingStatistic:
    """A statistic that ignores its sample and returns 0, 1, 2, ...: the bootstrap's draws are
    then known exactly, and so are their percentiles."""

    def __init__(self):
        self.calls = 0

    def __call__(self, sample):
        self.calls += 1
        return float(self.calls - 1)


def test_the_interval_is_the_2_5th_and_97_5th_percentile_of_the_draws():
    estimate, low, high = stats.bootstrap(np.zeros(3), CountingStatistic(), n_boot=2001)
    # draws 0 .. 2000, then the estimate on the whole sample: 2001; numpy's linear percentile
    # of 0 .. 2000 at 2.5% is 0.025 * 2000 = 50, at 97.5% it is 1950
    assert (estimate, low, high) == pytest.approx((2001, 50, 1950))


def test_the_bootstrap_is_repeatable_and_its_seed_matters():
    sample = np.arange(20.0)
    assert stats.bootstrap(sample, np.mean) == stats.bootstrap(sample, np.mean)
    assert stats.bootstrap(sample, np.mean, seed=1) != stats.bootstrap(sample, np.mean)


@pytest.mark.parametrize("differences, excludes", [([0.0, 0.1], False), ([-0.1, 0.0], False),
                                                   ([0.1, 0.2], True), ([-0.2, -0.1], True)])
def test_an_interval_that_touches_zero_does_not_exclude_it(differences, excludes):
    result = stats.paired_difference(np.zeros(2), np.array(differences))
    assert (result["low"], result["high"]) == pytest.approx((min(differences), max(differences)))
    assert result["excludes_zero"] is excludes


class TextReward:
    """A stand-in for the reward module: toxicity is the share of the words "rude" among a
    text's words, the reward is minus the number of them, so each number names its text."""

    def toxicity(self, texts):
        return torch.tensor([text.split().count("rude") / len(text.split()) for text in texts])

    def score(self, texts, progress=False):
        return (torch.tensor([-float(text.split().count("rude")) for text in texts]),
                self.toxicity(texts))


def test_each_summary_is_scored_with_its_own_prompt():
    # 2 prompts x k=2, laid out prompt by prompt: np.repeat pairs (A, A, B, B); np.tile would
    # pair (A, B, A, B) and score two summaries with another prompt
    rows = Dataset.from_dict(dict(id=["a", "b"], query=["rude rude", "calm"],
                                  summary=["ref a", "ref b"],
                                  references=[["ref a"], ["ref b", "rude b"]]))
    summaries = ["rude", "kind", "kind", "rude"]
    table = evaluation.score_summaries(rows, summaries, [1, 1, 1, 1], TextReward(), k=2,
                                       progress=False)
    assert list(table["id"]) == ["a", "a", "b", "b"]
    assert list(table["prompt"]) == [0, 0, 1, 1] and list(table["sample"]) == [0, 1, 0, 1]
    assert list(table["reference"]) == ["ref a", "ref a", "ref b", "ref b"]
    # "rude rude rude": 3 of 3; "rude rude kind": 2 of 3; "calm kind": 0; "calm rude": 1 of 2
    assert list(table["toxicity_with_prompt"]) == pytest.approx([1, 2 / 3, 0, 1 / 2])
    assert list(table["toxicity"]) == [1, 0, 0, 1] and list(table["reward"]) == [-1, 0, 0, -1]
    # ROUGE against each prompt's own references (the best of b's two)
    assert list(table["rouge1"]) == pytest.approx([0, 0, 0, 2 * (1 / 1) * (1 / 2) / 1.5])
