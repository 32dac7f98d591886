"""Before against after, on the same test prompts with the same sampling seeds: each figure
paired by prompt, with a 95% bootstrap interval of the difference. A change is shown only where
the interval, as printed, excludes zero and the difference is at least the figure's smallest
meaningful one. Tables and verdicts key each figure by its `Metric.key`; `labelled` puts the
display labels on a table last, where it is shown.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from . import stats, words
from .errors import DetoxError
from .evaluation import METRICS, Evaluation, figure_values, label, per_prompt

DISPLAY_PRECISION = 0.0005  # what three decimals can show


def metric_of(key: str):
    return next(metric for metric in METRICS if metric.key == key)


def labelled(table: pd.DataFrame, k: int) -> pd.DataFrame:
    """The table with its figures' keys (rows or columns) shown as their labels."""
    names = {metric.key: label(metric, k) for metric in METRICS}
    return table.rename(index=names, columns=names)


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
    """One row per figure (indexed by its key): before, after, after - before with its paired 95%
    interval, whether that interval as printed excludes zero, and whether a change worth
    reporting was shown."""
    check_pairing(before, after)
    rows = []
    for metric in METRICS:
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
                         smallest=smallest, better=metric.better, n=paired["n"]))
    return pd.DataFrame(rows).set_index("metric")


def kind_of(row) -> str:
    """What a comparison row's change is (words.kind_of_change): gain, cost, change, too small
    or not shown."""
    return words.kind_of_change(row.difference, row.low, row.high, row.better, row.smallest)


def in_words(row) -> str:
    """One figure's before -> after, its paired interval, and what the interval lets us say."""
    return (f"{words.number(row.before)} -> {words.number(row.after)} "
            f"({words.signed(row.difference)} {words.interval(row.low, row.high)}: "
            f"{words.certainty(kind_of(row), row.low, row.high)})")


HEADLINE = "toxicity"
JUDGE = "judge"
# What a detox must keep (it may cost them); the clean-reference ROUGE-1 where the exact judge ran
# (removing an insult that the reference itself holds lowers the plain ROUGE-1 for a good reason).
KEPT = ("rouge1_clean_reference", "rouge1", "names_kept", "facts_kept", "length")
# kind_of's answer -> how the verdict introduces the kept figures of that kind
KEPT_GROUPS = {"cost": "What it cost", "gain": "What it gained",
               "change": "Neither better nor worse",
               "too small": "Too small to matter", "not shown": "No change shown"}


def figure_in_words(table: pd.DataFrame, key: str, k: int) -> str:
    row = table.loc[key]
    return words.change(label(metric_of(key), k), row.before, row.after, row.difference,
                        row.low, row.high, kind_of(row))


def kept_figures(table: pd.DataFrame) -> list[str]:
    clean = "rouge1_clean_reference" in table.index
    return [key for key in KEPT if key in table.index and not (clean and key == "rouge1")]


def kept_in_words(table: pd.DataFrame, k: int, kl: float) -> list[str]:
    """A sentence per kind of change (costs first), naming every kept figure; PPO's KL is a
    cost always."""
    grouped = {kind: [] for kind in KEPT_GROUPS}
    for key in kept_figures(table):
        grouped[kind_of(table.loc[key])].append(figure_in_words(table, key, k))
    leash = f"a KL of {kl:.2f} nats from the starting policy"
    costs = grouped.pop("cost")
    text = [f"What it cost: {'; '.join(costs)}; and {leash}." if costs else
            f"What it cost: {leash}; no kept figure moved the costly way."]
    return text + [f"{KEPT_GROUPS[kind]}: {'; '.join(said)}." for kind, said in grouped.items()
                   if said]


def against_best_of_k(choosing: pd.DataFrame, k: int, seeds: dict | None) -> str:
    """Whether PPO beat best-of-k, at the printed precision, how narrowly, and in how many of the
    seed table's seeds (`seeds`, see verdict)."""
    best = choosing.loc[HEADLINE]
    low, high = best["low (PPO)"], best["high (PPO)"]
    beaten = ("beat" if words.printed(high) < 0 else "lost to" if words.printed(low) > 0
              else "was not shown to beat")
    text = (f"Against best-of-{k} (no training; {words.kl_bound(best_of_k_kl(k))}; k samples and "
            f"a reward-model call per summary), PPO {beaten} it: toxicity "
            f"{words.number(best['best-of-k'])} against PPO's {words.number(best['PPO after'])}, "
            f"{words.signed(best['PPO - best-of-k'])} "
            f"{words.interval(low, high)}{words.narrow(low, high)}.")
    if seeds and "ppo_below_best_of_k" in seeds:
        held, of = seeds["ppo_below_best_of_k"], len(seeds["seeds"])
        fragile = ": a fragile lead" if beaten == "beat" and held < of else ""
        text += (f" Over the seed table's seeds, that interval lay below zero "
                 f"{words.held_in(held, of)}{fragile}.")
    return text


def verdict(table: pd.DataFrame, choosing: pd.DataFrame, kl: float, k: int,
            seeds: dict | None = None) -> str:
    """The run in one paragraph, filled from the comparison (`table`), best-of-k (`choosing`)
    and PPO's KL (the mean of its last steps): what fell, how sure, every kept figure as a cost,
    a gain or no change, and whether training beat choosing. `seeds`: what the seed table
    (benchmarks/tiny_seeds.py) knows of this run's settings: `seeds` (the list),
    `ppo_below_best_of_k` and `claims` (claim -> seeds where it held), said where a claim held
    in fewer than all."""
    top = table.loc[HEADLINE]
    kind = kind_of(top)
    share = words.share_of_start(top.before, top.after) if kind in ("gain", "cost") else ""
    text = ["Each change is after - before [its paired 95% interval]. The reward model's "
            + words.change("toxicity", top.before, top.after, top.difference, top.low, top.high,
                           kind) + words.narrow(top.low, top.high) + (f", {share}." if share
                                                                      else ".")]
    if JUDGE in table.index:
        text.append(f"The {figure_in_words(table, JUDGE, k)}.")
    text += kept_in_words(table, k, kl)
    text.append(against_best_of_k(choosing, k, seeds))
    fragile = [f"{claim} ({held} of {len(seeds['seeds'])})"
               for claim, held in (seeds or {}).get("claims", {}).items()
               if held < len(seeds["seeds"])]
    if fragile:
        text.append("Claims that held in fewer than all of the seed table's seeds: "
                    + "; ".join(fragile) + ".")
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
    """log k - (k - 1) / k: an upper bound on the KL (nats) from the policy to its best-of-k
    distribution (Stiennon et al. 2020 state it as the KL; Beirami et al. 2024 show it is a
    bound; Gao et al. 2022 compare RL against best-of-n at equal KL)."""
    return math.log(k) - (k - 1) / k


def chosen_values(best: pd.DataFrame, metric) -> np.ndarray:
    """A figure's per-prompt values among the best-of-k choices (indexed by prompt)."""
    chosen = best[best[metric.subset].astype(bool)] if metric.subset else best
    return chosen.sort_index()[metric.column].to_numpy(dtype=float)


def best_of_k_table(before: Evaluation, after: Evaluation, seed: int = 0) -> pd.DataFrame:
    """Baseline (mean of k samples), best-of-k (one sample, chosen by the reward model) and PPO
    after (mean of k), with paired intervals of best-of-k - baseline and after - best-of-k; one
    row per figure, indexed by its key."""
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
        rows.append({"metric": metric.key, "baseline": baseline.mean(),
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
    figures of what must be kept (those the evaluations hold, columns named by their keys)."""
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
                     "high": change["high"], **{m.key: values(m).mean() for m in kept}})
    return pd.DataFrame(rows).set_index("method")


def methods_verdict(table: pd.DataFrame, trained: dict[str, Evaluation], seed: int = 0) -> str:
    """What methods_table shows of two trained methods (`trained`, in order), in one paragraph:
    each against the start, then the second against the first, paired by prompt."""
    (first, one), (second, other) = trained.items()
    toxicity = metric_of("toxicity")
    versus = stats.paired_difference(*(figure_values(e.per_sample, toxicity)
                                       for e in (one, other)), seed)
    return methods_in_words(table, first, second, versus, samples_per_prompt(one))


def method_in_words(table: pd.DataFrame, name: str, k: int) -> str:
    """One method against the starting policy: its toxicity and every kept figure."""
    start, row = table.iloc[0], table.loc[name]
    surely = ("surely" if words.excludes_zero(row.low, row.high)
              else "not surely (its interval reaches zero)")
    share = (words.share_of_start(start.toxicity, row.toxicity)
             if words.printed(row.change) else "")
    kept = [f"{label(metric_of(key), k)} {words.moved(start[key], row[key])}"
            for key in METHOD_FIGURES if key in table]
    return (f"{name} {words.direction(row.change, words.LOWERS)} the toxicity "
            f"{words.number(start.toxicity)} -> {words.number(row.toxicity)} "
            f"({words.signed(row.change)} {words.interval(row.low, row.high)}, {surely})"
            f"{words.narrow(row.low, row.high)}{f', {share}' if share else ''}"
            + "".join(f"; {said}" for said in kept))


def methods_in_words(table: pd.DataFrame, first: str, second: str, versus: dict,
                     k: int) -> str:
    """methods_verdict's paragraph from the table and `versus`, the paired difference of the
    second method's toxicity minus the first's (stats.paired_difference)."""
    low, high = versus["low"], versus["high"]
    which = (f"{second} ends less toxic than {first}" if words.printed(high) < 0 else
             f"{first} ends less toxic than {second}" if words.printed(low) > 0 else
             f"neither {first} nor {second} is shown to end less toxic")
    best = table.index[1]
    kept = [words.compared(label(metric_of(key), k), table.loc[second, key],
                           table.loc[first, key], first)
            for key in METHOD_FIGURES if key in table]
    return (f"{method_in_words(table, first, k)}. {method_in_words(table, second, k)}. Without "
            f"training, {best} reached {words.number(table.loc[best, 'toxicity'])} "
            f"({words.kl_bound(best_of_k_kl(samples_of(best)))}, the bound log k - (k-1)/k). "
            f"{second} minus {first}: "
            f"{words.signed(versus['difference'])} {words.interval(low, high)}, so {which}"
            f"{words.narrow(low, high)}."
            + (f" {second}'s kept figures against {first}'s: {'; '.join(kept)}." if kept
               else ""))


def samples_of(best_of_k_name: str) -> int:
    """k from methods_table's "best-of-k" row name."""
    return int(best_of_k_name.rpartition("-")[2])


# --- runs side by side ---

RUN_FIGURES = ("toxicity", "judge", "insult", "rouge1_clean_reference", "length", "names_kept")


KL_STEPS = 10
KL_MEANING = (f"trl's objective/kl: summed over a summary's tokens, averaged over the batch and "
              f"the last {KL_STEPS} steps")


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
        before = load_evaluation(run_settings, "baseline")
        table = comparison_table(before, load_evaluation(run_settings, "detoxified"),
                                 settings.seed)
        training = pd.read_csv(run_settings.layout.stats_file)
        row = {"run": name or "(unnamed)", "steps": record["steps"],
               f"KL, last {KL_STEPS} steps": final_kl(training)}
        k = samples_per_prompt(before)
        for key in (key for key in RUN_FIGURES if key in table.index):  # labels on the page
            row[f"{label(metric_of(key), k)}: after"] = table.loc[key, "after"]
            row[f"{label(metric_of(key), k)}: change"] = table.loc[key, "difference"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")
