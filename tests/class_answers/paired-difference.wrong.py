    return evaluation.per_sample["toxicity"]  # one number per summary, not per prompt
