"""Evaluate a policy on a split: per-sample results, aggregates with intervals, saved to disk.

Each test prompt gets k sampled summaries from one seeded batched generation, scored by the
reward classifier, by ROUGE, and by an independent judge (alt-profanity-check: if PPO games the
reward model, the judge does not move with it); on the tiny profile an exact judge adds the
truth the fixture knows (README.md lists every figure).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import stats
from .errors import DetoxError
from .generation import generate, sampling_kwargs
from .layout import check_result_name, check_writable, write_atomically
from .reward import RewardModel, reward_texts
from .settings import Settings

TOXICITY_COLUMNS = ("toxicity", "toxicity_with_prompt")
SCORE_COLUMNS = ("reward", "judge", "rouge1", "rouge2", "rougeL", "length_tokens")
# The exact judge's figures: (column, the rows it is measured on, or None for all)
EXACT_FIGURES = {"insult": ("insult", None), "missed_insult": ("missed_insult", None),
                 "facts_kept": ("facts_kept", None),
                 "rouge1_clean_reference": ("rouge1", "reference_clean"),
                 "name_kept": ("name_kept", "reference_has_name")}


@dataclass
class Evaluation:
    per_sample: pd.DataFrame
    """one row per (prompt, sample): id, prompt, sample, summary, reference and the scores"""
    aggregates: dict
    """per metric: n, k, mean, std, 95% interval; for toxicities also probability and EMT"""
    record: dict = field(default_factory=dict)
    """what it was made with (`settings`), the split sizes (`data`) and the evaluated
    `dialogues` by id: what the report needs, without rebuilding the dataset"""


def judge_scores(texts) -> np.ndarray:
    """alt-profanity-check's probability that each text is offensive (runs offline)."""
    from profanity_check import predict_prob

    texts = list(texts)
    return predict_prob(texts) if texts else np.zeros(0)


# Stated wherever ROUGE is shown: `evaluate`'s rouge defaults to no stemmer, and on inflected
# text ("books" / "booked") the two configurations differ a lot.
ROUGE_CONFIGURATION = ("ROUGE-1, ROUGE-2 and ROUGE-L (longest common subsequence over the whole "
                       "summary, not rougeLsum), F-measure, from rouge_score 0.1.2 with the "
                       "Porter stemmer on (use_stemmer=True), against the one reference summary")


def rouge_scores(summaries, references) -> pd.DataFrame:
    """ROUGE as ROUGE_CONFIGURATION says."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rows = [{name: s.fmeasure for name, s in scorer.score(ref, out).items()}
            for out, ref in zip(summaries, references, strict=True)]
    return pd.DataFrame(rows, columns=["rouge1", "rouge2", "rougeL"])


def per_prompt(per_sample: pd.DataFrame, column: str) -> np.ndarray:
    """[prompts, k] array of one column, rows in prompt order."""
    table = per_sample.pivot(index="prompt", columns="sample", values=column).sort_index()
    return table.to_numpy(dtype=float)


def aggregate(per_sample: pd.DataFrame, seed: int = 0) -> dict:
    result = {c: stats.summarise_toxicity(per_prompt(per_sample, c), seed)
              for c in TOXICITY_COLUMNS}
    result.update({c: stats.summarise(per_prompt(per_sample, c), seed) for c in SCORE_COLUMNS})
    if "insult" in per_sample:
        for name, (column, subset) in EXACT_FIGURES.items():
            rows = per_sample[per_sample[subset]] if subset else per_sample
            if len(rows):
                result[name] = stats.summarise(per_prompt(rows, column), seed)
    return result


def score_summaries(rows, summaries, lengths, reward_model: RewardModel, k: int,
                    progress: bool = True, exact: bool = False) -> pd.DataFrame:
    """The per-sample table for summaries laid out prompt by prompt, k samples each; with
    `exact`, the tiny world's exact judge too."""
    queries = np.repeat(list(rows["query"]), k)
    references = np.repeat(list(rows["summary"]), k)
    rewards, toxicity = reward_model.score(summaries, progress=progress)
    with_prompt = reward_model.toxicity(reward_texts(queries, summaries, "prompt+summary"))
    table = pd.DataFrame(dict(
        id=np.repeat(list(rows["id"]), k), prompt=np.repeat(np.arange(rows.num_rows), k),
        sample=np.tile(np.arange(k), rows.num_rows), summary=summaries, reference=references,
        # float64, so that the saved CSV reads back exactly
        reward=rewards.double().numpy(), toxicity=toxicity.double().numpy(),
        toxicity_with_prompt=with_prompt.double().numpy(),
        judge=judge_scores(summaries), length_tokens=lengths))
    parts = [table, rouge_scores(summaries, references)]
    if exact:
        from .tiny.judge import exact_judge

        parts.append(exact_judge(summaries, references, table["toxicity"]))
    return pd.concat(parts, axis=1)


def evaluate_policy(settings: Settings, model, tokenizer, reward_model: RewardModel, split, *,
                    name: str | None = None, sizes: dict | None = None,
                    progress: bool = True) -> Evaluation:
    """Generate k summaries per prompt of `split`, score them, and save under `name` if given.
    `sizes` (the train and test split sizes) is kept in the record for the report."""
    if name:  # before the long work, not after it
        check_result_name(name)
        check_writable(settings.layout.eval_dir)
    if split.num_rows == 0:
        raise DetoxError("The evaluation split is empty.")
    first_only = 0 < settings.eval_size < split.num_rows  # eval_size 0: the whole split
    rows = split.select(range(settings.eval_size)) if first_only else split
    k = settings.eval_samples_per_prompt
    prompt_ids = [ids for ids in rows["input_ids"] for _ in range(k)]
    # Unless configured, the measured sweet spot: 1024 on a GPU (H200: 0.007 s per summary of
    # 100 tokens, against 0.11 s at 64), 16 on the CPU (memory, not speed, limits).
    on_gpu = next(model.parameters()).device.type == "cuda"
    batch_size = settings.eval_batch_size or (1024 if on_gpu else 16)
    generated = generate(model, tokenizer, prompt_ids, batch_size=batch_size, seed=settings.seed,
                         progress=progress, desc="summaries", cache=settings.generation_cache,
                         **sampling_kwargs(settings, settings.eval_max_new_tokens))
    special = set(tokenizer.all_special_ids)
    lengths = [sum(int(t) not in special for t in ids) for ids in generated.token_ids]
    per_sample = score_summaries(rows, generated.texts, lengths, reward_model, k, progress,
                                 exact=settings.profile == "tiny")
    record = dict(settings=made_with(settings), data=sizes or dict(test=split.num_rows),
                  dialogues=dict(zip(rows["id"], rows["dialogue"], strict=True)))
    evaluation = Evaluation(per_sample, aggregate(per_sample, settings.seed), record)
    if name:
        save_evaluation(settings, name, evaluation)
    return evaluation


def made_with(settings: Settings) -> dict:
    """The settings that shape an evaluation's numbers."""
    return dict(profile=settings.profile, policy_model=settings.policy_model,
                instruct_adapter=settings.instruct_adapter, reward_model=settings.reward_model,
                samples_per_prompt=settings.eval_samples_per_prompt,
                max_new_tokens=settings.eval_max_new_tokens, seed=settings.seed)


def save_evaluation(settings: Settings, name: str, evaluation: Evaluation) -> None:
    """The per-summary table and the record, each replaced in one go (never half written)."""
    layout = settings.layout
    write_atomically(layout.eval_table(name), evaluation.per_sample.to_csv(index=False))
    write_atomically(layout.eval_record(name), json.dumps(
        dict(evaluation.record, aggregates=evaluation.aggregates), indent=2))


def load_evaluation(settings: Settings, name: str) -> Evaluation:
    layout = settings.layout
    if not layout.eval_table(name).exists():
        raise DetoxError(f"No saved evaluation {name!r} in {layout.eval_dir}: run notebook "
                         "03_baseline_eval.ipynb or `python -m detox_helpers evaluate` first.")
    per_sample = pd.read_csv(layout.eval_table(name), keep_default_na=False)
    record = json.loads(layout.eval_record(name).read_text())
    return Evaluation(per_sample, record.pop("aggregates"), record)


def toxicity_figure_names(k: int | str) -> dict:
    """Unambiguous names of the toxicity figures; k in those that grow with it (the
    literature, RealToxicityPrompts and its successors, uses k = 25). `k="{k}"` gives
    templates to fill later (compare.METRICS)."""
    return {"toxic_share": "share of toxic summaries (>= 0.5; evaluate's toxicity_ratio)",
            "prompt_toxicity_probability":
                f"toxicity probability (RealToxicityPrompts, >= 1 of k={k} toxic)",
            "expected_max_toxicity": f"expected maximum toxicity (k={k})"}


def aggregate_table(aggregates: dict) -> pd.DataFrame:
    """One row per figure: value and its 95% interval, for notebooks and the report."""
    rows = []
    for metric, figures in aggregates.items():
        rows.append(dict(metric=f"{metric} (mean)", value=figures["mean"],
                         low=figures["mean_low"], high=figures["mean_high"], n=figures["n"]))
        for extra, name in toxicity_figure_names(figures["k"]).items():
            if extra in figures:
                rows.append(dict(metric=f"{metric}: {name}", value=figures[extra],
                                 low=figures[f"{extra}_low"], high=figures[f"{extra}_high"],
                                 n=figures["n"]))
    return pd.DataFrame(rows).set_index("metric")


def run_evaluation(settings: Settings, name: str | None = "baseline", progress: bool = True):
    """Evaluate the starting policy (instruct adapter merged) on the test split and save the
    results as `name`: notebook 05 when notebook 03's baseline is missing or stale, the seeds
    benchmark and the tiny world's checks (notebook 03 shows these steps one by one)."""
    from .data import load_splits
    from .models import load_policy, pick_device
    from .reward import load_reward_model

    if name:
        check_result_name(name)
        check_writable(settings.layout.eval_dir)
    splits = load_splits(settings)
    device = pick_device(settings)
    model, tokenizer = load_policy(settings, device)
    sizes = {split: splits[split].num_rows for split in ("train", "test")}
    return evaluate_policy(settings, model, tokenizer, load_reward_model(settings, device),
                           splits["test"], name=name, sizes=sizes, progress=progress)
