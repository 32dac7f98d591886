"""Before against after, on the same test prompts with the same sampling seeds: each figure
paired by prompt, with a 95% bootstrap interval of the difference. A change is shown only where
the interval excludes zero and the difference is at least the figure's smallest meaningful one.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from . import stats
from .errors import DetoxError
from .evaluation import METRICS, Evaluation, figure_values, label, per_prompt

DISPLAY_PRECISION = 0.0005  # what three decimals can show


def check_pairing(before: Evaluation, after: Evaluation) -> None:
    ids = [e.per_sample.drop_duplicates("prompt")["id"].tolist() for e in (before, after)]
    samples = [samples_per_prompt(e) for e in (before, after)]
    if ids[0] != ids[1] or samples[0] != samples[1]:
        raise DetoxError("The before and after evaluations differ in prompts or samples per "
                         "prompt; evaluate both with the same settings (eval_size, "
                         "eval_samples_per_prompt, seed, dataset).")


def samples_per_prompt(evaluation: Evaluation) -> int:
    return int(evaluation.per_sample.groupby("prompt").size().max())


def comparison_table(before: Evaluation, after: Evaluation, seed: int = 0) -> pd.DataFrame:
    """One row per figure: before, after, after - before with its paired 95% interval, and
    whether a change worth reporting was shown."""
    check_pairing(before, after)
    k = samples_per_prompt(before)
    rows = []
    for metric in METRICS:
        first, second = (figure_values(e.per_sample, metric) for e in (before, after))
        if first is None or second is None:
            continue
        paired = stats.paired_difference(first, second, seed)
        smallest = max(metric.smallest, DISPLAY_PRECISION)
        shown = paired["excludes_zero"] and abs(paired["difference"]) >= smallest
        rows.append(dict(metric=label(metric, k), before=paired["before"], after=paired["after"],
                         difference=paired["difference"], low=paired["low"], high=paired["high"],
                         change_shown=shown, interval_excludes_zero=paired["excludes_zero"],
                         smallest=smallest, better=metric.better, n=paired["n"]))
    return pd.DataFrame(rows).set_index("metric")


def in_words(row) -> str:
    """One figure's before -> after, its paired interval, and what the interval lets us say."""
    said = (": a change shown" if row.change_shown else ": too small to matter"
            if row.interval_excludes_zero else " includes zero")
    return (f"{row.before:.3f} -> {row.after:.3f} ({row.difference:+.3f} "
            f"[{row.low:+.3f}, {row.high:+.3f}]{said})")


HEADLINE = "toxicity, summary alone (mean)"
JUDGE = "independent judge (alt-profanity-check)"
# What a detox may cost; the clean-reference ROUGE-1 where the exact judge ran (removing an
# insult that the reference itself holds lowers the plain ROUGE-1 for a good reason).
COSTS = ("ROUGE-1, prompts with a clean reference", "ROUGE-1", "names of the reference kept",
         "facts of the reference kept", "summary length (tokens)")


def verdict(table: pd.DataFrame, choosing: pd.DataFrame, kl: float, k: int) -> str:
    """The run in one paragraph, filled from the comparison (`table`), best-of-k (`choosing`)
    and PPO's KL (the mean of its last steps): what fell, how sure, what it cost, and
    whether training beat choosing."""
    top = table.loc[HEADLINE]
    moved = ("fell" if top.difference < 0 else "rose") if top.change_shown else "did not move"
    text = ["Each change is after - before [its paired 95% interval]. The reward model's "
            f"toxicity {moved}: {in_words(top)}"
            + (f", {-top.difference / top.before:.0%} of where it started." if top.before
               and top.change_shown else ".")]
    if JUDGE in table.index:
        text.append(f"The independent judge: {in_words(table.loc[JUDGE])}.")
    costs = [name for name in COSTS if name in table.index]
    if COSTS[0] in costs:
        costs.remove("ROUGE-1")
    text.append("What it cost: " + "; ".join(f"{name} {in_words(table.loc[name])}"
                                             for name in costs)
                + f"; and a KL of {kl:.2f} nats from the starting policy.")
    best = choosing.loc[HEADLINE]
    beaten = ("beat" if best["high (PPO)"] < 0 else "lost to" if best["low (PPO)"] > 0
              else "did not beat")
    text.append(f"Against best-of-{k} (no training; {best_of_k_kl(k):.2f} nats of KL, k "
                f"samples and a reward-model call per summary), PPO {beaten} it: toxicity "
                f"{best['best-of-k']:.3f} against PPO's {best['PPO after']:.3f}, a difference of "
                f"{best['PPO - best-of-k']:+.3f} [{best['low (PPO)']:+.3f}, "
                f"{best['high (PPO)']:+.3f}].")
    return " ".join(text)


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def qualitative_table(before: Evaluation, after: Evaluation, rows: int) -> pd.DataFrame:
    """`rows` test dialogues (shortened) with the first sampled summary before and after, their
    rewards and the gain, largest gain first: half of them the prompts with the largest gains
    anywhere in the split (where insults went), the rest the first of the others, in order."""
    check_pairing(before, after)
    dialogues = before.record.get("dialogues", {})
    first = before.per_sample[before.per_sample["sample"] == 0].reset_index(drop=True)
    second = after.per_sample[after.per_sample["sample"] == 0].reset_index(drop=True)
    table = pd.DataFrame({
        "id": first["id"],
        "dialogue": [shorten(dialogues.get(i, "")) for i in first["id"]],
        "summary before": first["summary"], "summary after": second["summary"],
        "reward before": first["reward"], "reward after": second["reward"]})
    table["reward gain"] = table["reward after"] - table["reward before"]
    if "facts_kept" in first:  # the exact judge ran: flag a gain that lost the reference's facts
        lost = [(second["name_kept"] < first["name_kept"]) & first["reference_has_name"],
                second["facts_kept"] < first["facts_kept"]]
        table["lost"] = [", ".join(what for what, yes in zip(("a name", "a fact"), flags,
                                                               strict=True) if yes)
                         for flags in zip(*lost, strict=True)]
    largest = table.nlargest(rows // 2, "reward gain").index
    others = table.index.difference(largest)[:rows - len(largest)]
    chosen = table.loc[largest.append(others)]
    return chosen.sort_values("reward gain", ascending=False, kind="stable").reset_index(drop=True)


def per_prompt_toxicity(before: Evaluation, after: Evaluation) -> tuple[np.ndarray, np.ndarray]:
    """Mean toxicity of each prompt's k summaries, before and after."""
    check_pairing(before, after)
    return (per_prompt(before.per_sample, "toxicity").mean(axis=1),
            per_prompt(after.per_sample, "toxicity").mean(axis=1))


# --- is PPO better than choosing? ---

BEST_OF_K_METRICS = ("toxicity", "judge", "rouge1", "length", "insult", "rouge1_clean_reference")


def best_of_k(evaluation: Evaluation) -> pd.DataFrame:
    """For each prompt, the one sample (of k) that the reward model likes best: reranking the
    policy's own samples, no training."""
    table = evaluation.per_sample
    best = table.loc[table.groupby("prompt")["reward"].idxmax()]
    return best.sort_values("prompt").reset_index(drop=True)


def best_of_k_kl(k: int) -> float:
    """The KL (nats) from the policy to its best-of-k distribution: log k - (k - 1) / k
    (Stiennon et al. 2020; Gao et al. 2022 compare RL against best-of-n at equal KL)."""
    return math.log(k) - (k - 1) / k


def chosen_values(best: pd.DataFrame, metric) -> np.ndarray:
    """A figure's per-prompt values among the best-of-k choices (indexed by prompt)."""
    chosen = best[best[metric.subset].astype(bool)] if metric.subset else best
    return chosen.sort_index()[metric.column].to_numpy(dtype=float)


def best_of_k_table(before: Evaluation, after: Evaluation, seed: int = 0) -> pd.DataFrame:
    """Baseline (mean of k samples), best-of-k (one sample, chosen by the reward model) and PPO
    after (mean of k), with paired intervals of best-of-k - baseline and after - best-of-k."""
    check_pairing(before, after)
    best = best_of_k(before).set_index("prompt")
    rows = []
    for metric in (m for m in METRICS if m.key in BEST_OF_K_METRICS):
        baseline, trained = (figure_values(e.per_sample, metric) for e in (before, after))
        if baseline is None or trained is None:
            continue
        chosen = chosen_values(best, metric)
        gain = stats.paired_difference(baseline, chosen, seed)
        ppo = stats.paired_difference(chosen, trained, seed)
        rows.append({"metric": metric.label, "baseline": baseline.mean(),
                     "best-of-k": chosen.mean(), "PPO after": trained.mean(),
                     "best-of-k - baseline": gain["difference"],
                     "low (best-of-k)": gain["low"], "high (best-of-k)": gain["high"],
                     "PPO - best-of-k": ppo["difference"], "low (PPO)": ppo["low"],
                     "high (PPO)": ppo["high"], "n": gain["n"]})
    return pd.DataFrame(rows).set_index("metric")


# --- ways to detoxify side by side (notebook 06) ---

# ROUGE-1, and on the tiny profile (the exact judge) ROUGE-1 on clean-reference prompts and the
# names and facts of the reference kept
METHOD_FIGURES = ("rouge1", "rouge1_clean_reference", "names_kept", "facts_kept")


def methods_table(before: Evaluation, trained: dict[str, Evaluation],
                  seed: int = 0) -> pd.DataFrame:
    """The starting policy, best-of-k (its own samples reranked by the reward model) and each
    trained policy (`trained`: name -> evaluation on the same prompts and seeds), side by side:
    toxicity with its change from the start and that change's paired 95% interval, then the
    figures of what must be kept (those the evaluations hold)."""
    best = best_of_k(before).set_index("prompt")
    # method -> a figure's per-prompt values
    methods = {"starting policy": lambda metric: figure_values(before.per_sample, metric),
               f"best-of-{samples_per_prompt(before)}": lambda metric: chosen_values(best, metric)}
    for name, evaluation in trained.items():
        check_pairing(before, evaluation)
        methods[name] = lambda metric, e=evaluation: figure_values(e.per_sample, metric)
    toxicity = next(m for m in METRICS if m.key == "toxicity")
    kept = [m for m in METRICS if m.key in METHOD_FIGURES
            and methods["starting policy"](m) is not None]
    rows = []
    for name, values in methods.items():
        change = stats.paired_difference(methods["starting policy"](toxicity), values(toxicity),
                                         seed)
        rows.append({"method": name, "toxicity": change["after"],
                     "change": change["difference"], "low": change["low"],
                     "high": change["high"], **{m.label: values(m).mean() for m in kept}})
    return pd.DataFrame(rows).set_index("method")


def methods_verdict(table: pd.DataFrame, trained: dict[str, Evaluation], seed: int = 0) -> str:
    """What methods_table shows of two trained methods (`trained`, in order), in one paragraph:
    each against the start, then the second against the first, paired by prompt."""
    (first, one), (second, other) = trained.items()
    rouge = next(m.label for m in METRICS if m.key == "rouge1_clean_reference")
    rouge = rouge if rouge in table else "ROUGE-1"
    start = table.iloc[0]

    def said(name):
        row = table.loc[name]
        surely = "surely" if row.high < 0 else "not surely (its interval reaches zero)"
        return (f"{name} lowered the toxicity from {start.toxicity:.3f} to {row.toxicity:.3f} "
                f"({row.change:+.3f} [{row.low:+.3f}, {row.high:+.3f}], {surely}), {rouge} "
                f"{start[rouge]:.3f} -> {row[rouge]:.3f}")
    toxicity = next(m for m in METRICS if m.key == "toxicity")
    versus = stats.paired_difference(*(figure_values(e.per_sample, toxicity)
                                       for e in (one, other)), seed)
    which = (f"{second} ends less toxic than {first}" if versus["high"] < 0 else
             f"{first} ends less toxic than {second}" if versus["low"] > 0 else
             f"neither {first} nor {second} is shown to end less toxic")
    best = table.index[1]
    return (f"{said(first)}; {said(second)}. {best}, without training, reached "
            f"{table.loc[best, 'toxicity']:.3f}. {second} minus {first}: "
            f"{versus['difference']:+.3f} [{versus['low']:+.3f}, {versus['high']:+.3f}], so "
            f"{which}.")


# --- runs side by side ---

RUN_FIGURES = ("toxicity, summary alone (mean)", "independent judge (alt-profanity-check)",
               "insult present (exact judge)", "ROUGE-1, prompts with a clean reference",
               "summary length (tokens)", "names of the reference kept")


KL_STEPS = 10
KL_MEANING = (f"trl's objective/kl, summed over a summary's tokens and averaged over the batch, "
              f"then over the last {KL_STEPS} steps")


def final_kl(training: pd.DataFrame) -> float:
    """PPO's KL from the starting policy, the one KL figure the lab reports (KL_MEANING)."""
    return float(training["kl"].tail(KL_STEPS).mean())


def runs_table(settings, names: list[str]) -> pd.DataFrame:
    """Named runs (setting run_name; "" is the unnamed run) side by side: each figure after
    training with its change, and the KL of the last 10 steps. Each run is compared with its
    own baseline, so the changes are paired within a run."""
    from .checkpoints import training_record
    from .evaluation import load_evaluation

    rows = []
    for name in names:
        run_settings = dataclasses.replace(settings, run_name=name)
        record = training_record(run_settings.layout)
        table = comparison_table(load_evaluation(run_settings, "baseline"),
                                 load_evaluation(run_settings, "detoxified"), settings.seed)
        training = pd.read_csv(run_settings.layout.stats_file)
        row = {"run": name or "(unnamed)", "steps": record["steps"],
               f"KL, last {KL_STEPS} steps": final_kl(training)}
        for figure in (f for f in RUN_FIGURES if f in table.index):
            row[f"{figure}: after"] = table.loc[figure, "after"]
            row[f"{figure}: change"] = table.loc[figure, "difference"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")
