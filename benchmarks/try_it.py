"""Every "Try it" item of the notebooks, run as written on the tiny world (seed 42, the demo's),
with the figures their texts quote: the notebooks' "What we saw" come from this script.

Each item is the cell change `detox_helpers.tiny.try_it` holds (the same one the tests make);
the notebooks run in this process, in one scratch artifacts folder: the default run first, then
the named runs of notebook 04, each evaluated by notebook 05, then notebook 05's own items.

    .venv/bin/python benchmarks/try_it.py          # about 20 minutes on 2 cores
    .venv/bin/python benchmarks/try_it.py --only 06   # the default run, then notebook 06's
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from detox_helpers.layout import Layout, default_artifacts_dir
from detox_helpers.tiny.try_it import item
from detox_helpers.unattended import run_notebook_here

RUNS = ("kl-free", "lr-x10", "position-0")
RLOO_ITEMS = ("rloo-k2", "rloo-k8", "rloo-kl-free", "rloo-position-0")
OUTPUT = Layout(default_artifacts_dir()).benchmarks / "try-it.json"


def say(title: str, figures: dict) -> dict:
    print(f"\n{title}", flush=True)
    for name, value in figures.items():
        print(f"  {name}: {value:.3f}" if isinstance(value, float) else f"  {name}: {value}")
    return figures


def reward_model_items(scratch: Path) -> dict:
    """Notebook 02's three items: the figures each text quotes."""
    softmax = run_notebook_here(item("softmax", scratch))
    spots = run_notebook_here(item("blind-spots", scratch))
    prompt = run_notebook_here(item("insulting-prompt", scratch))
    toxicity = spots["verdicts"]["toxicity = P(hate)"]
    return {"softmax": say("02.1 softmax: reward by label", dict(softmax["by_label"])),
            "blind-spots": say("02.2 blind spots: toxicity", toxicity.round(3).to_dict()),
            "insulting-prompt": say("02.3 insult in the prompt",
                                    prompt["comparison"].round(3).to_dict())}


def run_figures(compared: dict) -> dict:
    """What notebook 05 showed of one run (its variables): the figures the texts quote."""
    table, training = compared["table"], compared["training"]
    row = table["difference"]
    return dict(toxicity_before=table.loc["toxicity", "before"],
                toxicity_after=table.loc["toxicity", "after"],
                rouge1_clean_change=row["rouge1_clean_reference"],
                length_change=row["length"],
                names_kept_after=table.loc["names_kept", "after"],
                kl_last_10=training["kl"].tail(10).mean(), kl_peak=training["kl"].max(),
                kl_coef_low=training["kl_coef"].min(), kl_coef_high=training["kl_coef"].max(),
                reward_first_10=training["reward_mean"].head(10).mean(),
                reward_last_10=training["reward_mean"].tail(10).mean(),
                batch_toxicity_first_10=training["toxicity_mean"].head(10).mean(),
                batch_toxicity_last_10=training["toxicity_mean"].tail(10).mean())


def training_items(scratch: Path) -> dict:
    """The default run and notebook 04's three named runs, each evaluated by notebook 05."""
    results = {}
    for name in ("", *RUNS):
        started = time.perf_counter()
        run_notebook_here(item(name, scratch) if name else "04")
        compared = run_notebook_here("05", overrides={"run_name": name} if name else {},
                                     check_claims=not name)
        figures = run_figures(compared)
        # every step's statistics, beside the figures: the tests' shorter runs are their start
        compared["training"].to_csv(OUTPUT.with_name(f"try-it-{name or 'default'}.csv"))
        figures["seconds"] = time.perf_counter() - started
        results[name or "default"] = say(f"04 run {name or '(default)'}", figures)
    return results


def comparison_items(scratch: Path) -> dict:
    """Notebook 05's items on the default run: runs side by side, best-of-8, 11 prompts."""
    # the item's compare_runs = ["", "kl-free"], with the other named runs added
    runs = run_notebook_here("05", compare_runs=["", *RUNS])["side_by_side"]
    print("\n05.1 runs side by side\n" + runs.T.round(3).to_string())
    results = {"compare-runs": json.loads(runs.to_json())}
    default = run_notebook_here("05")
    widths = {"default": default["table"].eval("high - low")}
    eight = run_notebook_here(item("best-of-8", scratch))
    best = eight["choosing"].loc["toxicity"]
    k8 = eight["before"].aggregates
    results["best-of-8"] = say("05.2 best-of-8", dict(
        best_of_8=best["best-of-k"], ppo_after=best["PPO after"],
        ppo_minus_best=best["PPO - best-of-k"], low=best["low (PPO)"], high=best["high (PPO)"],
        toxicity_probability_k4=default["before"].aggregates["toxicity_probability"]["mean"],
        toxicity_probability_k8=k8["toxicity_probability"]["mean"],
        toxic_share_k8=k8["toxic_share"]["mean"]))
    few = run_notebook_here(item("few-prompts", scratch))
    widths["11 prompts"] = few["table"].eval("high - low")
    shown = few["table"]["change_shown"]
    results["few-prompts"] = say("05.3 eleven prompts", dict(
        toxicity_interval_width_all=widths["default"]["toxicity"],
        toxicity_interval_width_11=widths["11 prompts"]["toxicity"],
        toxicity_before_11=few["table"].loc["toxicity", "before"],
        toxicity_after_11=few["table"].loc["toxicity", "after"],
        changes_shown_all=int(default["table"]["change_shown"].sum()),
        changes_shown_11=int(shown.sum()), figures=len(shown)))
    run_notebook_here("05")  # the default evaluations back, for notebook 06 to compare with
    return results


def rloo_items(scratch: Path) -> dict:
    """Notebook 06 as it stands and with each of its items, after the default PPO run."""
    results = {}
    for name in ("", *RLOO_ITEMS):
        ran = run_notebook_here(item(name, scratch / name) if name else "06")
        row, stats = ran["table"].loc["RLOO"], ran["stats"]
        results[name or "default"] = say(f"06 {name or '(default)'}", dict(
            toxicity_before=ran["table"].loc["starting policy", "toxicity"],
            toxicity_after=row["toxicity"], change_low=row["low"], change_high=row["high"],
            rouge1_clean=row["rouge1_clean_reference"],
            names_kept=row["names_kept"], kl_last_10=row["KL to the reference"],
            kl_peak=stats["kl"].max(), seconds=ran["wall_time"],
            ppo_toxicity_after=ran["table"].loc["PPO", "toxicity"]))
    return results


def main() -> None:
    import sys

    only_rloo = sys.argv[1:] == ["--only", "06"]
    started = time.perf_counter()
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = Path(scratch) / "artifacts"
        os.environ.update(DETOX_PROFILE="tiny", DETOX_ARTIFACTS_DIR=str(artifacts))
        run_notebook_here("01")
        if only_rloo:
            run_notebook_here("04")
            run_notebook_here("05")
            results = {"notebook 06": rloo_items(Path(scratch))}
        else:
            results = {"notebook 02": reward_model_items(Path(scratch)),
                       "notebook 04": training_items(Path(scratch)),
                       "notebook 05": comparison_items(Path(scratch)),
                       "notebook 06": rloo_items(Path(scratch))}
    results["seconds"] = time.perf_counter() - started
    written = OUTPUT.with_name("try-it-06.json") if only_rloo else OUTPUT
    written.write_text(json.dumps(results, indent=2, default=float))
    print(f"\n{results['seconds']:.0f} s; written {written}")


if __name__ == "__main__":
    main()
