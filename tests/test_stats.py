"""stats: the bootstrap's percentile interval (its coverage, width and seed) and the paired
difference of two evaluations' per-prompt figures."""

import numpy as np
import pytest

from detox_helpers import stats


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


@pytest.mark.parametrize("differences, excludes", [([0.0, 0.1], False), ([-0.1, 0.0], False),
                                                   ([0.1, 0.2], True), ([-0.2, -0.1], True)])
def test_an_interval_that_touches_zero_does_not_exclude_it(differences, excludes):
    result = stats.paired_difference(np.zeros(2), np.array(differences))
    assert (result["low"], result["high"]) == pytest.approx((min(differences), max(differences)))
    assert result["excludes_zero"] is excludes


def test_the_paired_difference_passes_its_seed_on():
    before, after = np.random.default_rng(0).uniform(size=(2, 10))   # no grid: seeds differ
    for seed in (0, 7):
        paired = stats.paired_difference(before, after, seed=seed)
        assert (paired["low"], paired["high"]) == stats.bootstrap(after - before, np.mean,
                                                                  seed=seed)[1:]
