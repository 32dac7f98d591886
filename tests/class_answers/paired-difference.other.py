    table = evaluation.per_sample
    means = {}
    for prompt in table["prompt"].unique():
        means[prompt] = table.loc[table["prompt"] == prompt, "toxicity"].mean()
    return pd.Series(means)
