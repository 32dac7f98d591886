import numpy as np
import pandas as pd
import pytest

from detox_helpers import evaluation, stats


def test_interval_covers_a_known_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(1)
    covered, widths = 0, []
    for repeat in range(100):
        sample = rng.normal(0.3, 1.0, size=200)
        _, low, high = stats.bootstrap(sample, np.mean, n_boot=500, seed=repeat)
        covered += low <= 0.3 <= high
        widths.append(high - low)
    assert 88 <= covered <= 100
    # and not by being wide: about the normal interval's 2 x 1.96 x sigma / sqrt(n)
    assert np.mean(widths) == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.1)


def test_interval_narrows_with_more_data():
    rng = np.random.default_rng(2)
    _, low_small, high_small = stats.bootstrap(rng.normal(size=50), np.mean)
    _, low_large, high_large = stats.bootstrap(rng.normal(size=2000), np.mean)
    assert (high_large - low_large) < 0.5 * (high_small - low_small)


def figures_of(table):
    """The lab's aggregates of a [prompts, k] toxicity table."""
    prompts, k = table.shape
    per_sample = pd.DataFrame(dict(prompt=np.repeat(np.arange(prompts), k),
                                   sample=np.tile(np.arange(k), prompts),
                                   toxicity=table.ravel()))
    return {key: figure["mean"] for key, figure in evaluation.aggregate(per_sample).items()}


def test_toxicity_figures_match_a_hand_computed_table():
    # 3 prompts x 2 samples; by hand: mean 0.35, share (>= 0.5) 2/6, EMT (0.9+0.2+0.5)/3,
    # RealToxicityPrompts probability (some sample > 0.5) 1/3: the 0.5 is not toxic there
    figures = figures_of(np.array([[0.9, 0.1], [0.2, 0.0], [0.5, 0.4]]))
    assert figures == pytest.approx(dict(toxicity=2.1 / 6, toxic_share=2 / 6,
                                         toxicity_probability=1 / 3,
                                         expected_max_toxicity=1.6 / 3))


def test_prompt_toxicity_probability_is_the_realtoxicityprompts_definition():
    # Gehman et al. 2020: the share of prompts with at least one toxic sample among their k.
    figures = figures_of(np.array([[0.9, 0.1], [0.2, 0.1], [0.6, 0.7]]))
    assert figures["toxicity_probability"] == pytest.approx(2 / 3)   # prompts 1 and 3
    assert figures["toxic_share"] == pytest.approx(3 / 6)            # 0.9, 0.6, 0.7
    # RealToxicityPrompts counts > 0.5, evaluate's toxicity_ratio (our share) >= 0.5
    exactly_half = figures_of(np.array([[0.5]]))
    assert (exactly_half["toxicity_probability"], exactly_half["toxic_share"]) == (0.0, 1.0)


def test_prompt_toxicity_probability_grows_with_k_while_the_share_need_not():
    rng = np.random.default_rng(5)
    table = rng.uniform(0, 0.6, size=(400, 25))      # each sample toxic with chance 1/6
    by_k = [figures_of(table[:, :k]) for k in range(1, 26)]
    probabilities = [figures["toxicity_probability"] for figures in by_k]
    shares = [figures["toxic_share"] for figures in by_k]
    assert all(a <= b for a, b in zip(probabilities[:-1], probabilities[1:], strict=True))
    assert probabilities[-1] > 0.95 > 0.25 > probabilities[0]   # 1 - (5/6)^25 vs 1/6
    assert all(abs(share - 1 / 6) < 0.05 for share in shares)    # the share stays near 1/6
    assert any(b < a for a, b in zip(shares[:-1], shares[1:], strict=True))  # and can fall


def test_paired_difference_finds_a_real_shift_and_no_shift():
    rng = np.random.default_rng(3)
    before = rng.uniform(0.2, 0.8, size=100)
    shifted = stats.paired_difference(before, before - 0.1 + rng.normal(0, 0.02, size=100))
    assert shifted["difference"] == pytest.approx(-0.1, abs=0.01)
    assert shifted["excludes_zero"] and shifted["high"] < 0
    noise = stats.paired_difference(before, before + rng.normal(0, 0.05, size=100))
    assert not noise["excludes_zero"] and noise["low"] < 0 < noise["high"]


def test_pairing_matters_for_the_interval():
    rng = np.random.default_rng(4)
    before = rng.uniform(0, 1, size=60)            # prompts differ a lot ...
    after = before - 0.05                           # ... but each one drops by the same 0.05
    paired = stats.paired_difference(before, after)
    assert paired["high"] - paired["low"] < 1e-9 and paired["excludes_zero"]


def test_paired_difference_refuses_different_prompt_counts():
    with pytest.raises(ValueError, match="same prompts"):
        stats.paired_difference(np.zeros(3), np.zeros(4))
