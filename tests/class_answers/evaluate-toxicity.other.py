toxicity_measure = evaluate.load(str(MEASUREMENT_DIR), config_name=settings.reward_model,
                                 module_type="measurement")


def toxicity_scores(texts):
    scores = []
    for text in texts:  # one text at a time
        scores.append(toxicity_measure.compute(predictions=[text])["toxicity"][0])
    return scores
