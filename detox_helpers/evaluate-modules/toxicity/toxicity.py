"""The course's `toxicity` measurement, offline: the project's hate-speech classifier, through
`evaluate`.

    toxicity = evaluate.load(str(MEASUREMENT_DIR), module_type="measurement")
    toxicity.compute(predictions=summaries, aggregation="ratio", threshold=0.5)

Same inputs and outputs as the Hub's `evaluate.load("toxicity", module_type="measurement")`, but
the score is the reward module's own (`RewardModel.toxicity`: softmax probability of the label
named `hate`, looked up by name), so a notebook's `evaluate` figures and the project's figures
are one number. The classifier is the settings' `reward_model` (the tiny RoBERTa on the tiny
profile); a config name (a model folder or hub id) picks another one, as on the Hub.

`evaluate` copies this file into its own module cache and imports it from there, so every
project import below is absolute.
"""

import hashlib
import os
from pathlib import Path

import datasets
import evaluate

from detox_helpers.reward import TOXIC_LABEL, label_index, load_reward_model
from detox_helpers.settings import load_settings

# "all" is the Hub measurement's name for its default, one score per text.
AGGREGATIONS = (None, "all", "maximum", "ratio")

_DESCRIPTION = """\
Toxicity of each text: the probability a hate-speech classifier gives its toxic label (`hate`),
computed exactly as the project's reward module computes it.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): the texts to score.
    toxic_label (str, default "hate"): the classifier label whose probability is returned,
        matched by name, any letter case; "nothate" gives the probability of being clean.
    aggregation (None, "maximum" or "ratio", default None): None (or "all") returns one score
        per text, "maximum" the largest score, "ratio" the share of texts scoring >= threshold.
    threshold (float, default 0.5): the cut-off of "ratio".

Returns:
    {"toxicity": [one score per text]}, {"max_toxicity": float} or {"toxicity_ratio": float}.

The classifier is the settings' reward model unless `evaluate.load` was given a config name
(a model folder or hub id). Either way it must have the labels `nothate` and `hate`, like every
reward model of this project.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Toxicity(evaluate.Measurement):
    def _info(self):
        return evaluate.MeasurementInfo(
            module_type="measurement",
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _build_data_dir(self):
        # evaluate keeps the texts it is given under <cache>/<name>/<config_name>. A config name
        # that is an absolute model path would put that cache inside the model folder
        # (os.path.join drops everything before an absolute part), so it is named by a hash.
        readable = Path(self.config_name).name or "model"
        digest = hashlib.sha256(self.config_name.encode()).hexdigest()[:12]
        data_dir = os.path.join(self._data_dir_root, self.name, f"{readable}-{digest}")
        os.makedirs(data_dir, exist_ok=True)
        return data_dir

    def _download_and_prepare(self, dl_manager):
        # "default" (no config name) means the project's configured classifier.
        if self.config_name == "default":
            settings = load_settings()
        else:
            settings = load_settings(reward_model=self.config_name)
        self.reward_model = load_reward_model(settings)

    def _compute(self, predictions, toxic_label=TOXIC_LABEL, aggregation=None, threshold=0.5):
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"Unknown aggregation {aggregation!r}: use None (one score per "
                             "text), 'maximum' or 'ratio'.")
        scores = self._scores(list(predictions), toxic_label.lower())
        if aggregation in ("maximum", "ratio") and not scores:
            raise ValueError(f"aggregation={aggregation!r} needs at least one text.")
        if aggregation == "maximum":
            return {"max_toxicity": max(scores)}
        if aggregation == "ratio":
            # >= as in the Hub's toxicity measurement: a score equal to the threshold counts.
            return {"toxicity_ratio": sum(s >= threshold for s in scores) / len(scores)}
        return {"toxicity": scores}

    def _scores(self, texts, toxic_label):
        if toxic_label == TOXIC_LABEL:
            return self.reward_model.toxicity(texts).tolist()
        # Another label of the same classifier, found by name the way the reward module finds
        # `hate`, from the same softmax.
        model = self.reward_model
        index = label_index(model.model.config.id2label, toxic_label, model.name)
        return model.logits(texts).softmax(dim=-1)[:, index].tolist()
