toxicity_measure = evaluate.load(str(MEASUREMENT_DIR), settings.reward_model,
                                 module_type="measurement")


def toxicity_scores(texts):
    return toxicity_measure.compute(predictions=texts, aggregation="ratio")["toxicity_ratio"]
