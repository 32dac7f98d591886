"""The written report: `report.md` and its figures in the report folder (layout.py), from what
notebook 05 computed once and hands here (the comparison, best-of-k and the verdict).
"""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import compare, plots, verdicts, words
from .evaluation import ROUGE_CONFIGURATION, Evaluation, per_prompt
from .layout import shown
from .settings import Settings
from .writes import write_atomically

# Every setting that shapes the figures, in the groups the report lists them.
REPORTED_SETTINGS = {
    "models and data": ("profile", "policy_model", "instruct_adapter", "reward_model",
                        "reward_input", "dataset", "min_dialogue_chars", "max_dialogue_chars",
                        "seed"),
    "LoRA": ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"),
    "PPO": ("learning_rate", "batch_size", "mini_batch_size", "ppo_epochs", "max_ppo_steps",
            "init_kl_coef", "adaptive_kl", "target_kl", "kl_horizon", "output_min_length",
            "output_max_length", "top_k", "top_p"),
    "evaluation": ("eval_samples_per_prompt", "eval_max_new_tokens"),
}
PATH_SETTINGS = ("policy_model", "instruct_adapter", "reward_model", "dataset")
TINY_NOTE = ("> The **tiny offline miniature**: small synthetic models and dialogues, not "
             "flan-t5-base on DialogSum.")


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table; floats rounded, `|` in text escaped."""
    def cell(value):
        return (f"{value:.{digits}f}" if isinstance(value, float)
                else str(value).replace("|", "\\|").replace("\n", " "))
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([header, rule, *rows])


def comparison_markdown(table: pd.DataFrame) -> str:
    shown = table.reset_index()
    shown["metric"] = shown["label"]
    interval = "95% interval of after - before"
    shown[interval] = [words.interval(low, high) for low, high in
                       zip(shown["low"], shown["high"], strict=True)]
    shown["change shown"] = np.where(shown["change_shown"], "yes",
                                     np.where(shown["interval_excludes_zero"], "too small", "no"))
    return markdown_table(shown[["metric", "before", "after", interval, "change shown"]])


def save_figure(ax_or_axes, path: Path) -> str:
    figure = np.ravel(ax_or_axes)[0].figure
    figure.tight_layout()
    image = io.BytesIO()  # drawn first, then written whole: a full disk keeps the old figure
    figure.savefig(image, format="png", dpi=110)
    plt.close(figure)
    write_atomically(path, image.getvalue())
    return path.name


def write_report(settings: Settings, before: Evaluation, after: Evaluation,
                 training: pd.DataFrame, table: pd.DataFrame, choosing: pd.DataFrame,
                 verdict: str, record: dict | None = None, folder: Path | None = None) -> Path:
    """Write report.md and its figures into `folder` (default: the layout's report folder), the
    `verdict` first; `table` and `choosing` are compare's comparison and best-of-k tables,
    `record` the trained adapter's (checkpoints.training_record)."""
    folder = Path(folder or settings.layout.report_dir)  # write_atomically makes it
    k, record = before.samples_per_prompt, record or {}
    lines = [f"# Detoxification report: {settings.profile} profile", "",
             f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by detox_helpers.", ""]
    if settings.profile == "tiny":
        lines += [TINY_NOTE, ""]
    lines += ["## Verdict", "", verdict, "", *comparison_section(table, before, after, folder),
              *best_of_k_section(choosing, table, k), *training_section(training, folder)]
    examples = compare.qualitative_table(before, after, 2 * EXAMPLES).head(EXAMPLES)
    lines += ["## Examples", "", f"The {EXAMPLES} test prompts whose first sampled summary "
              "gained most reward.", "",
              markdown_table(examples[[c for c in EXAMPLE_COLUMNS if c in examples]]), ""]
    lines += settings_section(settings, record.get("settings"), before.record["data"], k,
                              before.per_sample["prompt"].nunique())
    lines[-1:-1] = [precision_line(settings, dict(training=record.get("precision"),
                                                  baseline=before.record.get("precision"),
                                                  detoxified=after.record.get("precision")))]
    path = folder / settings.layout.report.name
    write_atomically(path, "\n".join(lines))
    return path


METHODS_HEADING = "# Beyond PPO: RLOO beside PPO and best-of-k"


def write_methods_report(settings: Settings, table: pd.DataFrame, verdict: str, metrics) -> Path:
    """Notebook 06's side-by-side table and verdict, on a page of its own beside report.md
    (which keeps to its 800 words); the table also as methods.csv beside the evaluations."""
    path = settings.layout.methods_report
    k = compare.samples_of(table.index[1])
    lines = [METHODS_HEADING, "", f"Beside [the PPO report]({settings.layout.report.name}), "
             f"{settings.profile} profile, seed {settings.seed}.", "", verdict, "",
             markdown_table(compare.labelled(table, k, metrics).reset_index()), ""]
    write_atomically(path, "\n".join(lines))
    write_atomically(settings.layout.eval_dir / "methods.csv", table.to_csv())
    return path


EXAMPLES = 2
EXAMPLE_COLUMNS = ("summary before", "summary after", "reward gain", "lost")


def settings_section(settings: Settings, trained_with: dict | None, sizes: dict,
                     k: int, evaluated: int) -> list[str]:
    values = {**dataclasses.asdict(settings), **(trained_with or {})}  # as trained
    for name in PATH_SETTINGS:
        values[name] = shown(values[name]) if Path(str(values[name])).exists() else values[name]
    lines = ["## Settings and data", "", f"{sizes.get('train', '?')} training and "
             f"{sizes['test']} test prompts, of which {evaluated} evaluated"
             f"{'' if evaluated == sizes['test'] else ' (DETOX_EVAL_SIZE=-1 evaluates all)'}"
             f", k = {k} sampled summaries per prompt. ROUGE: {ROUGE_CONFIGURATION}.", ""]
    return lines + [f"- {group}: " + ", ".join(f"{name} `{values[name]}`" for name in names)
                    for group, names in REPORTED_SETTINGS.items()] + [""]


def precision_line(settings: Settings, ran: dict) -> str:
    """The precision of the policy's frozen weights in each part of the run (`ran`: part ->
    dtype); LoRA, the value head and the reward model are float32 always."""
    head = f"- frozen weights' precision (setting `{settings.precision}`): "
    if len(set(ran.values())) == 1:
        return head + f"`{ran['training'] or '?'}` throughout"
    return head + ", ".join(f"{what} `{dtype or '?'}`" for what, dtype in ran.items())


def training_section(training: pd.DataFrame, folder: Path) -> list[str]:
    figure = save_figure(plots.plot_training(training), folder / "training.png")
    return ["## Training", "", f"![reward, toxicity and KL by step]({figure})", "",
            f"{len(training)} PPO steps; KL from the starting policy "
            f"{compare.final_kl(training):.2f} nats ({compare.KL_MEANING}).", ""]


def comparison_section(table: pd.DataFrame, before: Evaluation, after: Evaluation,
                       folder: Path) -> list[str]:
    """The figures the report keeps (Metric.in_report: notebook 05 shows the others), the
    judge's note, the two toxicity plots."""
    distribution = save_figure(plots.plot_toxicity_distribution(
        {"before": before.per_sample["toxicity"], "after": after.per_sample["toxicity"]}),
        folder / "toxicity_distribution.png")
    compare.check_pairing(before, after)
    means = [per_prompt(e.per_sample, "toxicity").mean(axis=1) for e in (before, after)]
    by_prompt = save_figure(plots.plot_per_prompt(*means), folder / "toxicity_per_prompt.png")
    kept = table[table["in_report"].astype(bool)]
    left = ", ".join(table.loc[~table.index.isin(kept.index), "label"])
    lines = ["## Before and after", "", "Paired by prompt (same prompts, same sampling seeds), "
             f"95% bootstrap intervals; {len(kept)} of them, none adjusted for multiple "
             f"comparisons (in notebook 05 only: {left}).", "", comparison_markdown(kept), ""]
    note = after.judge.note(after.per_sample) if after.judge else None
    if note:
        lines += [f"{after.judge.name}: {note}", ""]
    return lines + [f"![toxicity before and after]({distribution})", "",
                    f"![toxicity per prompt]({by_prompt})", ""]


def best_of_k_section(choosing: pd.DataFrame, comparison: pd.DataFrame, k: int) -> list[str]:
    """Best-of-k against PPO on the headline, the judge and the verdicts' first kept figure."""
    keys = [compare.HEADLINE, compare.JUDGE, *verdicts.kept_figures(comparison)[:1]]
    table = choosing[choosing.index.isin(keys)].reset_index()
    interval = "95% interval of PPO - best-of-k"
    table[interval] = [words.interval(low, high) for low, high in
                       zip(table["low (PPO)"], table["high (PPO)"], strict=True)]
    table["metric"] = table["metric"].map(comparison["label"])
    return ["## Is PPO better than choosing?", "", f"Best-of-{k}: of the starting policy's {k} "
            "summaries of a test prompt, the one the reward model likes best.", "",
            markdown_table(table[["metric", "best-of-k", "PPO after", interval]]), ""]
