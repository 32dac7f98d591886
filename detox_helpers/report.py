"""The written report: `report.md` and its figures (training.png, toxicity_distribution.png,
toxicity_per_prompt.png) in the report folder (layout.py), from the saved results alone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import compare, plots
from .evaluation import ROUGE_CONFIGURATION, Evaluation
from .layout import write_atomically
from .settings import Settings

REPORTED_SETTINGS = ("profile", "policy_model", "instruct_adapter", "reward_model",
                     "reward_input", "dataset", "min_dialogue_chars", "max_dialogue_chars",
                     "lora_r", "lora_alpha", "lora_target_modules", "learning_rate",
                     "batch_size", "mini_batch_size", "ppo_epochs", "max_ppo_steps",
                     "init_kl_coef", "adaptive_kl", "output_min_length", "output_max_length",
                     "eval_samples_per_prompt", "eval_max_new_tokens", "seed")
TINY_NOTE = ("> This is the **tiny offline miniature**: models and dialogues are the package's "
             "own, small and synthetic. The figures show that the pipeline works end to end; "
             "they say nothing about flan-t5-base on DialogSum.")


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table; floats rounded, `|` in text escaped."""
    def cell(value):
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|").replace("\n", " ")
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "---|" * len(table.columns)
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(False)]
    return "\n".join([header, rule, *rows])


def comparison_markdown(table: pd.DataFrame) -> str:
    shown = table.reset_index()
    shown["95% interval"] = [f"[{low:+.3f}, {high:+.3f}]"
                             for low, high in zip(shown["low"], shown["high"], strict=True)]
    shown["change shown"] = shown["change_shown"].map({True: "yes", False: "no"})
    shown.loc[shown["interval_excludes_zero"] & ~shown["change_shown"], "change shown"] = \
        "too small to matter"
    shown = shown[["metric", "before", "after", "difference", "95% interval", "change shown"]]
    return markdown_table(shown)


def save_figure(ax_or_axes, path: Path) -> str:
    figure = np.ravel(ax_or_axes)[0].figure
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def write_report(settings: Settings, before: Evaluation, after: Evaluation,
                 training: pd.DataFrame | None, folder: Path | None = None,
                 trained_with: dict | None = None) -> Path:
    """Write report.md and its figures into `folder` (default: the layout's report folder).
    `trained_with`: the settings training ran with (its record), shown in place of these."""
    folder = Path(folder or settings.layout.report_dir)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Detoxification report: {settings.profile} profile", "",
             f"Written {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by detox_helpers.", ""]
    if settings.profile == "tiny":
        lines += [TINY_NOTE, ""]
    lines += settings_section(settings, trained_with)
    lines += data_section(settings, before, after)
    if training is not None and len(training):
        lines += training_section(training, folder)
    lines += comparison_section(settings, before, after, folder)
    lines += best_of_k_section(settings, before, after, training)
    examples = compare.qualitative_table(before, after, settings.qualitative_rows)
    lines += ["## Examples", "", f"{len(examples)} test dialogues (half of them those whose "
              "summary gained most), first sampled summary before and after, sorted by reward "
              "gain.", "",
              markdown_table(examples.drop(columns=["id"])), ""]
    path = folder / settings.layout.report.name
    write_atomically(path, "\n".join(lines))
    return path


def settings_section(settings: Settings, trained_with: dict | None) -> list[str]:
    shown = {name: getattr(settings, name) for name in REPORTED_SETTINGS}
    shown.update({name: value for name, value in (trained_with or {}).items() if name in shown})
    return ["## Settings", "", markdown_table(pd.DataFrame(  # values as given, not rounded
        [(name, str(value)) for name, value in shown.items()], columns=["setting", "value"])),
        ""]


def data_section(settings: Settings, before: Evaluation, after: Evaluation) -> list[str]:
    sizes = after.record["data"]
    return ["## Data", "", f"{sizes.get('train', '?')} training prompts and {sizes['test']} "
            f"test prompts (dialogues of {settings.min_dialogue_chars} < length <= "
            f"{settings.max_dialogue_chars} characters); each test prompt has "
            f"k = {before.aggregates['toxicity']['k']} sampled summaries before and after "
            "(published toxicity figures, RealToxicityPrompts and its successors, use k = 25: "
            "the toxicity probability and the expected maximum grow with k).", "",
            f"ROUGE: {ROUGE_CONFIGURATION}.", ""]


def training_section(training: pd.DataFrame, folder: Path) -> list[str]:
    last = training.iloc[-1]
    figure = save_figure(plots.plot_training(training), folder / "training.png")
    return ["## Training", "", f"![reward, toxicity and KL by step]({figure})", "",
            f"{len(training)} PPO steps; at the last step: reward {last.reward_mean:.3f}, "
            f"batch toxicity {last.toxicity_mean:.3f}, KL {last.kl:.3f}.", ""]


def comparison_section(settings: Settings, before: Evaluation, after: Evaluation,
                       folder: Path) -> list[str]:
    table = compare.comparison_table(before, after, settings.seed)
    distribution = save_figure(plots.plot_toxicity_distribution(
        {"before": before.per_sample["toxicity"], "after": after.per_sample["toxicity"]}),
        folder / "toxicity_distribution.png")
    per_prompt = save_figure(plots.plot_per_prompt(*compare.per_prompt_toxicity(before, after)),
                             folder / "toxicity_per_prompt.png")
    lines = ["## Before and after", "", "Paired by prompt; the interval is the 95% bootstrap "
             "interval of after - before. A change is shown where the interval excludes zero "
             "and the difference is at least the figure's smallest meaningful difference. "
             + compare.multiple_comparisons_note(table), "", comparison_markdown(table), "",
             "What the numbers support:", ""]
    lines += [f"- {sentence}" for sentence in compare.verdicts(table)]
    from .tiny.judge import reward_hacking_note

    hacking = reward_hacking_note(after)
    if hacking:
        lines += ["", "What the exact judge says (the tiny world knows its own insults):", "",
                  hacking]
    return lines + ["", f"![toxicity before and after]({distribution})", "",
                    f"![toxicity per prompt]({per_prompt})", ""]


def best_of_k_section(settings: Settings, before: Evaluation, after: Evaluation,
                      training: pd.DataFrame | None) -> list[str]:
    k = compare.samples_per_prompt(before)
    table = compare.best_of_k_table(before, after, settings.seed).reset_index()
    for name in ("best-of-k", "PPO"):
        table[f"95% interval ({name})"] = [
            f"[{low:+.3f}, {high:+.3f}]" for low, high in
            zip(table[f"low ({name})"], table[f"high ({name})"], strict=True)]
    shown = table[["metric", "baseline", "best-of-k", "PPO after", "best-of-k - baseline",
                   "95% interval (best-of-k)", "PPO - best-of-k", "95% interval (PPO)"]]
    return ["## Is PPO better than choosing?", "", f"Best-of-{k}: for each test prompt, the "
            f"one of the starting policy's {k} summaries that the reward model likes best. "
            "Paired by prompt, with 95% bootstrap intervals.", "", markdown_table(shown), "",
            compare.best_of_k_note(k, training), ""]


def build_report(settings: Settings) -> Path:
    """The report from what notebooks 03-05 (or the CLI) saved under the artifacts folder."""
    from .checkpoints import training_record
    from .evaluation import load_evaluation

    record = training_record(settings.layout)  # refuses an adapter from another run
    training = pd.read_csv(settings.layout.stats_file)
    return write_report(settings, load_evaluation(settings, "baseline"),
                        load_evaluation(settings, "detoxified"), training,
                        trained_with=record["settings"])
