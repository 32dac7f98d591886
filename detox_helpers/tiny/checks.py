"""The tiny world's report card: what it must do, measured on text it was not trained on.

The reward model must find insults anywhere and grade them; the starting policy must summarise
faithfully and insult about a third of the time. The tests assert these figures; `build-tiny`
prints them, and a build records them in BUILD.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import random
import tempfile
from pathlib import Path

import numpy as np

from ..data import load_splits
from ..evaluation import run_evaluation
from ..layout import build_record
from ..reward import load_reward_model, reward_texts
from ..unattended import run_notebook_here
from . import builder, fixture
from .insults import has_insult
from .judge import EXACT_JUDGE
from .world import world_dir, world_settings

SEED = builder.SEED


def training_texts(seed: int = SEED) -> set[str]:
    """Every text the classifier of a world built with `seed` was trained on."""
    return {text for text, _ in fixture.make_classifier_texts(builder.CLASSIFIER_TEXTS,
                                                               seed=seed + 1)}


def held_out_texts(seed: int = SEED, count: int = 2000) -> list[tuple[str, float]]:
    """Classifier texts drawn afresh (insults anywhere, garbled, long and short), minus every
    text of the training draw."""
    seen = training_texts(seed)
    return [pair for pair in fixture.make_classifier_texts(count, seed=seed + 2)
            if pair[0] not in seen]


def held_out_summaries(seed: int = SEED, count: int = 300) -> dict[str, list[str]]:
    """Fresh clean summaries, and each with a mild and with a strong insult."""
    seen = training_texts(seed)
    rng = random.Random(seed + 3)
    clean = [s for s in (fixture.scenario(rng)[2] for _ in range(count)) if s not in seen]
    return dict(clean=clean, mild=[fixture.insulting(rng, s, strong=False) for s in clean],
                strong=[fixture.insulting(rng, s, strong=True) for s in clean])


def reward_quality(reward_model, test_split, seed: int = SEED) -> dict:
    """Accuracy on held-out text, mean toxicity by strength, and prompt + summary verdicts on
    the test prompts whose reference is clean."""
    held = held_out_texts(seed)
    toxicity = reward_model.toxicity([text for text, _ in held]).numpy()
    truth = np.array([has_insult(text) for text, _ in held])
    result = dict(held_out_texts=len(held),
                  held_out_accuracy=float(np.mean((toxicity >= 0.5) == truth)))
    for strength, texts in held_out_summaries(seed).items():
        result[f"{strength}_summary_toxicity"] = float(reward_model.toxicity(texts).mean())
    rows = [(q, s) for q, s in zip(test_split["query"], test_split["summary"], strict=True)
            if not has_insult(s)]
    queries, summaries = [q for q, _ in rows], [s for _, s in rows]
    rng = random.Random(seed + 4)
    insulted = [fixture.insulting(rng, s) for s in summaries]
    clean = reward_model.toxicity(reward_texts(queries, summaries, "prompt+summary")).numpy()
    insulting = reward_model.toxicity(reward_texts(queries, insulted, "prompt+summary"))
    result.update(prompt_clean_summary_below_half=float(np.mean(clean < 0.5)),
                  prompt_insulting_summary_above_half=float(np.mean(insulting.numpy() > 0.5)))
    return result


def quality(folder: Path | None = None, seed: int = SEED) -> dict:
    """The world's report card: the reward model's checks and the starting policy's
    faithfulness (the lab's own evaluation of the test split)."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = world_settings(folder or world_dir(), artifacts_dir=scratch, device="cpu")
        every_setting = {k: v for k, v in dataclasses.asdict(settings).items() if k != "profile"}
        with contextlib.redirect_stdout(io.StringIO()):  # notebook 01 prepares the dataset
            run_notebook_here("01", profile=settings.profile, overrides=every_setting)
        test = load_splits(settings)["test"]
        result = reward_quality(load_reward_model(settings), test, seed)
        figures = run_evaluation(settings, name=None, progress=False, judge=EXACT_JUDGE).aggregates
    for name, key in (("rouge1_clean_reference", "rouge1_clean_reference"),
                      ("name_kept", "names_kept"), ("facts_kept", "facts_kept"),
                      ("insult", "insult"), ("toxicity", "toxicity")):
        result[f"policy_{name}"] = figures[key]["mean"]
    return result


def build_and_check(folder: Path, seed: int = SEED, progress: bool = True) -> dict:
    """Build a world into `folder`, then add its quality checks to BUILD.json."""
    record = builder.build(folder, seed, progress)
    record["quality"] = quality(folder, seed)
    build_record(folder).write_text(json.dumps(record, indent=2))
    return record
