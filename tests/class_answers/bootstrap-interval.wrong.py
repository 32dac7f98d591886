    differences = after - before
    draws = rng.integers(0, len(differences), size=(2000, len(differences)))
    resampled_means = differences[draws].mean(axis=1)
    low, high = np.percentile(resampled_means, [5, 95])  # the middle 90%
