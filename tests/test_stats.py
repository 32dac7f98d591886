import numpy as np
import pytest

from detox_helpers import stats


def test_interval_covers_a_known_mean_at_about_the_stated_rate():
    rng = np.random.default_rng(1)
    covered = 0
    for repeat in range(100):
        sample = rng.normal(0.3, 1.0, size=200)
        _, low, high = stats.bootstrap(sample, np.mean, n_boot=500, seed=repeat)
        covered += low <= 0.3 <= high
    assert 88 <= covered <= 100


def test_interval_narrows_with_more_data():
    rng = np.random.default_rng(2)
    _, low_small, high_small = stats.bootstrap(rng.normal(size=50), np.mean)
    _, low_large, high_large = stats.bootstrap(rng.normal(size=2000), np.mean)
    assert (high_large - low_large) < 0.5 * (high_small - low_small)


def test_toxicity_figures_match_a_hand_computed_table():
    # 3 prompts x 2 samples; by hand: mean 0.35, probability (>= 0.5) 2/6, EMT (0.9+0.2+0.5)/3
    table = np.array([[0.9, 0.1], [0.2, 0.0], [0.5, 0.4]])
    assert stats.toxicity_probability(table) == pytest.approx(2 / 6)
    assert stats.expected_max_toxicity(table) == pytest.approx(1.6 / 3)
    summary = stats.summarise_toxicity(table)
    assert (summary["n"], summary["k"]) == (3, 2)
    assert summary["mean"] == pytest.approx(2.1 / 6)
    assert summary["toxicity_probability"] == pytest.approx(2 / 6)
    assert summary["expected_max_toxicity"] == pytest.approx(1.6 / 3)
    assert summary["mean_low"] <= summary["mean"] <= summary["mean_high"]


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
