"""Before against after, on the same test prompts with the same sampling seeds: each figure
paired by prompt, with a 95% bootstrap interval of the difference; best-of-k, methods and runs
side by side. Tables key each figure by its `Metric.key`; `labelled` puts the display labels
on a table last, where it is shown. Their verdicts in words: verdicts.py.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from . import stats, words
from .errors import DetoxError
from .evaluation import METRICS, Evaluation, figure_values, label

DISPLAY_PRECISION = 0.0005  # what three decimals can show
HEADLINE = "toxicity"
JUDGE = "judge"


def metric_of(key: str, metrics=METRICS):
    return next(metric for metric in metrics if metric.key == key)


def labelled(table: pd.DataFrame, k: int, metrics=METRICS) -> pd.DataFrame:
    """The table with its figures' keys (rows or columns) shown as their labels."""
    names = {metric.key: label(metric, k) for metric in metrics}
    return table.rename(index=names, columns=names)


def check_pairing(before: Evaluation, after: Evaluation) -> None:
    ids = [e.per_sample.drop_duplicates("prompt")["id"].tolist() for e in (before, after)]
    samples = [e.samples_per_prompt for e in (before, after)]
    if ids[0] != ids[1] or samples[0] != samples[1]:
        raise DetoxError("The before and after evaluations differ in prompts or samples per "
                         "prompt; evaluate both with the same settings (eval_size, "
                         "eval_samples_per_prompt, seed, dataset).")


def comparison_table(before: Evaluation, after: Evaluation, seed: int = 0) -> pd.DataFrame:
    """One row per figure (indexed by its key): before, after, after - before with its paired
    95% interval, whether a change worth reporting was shown, and what the verdicts need."""
    check_pairing(before, after)
    k, rows = before.samples_per_prompt, []
    for metric in before.metrics:
        first, second = (figure_values(e.per_sample, metric) for e in (before, after))
        if first is None or second is None:
            continue
        paired = stats.paired_difference(first, second, seed)
        smallest = max(metric.smallest, DISPLAY_PRECISION)
        excludes = words.excludes_zero(paired["low"], paired["high"])  # at three decimals
        shown = excludes and abs(paired["difference"]) >= smallest
        rows.append(dict(metric=metric.key, before=paired["before"], after=paired["after"],
                         difference=paired["difference"], low=paired["low"], high=paired["high"],
                         change_shown=shown, interval_excludes_zero=excludes,
                         smallest=smallest, better=metric.better, n=paired["n"],
                         label=label(metric, k), role=metric.role,
                         instead_of=metric.instead_of, in_report=metric.in_report))
    return pd.DataFrame(rows).set_index("metric")


def shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def qualitative_table(before: Evaluation, after: Evaluation, rows: int) -> pd.DataFrame:
    """`rows` test dialogues (shortened) with the first sampled summary before and after and the
    reward gain, largest first: half of them the largest gains anywhere in the split (where
    insults went), the rest the first of the others; a judge's `lost` column where it has one."""
    check_pairing(before, after)
    dialogues = before.record.get("dialogues", {})
    first = before.per_sample[before.per_sample["sample"] == 0].reset_index(drop=True)
    second = after.per_sample[after.per_sample["sample"] == 0].reset_index(drop=True)
    table = pd.DataFrame({"id": first["id"],
                          "dialogue": [shorten(dialogues.get(i, "")) for i in first["id"]],
                          "summary before": first["summary"], "summary after": second["summary"],
                          "reward before": first["reward"], "reward after": second["reward"]})
    table["reward gain"] = table["reward after"] - table["reward before"]
    lost = after.judge.lost(first, second) if after.judge and after.judge.lost else None
    if lost is not None:
        table["lost"] = lost
    largest = table.nlargest(rows // 2, "reward gain").index
    others = table.index.difference(largest)[:rows - len(largest)]
    chosen = table.loc[largest.append(others)]
    return chosen.sort_values("reward gain", ascending=False, kind="stable").reset_index(drop=True)


# --- is PPO better than choosing? ---

def best_of_k(evaluation: Evaluation) -> pd.DataFrame:
    """For each prompt, the one sample (of k) that the reward model likes best: reranking the
    policy's own samples, no training."""
    table = evaluation.per_sample
    best = table.loc[table.groupby("prompt")["reward"].idxmax()]
    return best.sort_values("prompt").reset_index(drop=True)


def best_of_k_kl(k: int) -> float:
    """log k - (k - 1) / k: an upper bound on the KL (nats) from the policy to its best-of-k
    distribution (Stiennon et al. 2020 state it as the KL; Beirami et al. 2024 show it is a
    bound; Gao et al. 2022 compare RL against best-of-n at equal KL)."""
    return math.log(k) - (k - 1) / k


def chosen_values(best: pd.DataFrame, metric) -> np.ndarray:
    """A figure's per-prompt values among the best-of-k choices (indexed by prompt)."""
    chosen = best[best[metric.subset].astype(bool)] if metric.subset else best
    return chosen.sort_index()[metric.column].to_numpy(dtype=float)


def best_of_k_table(before: Evaluation, after: Evaluation, seed: int = 0) -> pd.DataFrame:
    """Baseline (mean of k samples), best-of-k (one sample) and PPO after (mean of k), with paired
    intervals of best-of-k - baseline and after - best-of-k; by figure key, details left out."""
    check_pairing(before, after)
    best = best_of_k(before).set_index("prompt")
    rows = []
    for metric in before.metrics:
        baseline, trained = (figure_values(e.per_sample, metric) for e in (before, after))
        if metric.role == "detail" or baseline is None or trained is None:
            continue
        chosen = chosen_values(best, metric)
        gain = stats.paired_difference(baseline, chosen, seed)
        ppo = stats.paired_difference(chosen, trained, seed)
        rows.append({"metric": metric.key, "baseline": baseline.mean(),
                     "best-of-k": chosen.mean(), "PPO after": trained.mean(),
                     "best-of-k - baseline": gain["difference"],
                     "low (best-of-k)": gain["low"], "high (best-of-k)": gain["high"],
                     "PPO - best-of-k": ppo["difference"], "low (PPO)": ppo["low"],
                     "high (PPO)": ppo["high"], "n": gain["n"]})
    return pd.DataFrame(rows).set_index("metric")


# --- ways to detoxify side by side (notebook 06) ---

def kept_metrics(metrics) -> list:
    """What a detox must keep (Metric.role "kept"), the figures the methods table shows."""
    return [metric for metric in metrics if metric.role == "kept"]


def methods_table(before: Evaluation, trained: dict[str, Evaluation],
                  seed: int = 0) -> pd.DataFrame:
    """The starting policy, best-of-k and each trained policy (`trained`: name -> evaluation on
    the same prompts and seeds) side by side: toxicity, its change from the start with a paired
    95% interval, and the kept figures the evaluations hold (columns named by their keys)."""
    best = best_of_k(before).set_index("prompt")
    # method -> a figure's per-prompt values
    methods = {"starting policy": lambda metric: figure_values(before.per_sample, metric),
               f"best-of-{before.samples_per_prompt}": lambda metric: chosen_values(best, metric)}
    for name, evaluation in trained.items():
        check_pairing(before, evaluation)
        methods[name] = lambda metric, e=evaluation: figure_values(e.per_sample, metric)
    toxicity = metric_of(HEADLINE)
    kept = [m for m in kept_metrics(before.metrics) if methods["starting policy"](m) is not None]
    rows = []
    for name, values in methods.items():
        change = stats.paired_difference(methods["starting policy"](toxicity), values(toxicity),
                                         seed)
        rows.append({"method": name, "toxicity": change["after"],
                     "change": change["difference"], "low": change["low"],
                     "high": change["high"], **{m.key: values(m).mean() for m in kept}})
    return pd.DataFrame(rows).set_index("method")


def samples_of(best_of_k_name: str) -> int:
    """k from methods_table's "best-of-k" row name."""
    return int(best_of_k_name.rpartition("-")[2])


# --- runs side by side ---

KL_STEPS = 10
KL_MEANING = (f"trl's objective/kl: summed over a summary's tokens, averaged over the batch and "
              f"the last {KL_STEPS} steps")


def final_kl(training: pd.DataFrame) -> float:
    """PPO's KL from the starting policy, the one KL figure the lab reports (KL_MEANING)."""
    return float(training["kl"].tail(KL_STEPS).mean())


def runs_table(settings, names: list[str], judge=None) -> pd.DataFrame:
    """Named runs (setting run_name; "" is the unnamed run) side by side: each figure after
    training with its change (paired with the run's own baseline), and the final KL."""
    from .checkpoints import training_record
    from .evaluation import load_evaluation

    rows = []
    for name in names:
        run_settings = dataclasses.replace(settings, run_name=name)
        steps = training_record(run_settings.layout)["steps"]
        table = comparison_table(*(load_evaluation(run_settings, which, judge)
                                   for which in ("baseline", "detoxified")), settings.seed)
        row = {"run": name or "(unnamed)", "steps": steps,
               f"KL, last {KL_STEPS} steps": final_kl(pd.read_csv(run_settings.layout.stats_file))}
        for figure in table[table["role"] != "detail"].itertuples():  # labels on the page
            row[f"{figure.label}: after"] = figure.after
            row[f"{figure.label}: change"] = figure.difference
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")
