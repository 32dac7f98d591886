"""The demo's measurement on the tiny world for several seeds: the spread of every figure.

For each seed: notebooks 04 (train with the tiny profile's PPO settings) and 05 (evaluate the
starting and the trained policy, compare), executed through papermill as the command line runs
them (`detox_helpers.tiny.claims.measure`). Prints the median, minimum and maximum of each
figure over the seeds, and in how many seeds each claim held; with `--readme` writes that
table into README.md's "What you will see" (between its markers), so the README's figures come
from this script, never from a hand; in how many seeds each claim held into
detox_helpers/tiny/seed-table.json, which the verdicts read; and every seed's figures into
benchmarks/tiny-seeds.json, kept in the repository, so that anyone can recompute the medians.

    .venv/bin/python benchmarks/tiny_seeds.py --seeds 42,0,1,2,3,4,5,6,7,8 --readme
    .venv/bin/python benchmarks/tiny_seeds.py --readme \
        --from-json benchmarks/tiny-seeds.json   # the table again from the kept figures

The claims (`detox_helpers.tiny.claims.CLAIMS`, asserted by the tests) are each counted over
the seeds.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from detox_course.execute import run_notebook
from detox_helpers.compare import metric_of
from detox_helpers.evaluation import label, metrics_with
from detox_helpers.layout import Layout, default_artifacts_dir
from detox_helpers.settings import load_settings
from detox_helpers.tiny import claims
from detox_helpers.tiny.judge import EXACT_JUDGE, GOLD_LABEL
from detox_helpers.tiny.world import ensure_tiny_world
from detox_helpers.unattended import notebook

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN, END = "<!-- tiny-seeds:begin -->", "<!-- tiny-seeds:end -->"
# The figures shown, by key (claims.figures' "<key>_before" / "<key>_after"), and their digits;
# their labels come from the evaluation's METRICS, on the page only.
FIGURES = [("toxicity", 3), ("toxicity_with_prompt", 3), ("toxic_share", 3),
           ("toxicity_probability", 3), ("judge", 3), ("insult", 3), ("missed", 3),
           ("rouge1_clean_reference", 3), ("names_kept", 3), ("facts_kept", 3), ("length", 1)]
# Figures of training, which have no before: (label, figure, digits)
TRAINING_ROWS = [
    ("KL, mean of the last 10 steps (target {target})", "kl_final", 2),
    ("KL coefficient's range over the run, share of its start", "kl_coef_moved", 2),
]
# What the seed table knows, for the verdicts (compare.verdict's `seeds`): shipped beside the
# claims and read by claims.seed_table.
SEED_TABLE = Path(claims.__file__).with_name("seed-table.json")
# Every seed's figures behind the README's table, kept in the repository (--readme writes it).
PER_SEED = Path(__file__).with_name("tiny-seeds.json")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = names[0].strip() if names else cpu
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, torch {torch.__version__}"


def spread(values, digits: int) -> str:
    values = np.asarray(values, dtype=float)
    return (f"{np.median(values):.{digits}f} [{values.min():.{digits}f}, "
            f"{values.max():.{digits}f}]")


def table(measured: dict) -> str:
    """The README's table from a measurement (what main writes: seeds, seconds, machine,
    written, and every seed's figures in results); the claims are read again from them."""
    results, seeds, on = measured["results"], measured["seeds"], measured["machine"]
    target = results[0]["kl_target"]
    lines = [f"Tiny profile, {len(seeds)} seeds ({', '.join(map(str, seeds))}), "
             f"median [min, max] over seeds; {on}; "
             f"{np.median(measured['seconds']):.0f} s per seed; `benchmarks/tiny_seeds.py`, "
             f"{measured['written']}; every seed's figures: `benchmarks/tiny-seeds.json`.", "",
             "| figure | before | PPO after | RLOO after (notebook 06) |", "|---|---|---|---|"]
    with_rloo = all("rloo_toxicity_after" in r for r in results)
    every = metrics_with(EXACT_JUDGE)  # the lab's figures and the exact judge's
    rows = [(label(metric_of(key, every), results[0]["k"]), f"{key}_before", f"{key}_after", digits)
            for key, digits in FIGURES] + [(text, None, figure, digits)
                                            for text, figure, digits in TRAINING_ROWS]
    for text, first, second, digits in rows:
        before = spread([r[first] for r in results], digits) if first else ""
        after = spread([r[second] for r in results], digits)
        rloo = spread([r[f"rloo_{second}"] for r in results], digits) if with_rloo else ""
        lines.append(f"| {text.format(target=target)} | {before} | "
                     f"{after} | {rloo} |")
    change = [100 * r["toxicity_change"] / r["toxicity_before"] for r in results]
    beaten = sum(r["ppo_minus_best_of_k_high"] < 0 for r in results)
    lines += ["", f"Toxicity change: {spread(change, 0)} %. Best-of-{results[0]['k']} (the "
              "starting policy's sample the reward model likes best, no training): toxicity "
              f"{spread([r['best_of_k_toxicity'] for r in results], 3)}; PPO minus best-of-"
              f"{results[0]['k']}: {spread([r['ppo_minus_best_of_k'] for r in results], 3)}, "
              f"its paired 95% interval below zero in {beaten} of {len(results)} seeds.", "",
              "| claim | seeds where it held |", "|---|---|"]
    for claim, holds in claims.CLAIMS:
        lines.append(f"| {claim} | {sum(bool(holds(r)) for r in results)} of {len(results)} |")
    for claim, _ in claims.RLOO_CLAIMS if with_rloo else ():
        held = sum(claim not in claims.rloo_failed(r) for r in results)
        lines.append(f"| RLOO: {claim} | {held} of {len(results)} |")
    if all("curve_free_gold_best" in r for r in results):
        lines += curve_lines(results)
    return "\n".join(lines)


# Notebook 07's figures (claims.curve_figures), by run: (label, figure, digits)
CURVE_ROWS = [("gold score at its best snapshot", "gold_best", 3),
              ("gold score at the last snapshot", "gold_last", 3),
              ("proxy (mean reward) at the gold's best snapshot", "proxy_best", 3),
              ("proxy (mean reward) at the last snapshot", "proxy_last", 3),
              ("KL at the gold's best snapshot", "kl_best", 2),
              ("KL at the last snapshot", "kl_last", 2)]


def curve_lines(results: list[dict]) -> list[str]:
    """Notebook 07's over-optimisation figures over the seeds, and its claims' counts."""
    lines = ["", "Notebook 07, each snapshot on the first 24 test prompts x 4 summaries "
             f"(median [min, max] over seeds); the gold score: {GOLD_LABEL}.", "",
             "| figure | the lab's leash (160 steps) | no leash (60 steps) |", "|---|---|---|"]
    for text, figure, digits in CURVE_ROWS:
        lines.append(f"| {text} | {spread([r[f'curve_leash_{figure}'] for r in results], digits)}"
                     f" | {spread([r[f'curve_free_{figure}'] for r in results], digits)} |")
    lines += ["", "| claim (notebook 07) | seeds where it held |", "|---|---|"]
    for claim, _ in claims.CURVE_CLAIMS:
        held = sum(claim not in claims.curve_failed(r) for r in results)
        lines.append(f"| {claim} | {held} of {len(results)} |")
    return lines


def seed_summary(measured: dict) -> dict:
    """In how many seeds each claim held, and PPO's interval lay below best-of-k's: what the
    verdicts say of fragility (verdicts.verdict's `seeds`)."""
    results = measured["results"]
    return dict(seeds=measured["seeds"], machine=measured["machine"],
                written=measured["written"],
                ppo_below_best_of_k=sum(r["ppo_minus_best_of_k_high"] < 0 for r in results),
                claims={claim: sum(bool(holds(r)) for r in results)
                        for claim, holds in claims.CLAIMS})


def write_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        raise SystemExit(f"README.md has no {BEGIN} ... {END} markers to write between")
    head, rest = readme.split(BEGIN, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{rest.split(END, 1)[1]}")


def through_papermill(settings, number: str, **parameters) -> None:
    """One notebook executed as the command line executes it (its copy kept in the scratch
    artifacts folder)."""
    run_notebook(notebook(number), settings, **parameters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="42,0,1,2,3")  # the demo's seed among them
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                        help="try other settings, e.g. --set kl_horizon=1000 (repeatable)")
    parser.add_argument("--without-rloo", action="store_true",
                        help="skip notebook 06 (about a third of each seed's time) when trying "
                             "PPO settings")
    parser.add_argument("--from-json", metavar="FILE",
                        help="write the table of an earlier run's --output (claims changed since "
                             "are read again from its figures) instead of measuring")
    parser.add_argument("--output", help="where every seed's figures go (default: "
                        "benchmarks/tiny-seeds.json with --readme, else the artifacts folder's "
                        "benchmarks/)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    # read as DETOX_* variables are, so each value takes its setting's type
    if args.readme and (args.set or args.without_rloo):
        raise SystemExit("--readme shows the tiny profile's own settings and RLOO's column: "
                         "drop --set and --without-rloo")
    changed = {f"DETOX_{item.partition('=')[0].upper()}": item.partition("=")[2]
               for item in args.set}
    if args.from_json:
        measured = json.loads(Path(args.from_json).read_text())
    else:
        measured = dict(seeds=seeds, seconds=[], machine=machine(),
                        written=f"{datetime.now(UTC):%Y-%m-%d}", results=[])
    for seed in [] if args.from_json else seeds:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            settings = load_settings("tiny", environ=changed, seed=seed, artifacts_dir=scratch)
            ensure_tiny_world(settings)
            figures = claims.measure(settings, functools.partial(through_papermill, settings),
                                     rloo=not args.without_rloo, curve=not args.without_rloo)
        measured["seconds"].append(time.perf_counter() - started)
        measured["results"].append(figures)
        rloo = ("" if args.without_rloo else f"; RLOO {figures['rloo_toxicity_after']:.3f}, "
                f"broken: {claims.rloo_failed(figures)}")
        print(f"seed {seed}: {measured['seconds'][-1]:.0f} s; claims broken: "
              f"{claims.failed(figures)}; toxicity {figures['toxicity_before']:.3f} -> "
              f"{figures['toxicity_after']:.3f}{rloo}", flush=True)
    output = args.output or (PER_SEED if args.readme else
                             Layout(default_artifacts_dir()).benchmarks / "tiny-seeds.json")
    if not args.from_json:  # the figures first: the table can be written again from them
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(json.dumps(measured, indent=1) + "\n")
    text = table(measured)
    print("\n" + text)
    if args.readme:
        write_readme(text)
        SEED_TABLE.write_text(json.dumps(seed_summary(measured), indent=1) + "\n")
        print(f"\nwritten into {README}, {SEED_TABLE} and {output}")


if __name__ == "__main__":
    main()
