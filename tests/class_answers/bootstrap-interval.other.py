    resampled_means = []
    for _ in range(2000):
        picked = rng.choice(len(before), size=len(before), replace=True)  # whole prompts
        resampled_means.append(np.mean(after[picked] - before[picked]))
    low, high = np.quantile(resampled_means, [0.025, 0.975])
