"""The comparisons' verdicts in words (words.py's rules: the verb from the printed sign, "shown"
only where the printed interval leaves zero out), filled from compare.py's tables."""

from __future__ import annotations

import pandas as pd

from . import stats, words
from .compare import HEADLINE, JUDGE, best_of_k_kl, kept_metrics, metric_of, samples_of
from .evaluation import Evaluation, figure_values, label

# kind_of's answer -> how the verdict introduces the kept figures of that kind
KEPT_GROUPS = {"cost": "What it cost", "gain": "What it gained",
               "change": "Neither better nor worse",
               "too small": "Too small to matter", "not shown": "No change shown"}


def kind_of(row) -> str:
    return words.kind_of_change(row.difference, row.low, row.high, row.better, row.smallest)


def figure_in_words(table: pd.DataFrame, key: str, name: str | None = None) -> str:
    """The figure's change in words, named `name` (default: its label)."""
    row = table.loc[key]
    return words.change(name or row.label, row.before, row.after, row.difference, row.low,
                        row.high, kind_of(row))


def kept_figures(table: pd.DataFrame) -> list[str]:
    """The comparison's kept figures (role "kept"), each in its place, a figure that stands in
    for another (instead_of) in the place of the one it replaces."""
    kept = table[table["role"] == "kept"]
    stand_ins = {row.instead_of: key for key, row in kept.iterrows() if row.instead_of}
    return list(dict.fromkeys(stand_ins.get(key, key) for key in kept.index))


def kept_in_words(table: pd.DataFrame, kl: float) -> list[str]:
    """A sentence per kind of change (costs first), naming every kept figure; PPO's KL is a
    cost always."""
    grouped = {kind: [] for kind in KEPT_GROUPS}
    for key in kept_figures(table):
        grouped[kind_of(table.loc[key])].append(figure_in_words(table, key))
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
    """The run in one paragraph: what fell, how sure, every kept figure as a cost, a gain or no
    change, and whether training beat choosing. `seeds`: what the seed table
    (benchmarks/tiny_seeds.py) knows of these settings: `seeds` (the list), `ppo_below_best_of_k`
    and `claims` (claim -> seeds where it held), said where a claim held in fewer than all."""
    top = table.loc[HEADLINE]
    share = words.share_of_start(top.before, top.after) if kind_of(top) in ("gain", "cost") else ""
    text = ["Each change is after - before [its paired 95% interval]. The reward model's "
            + figure_in_words(table, HEADLINE, "toxicity") + words.narrow(top.low, top.high)
            + (f", {share}." if share else ".")]
    if JUDGE in table.index:
        text.append(f"The {figure_in_words(table, JUDGE)}.")
    text += kept_in_words(table, kl)
    text.append(against_best_of_k(choosing, k, seeds))
    fragile = [f"{claim} ({held} of {len(seeds['seeds'])})"
               for claim, held in (seeds or {}).get("claims", {}).items()
               if held < len(seeds["seeds"])]
    if fragile:
        text.append("Claims that held in fewer than all of the seed table's seeds: "
                    + "; ".join(fragile) + ".")
    return " ".join(text)


def methods_verdict(table: pd.DataFrame, trained: dict[str, Evaluation], seed: int = 0) -> str:
    """Two trained methods of methods_table (`trained`, in order) in one paragraph: each against
    the start, then the second against the first, paired by prompt."""
    (first, one), (second, other) = trained.items()
    versus = stats.paired_difference(*(figure_values(e.per_sample, metric_of(HEADLINE))
                                       for e in (one, other)), seed)
    labels = {m.key: label(m, one.samples_per_prompt) for m in kept_metrics(one.metrics)}
    return methods_in_words(table, first, second, versus, labels)


def method_in_words(table: pd.DataFrame, name: str, labels: dict) -> str:
    """One method against the starting policy: its toxicity and every kept figure (`labels`:
    the kept figures' keys -> labels)."""
    start, row = table.iloc[0], table.loc[name]
    surely = ("surely" if words.excludes_zero(row.low, row.high)
              else "not surely (its interval reaches zero)")
    share = words.share_of_start(start.toxicity, row.toxicity) if words.printed(row.change) else ""
    kept = [f"{shown} {words.moved(start[key], row[key])}" for key, shown in labels.items()
            if key in table]
    return (f"{name} {words.direction(row.change, words.LOWERS)} the toxicity "
            f"{words.number(start.toxicity)} -> {words.number(row.toxicity)} "
            f"({words.signed(row.change)} {words.interval(row.low, row.high)}, {surely})"
            f"{words.narrow(row.low, row.high)}{f', {share}' if share else ''}"
            + "".join(f"; {said}" for said in kept))


def methods_in_words(table: pd.DataFrame, first: str, second: str, versus: dict,
                     labels: dict) -> str:
    """methods_verdict's paragraph; `versus`: the second method's toxicity minus the first's
    (stats.paired_difference)."""
    low, high = versus["low"], versus["high"]
    which = (f"{second} ends less toxic than {first}" if words.printed(high) < 0 else
             f"{first} ends less toxic than {second}" if words.printed(low) > 0 else
             f"neither {first} nor {second} is shown to end less toxic")
    best = table.index[1]
    kept = [words.compared(shown, table.loc[second, key], table.loc[first, key], first)
            for key, shown in labels.items() if key in table]
    return (f"{method_in_words(table, first, labels)}. "
            f"{method_in_words(table, second, labels)}. Without "
            f"training, {best} reached {words.number(table.loc[best, 'toxicity'])} "
            f"({words.kl_bound(best_of_k_kl(samples_of(best)))}, the bound log k - (k-1)/k). "
            f"{second} minus {first}: "
            f"{words.signed(versus['difference'])} {words.interval(low, high)}, so {which}"
            f"{words.narrow(low, high)}."
            + (f" {second}'s kept figures against {first}'s: {'; '.join(kept)}." if kept
               else ""))
