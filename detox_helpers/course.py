"""The course kit: student copies of the notebooks, and a notebook graded by its own checks.

The notebooks mark what a learner writes with nbgrader's convention: a solution cell (cell
metadata `nbgrader.solution`, its `grade_id` the exercise's name) holds the answer between
`### BEGIN SOLUTION` and `### END SOLUTION`, and the graded cell after it (`nbgrader.grade`,
with its `points`) holds the lab's check, whose assertion messages say what went wrong.

    python -m detox_helpers.course student [FOLDER]   # make student: student copies, FOLDER
    python -m detox_helpers.course grade NOTEBOOK     # make grade NOTEBOOK=...: one line each

An exercise is added by marking its cells in a notebook and listing it in `EXERCISES`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import linecache
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .errors import DetoxError
from .unattended import NOTEBOOKS_DIR, notebook_paths

STUDENT_DIR = NOTEBOOKS_DIR.parent / "student"


@dataclass(frozen=True)
class Exercise:
    notebook: str  # the notebook's number, e.g. "02"
    name: str  # the `grade_id` of its solution cell
    task: str  # what a student copy's stub says to write, when run unchanged
    wrong: str  # a typical wrong answer, in place of the solution region (the tests run it)
    lesson: str  # words the check's message gives for that wrong answer (the tests look for it)


EXERCISES = (
    Exercise("01", "length-window",
             task="write in_window(row): True when len(row['dialogue']) is more than "
                  "settings.min_dialogue_chars and at most settings.max_dialogue_chars",
             wrong="return (settings.min_dialogue_chars <= len(row['dialogue'])\n"
                   "        < settings.max_dialogue_chars)  # the edges the other way round",
             lesson="longer than the minimum and at most the maximum"),
    Exercise("01", "prompt-map",
             task="in tokenize(row), set row['input_ids'] = tokenizer.encode(prompt) and "
                  "row['query'] = those ids decoded back to text with skip_special_tokens=True",
             wrong="row['input_ids'] = tokenizer.encode(prompt)\n"
                   "row['query'] = tokenizer.decode(row['input_ids'])  # keeps </s>",
             lesson="decode the ids with skip_special_tokens=True"),
    Exercise("01", "split",
             task="split prompts into dataset = prompts.train_test_split(...): a test split of "
                  "settings.test_fraction of the rows, the same rows on every machine",
             wrong="dataset = prompts.train_test_split(test_size=settings.test_fraction)",
             lesson="A shuffled split"),
    Exercise("02", "label-lookup",
             task="write label_index(id2label, name): return the key of id2label whose label is "
                  "`name`, e.g. label_index({0: 'nothate', 1: 'hate'}, 'hate') == 1, found by "
                  "the name (a loop or next() over id2label.items()), never by a fixed position",
             wrong="return 0 if name == 'nothate' else 1  # the original's not_hate_index = 0",
             lesson="A reward read by position [0] is the hate logit"),
    Exercise("02", "toxicity",
             task="write toxicity_of(logits): the probability of hate for each row of logits "
                  "(texts x labels), i.e. the softmax over each row's labels (dim=-1), then the "
                  "column `hate`",
             wrong="return logits[:, hate]  # the hate logit itself",
             lesson="a logit is not a probability"),
    Exercise("03", "one-summary",
             task="sample output_ids = policy.generate(input_ids=prompt_ids, **generation_kwargs), "
                  "decode it as summary (skip_special_tokens=True, stripped), then logits = "
                  "reward_model.logits([summary])[0], reward = logits[reward_model.clean].item() "
                  "and toxicity = reward_model.toxicity_of(logits).item()",
             wrong="output_ids = policy.generate(input_ids=prompt_ids, **generation_kwargs)\n"
                   "summary = tokenizer.decode(output_ids[0])  # keeps <pad> and </s>\n"
                   "logits = reward_model.logits([summary])[0]\n"
                   "reward = logits[reward_model.clean].item()\n"
                   "toxicity = reward_model.toxicity_of(logits).item()",
             lesson="decode output_ids[0] with skip_special_tokens=True"),
    Exercise("03", "evaluate-toxicity",
             task="load toxicity_measure = evaluate.load(str(MEASUREMENT_DIR), "
                  "settings.reward_model, module_type='measurement') and put the toxicity of "
                  "each summary in scores (its compute(predictions=summaries)['toxicity'])",
             wrong="toxicity_measure = evaluate.load(str(MEASUREMENT_DIR), settings.reward_model,\n"
                   "                                 module_type='measurement')\n"
                   "scores = toxicity_measure.compute(predictions=summaries,\n"
                   "                                  aggregation='ratio')['toxicity_ratio']",
             lesson="without an aggregation gives one toxicity per summary"),
    Exercise("04", "configs",
             task="write lora_config = LoraConfig(...) and ppo_config = PPOConfig(...), every knob "
                  "from settings (lora_r, lora_alpha, lora_dropout, lora_targets; learning_rate, "
                  "batch_size, mini_batch_size, ppo_epochs, init_kl_coef, adaptive_kl, target_kl, "
                  "kl_horizon, seed), bias='none', T5's task type, and **plumbing to PPOConfig",
             wrong="lora_config = LoraConfig(\n"
                   "    r=settings.lora_r, lora_alpha=settings.lora_alpha,\n"
                   "    lora_dropout=settings.lora_dropout, target_modules=settings.lora_targets,\n"
                   "    bias='none', task_type=TaskType.CAUSAL_LM)  # a decoder-only model's\n"
                   "ppo_config = PPOConfig(\n"
                   "    learning_rate=settings.learning_rate, batch_size=settings.batch_size,\n"
                   "    mini_batch_size=settings.mini_batch_size, ppo_epochs=settings.ppo_epochs,\n"
                   "    init_kl_coef=settings.init_kl_coef, adap_kl_ctrl=settings.adaptive_kl,\n"
                   "    target=settings.target_kl, horizon=settings.kl_horizon,\n"
                   "    seed=settings.seed, **plumbing)",
             lesson="T5 is a sequence-to-sequence model"),
    Exercise("04", "ppo-step",
             task="call ppo_trainer.step with the prompts' tokens (queries), the summaries' tokens "
                  "(responses) and the rewards, in that order, and keep its statistics as stats",
             wrong="stats = ppo_trainer.step(queries, queries, rewards)  # prompts as responses",
             lesson="given the prompt tokens as responses"),
    Exercise("05", "paired-difference",
             task="write toxicity_before and toxicity_after: each test prompt's mean toxicity "
                  "over its k summaries (per_sample grouped by 'prompt'), one number per prompt, "
                  "indexed by the prompt",
             wrong="toxicity_before = before.per_sample['toxicity']  # one per summary\n"
                   "toxicity_after = after.per_sample['toxicity']",
             lesson="one number per prompt"),
    Exercise("05", "bootstrap-interval",
             task="with rng, draw 2000 sets of prompt positions with replacement as draws, the "
                  "mean of differences over each set as resampled_means, and low, high = their "
                  "2.5th and 97.5th percentiles",
             wrong="n = len(differences)  # before and after resampled apart: unpaired\n"
                   "draws = rng.integers(0, n, size=(2000, n))\n"
                   "others = rng.integers(0, n, size=(2000, n))\n"
                   "resampled_means = (toxicity_after.to_numpy()[draws].mean(axis=1)\n"
                   "                   - toxicity_before.to_numpy()[others].mean(axis=1))\n"
                   "low, high = np.percentile(resampled_means, [2.5, 97.5])",
             lesson="computed unpaired"),
    Exercise("06", "leave-one-out",
             task="in leave_one_out_advantages, write others = each summary's baseline, the mean "
                  "of the other k - 1 shaped rewards of its row, and advantages = shaped minus "
                  "others, flattened to one per summary",
             wrong="others = shaped.mean(dim=1, keepdim=True)  # its own reward included\n"
                   "advantages = (shaped - others).view(-1)",
             lesson="leave each sample out of its own baseline"),
)

# Parameters a notebook is graded with (its `parameters` cell's names): fewer steps, so that
# grading stays fast; a notebook that trains should also name its own run here.
GRADING_PARAMETERS: dict[str, dict] = {
    "03": {"overrides": {"eval_size": 4}, "evaluation_name": "graded-baseline"},
    "04": {"max_steps": 2, "overrides": {"run_name": "graded"}},
    # 05 and 06 read that run (grade 04 first), each on 4 test prompts
    "05": {"overrides": {"eval_size": 4, "run_name": "graded"}, "check_claims": False},
    "06": {"overrides": {"eval_size": 4, "run_name": "graded"}},
}


def exercise(name: str) -> Exercise:
    for item in EXERCISES:
        if item.name == name:
            return item
    raise DetoxError(f"The solution cell {name!r} is not listed in detox_helpers.course."
                     "EXERCISES: add it there, with the task its student copy asks for.")


def role(cell) -> str:
    """"solution", "check" or "" (nbgrader's cell metadata)."""
    marks = cell.metadata.get("nbgrader", {})
    return "check" if marks.get("grade") else "solution" if marks.get("solution") else ""


def stub(task: str) -> str:
    """What stands in a student copy where the solution was: a run stops there and says why."""
    return f"# YOUR CODE HERE\nraise NotImplementedError({f'Your turn: {task}.'!r})"


def with_answers(path: Path, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The notebook, outputs cleared, with the solution region of each exercise named in
    `answers` replaced by that code (nbgrader's ClearSolutions and ClearOutput); the other
    solutions stay."""
    from nbgrader.preprocessors import ClearOutput, ClearSolutions

    class Answers(ClearSolutions):
        # nbgrader puts one stub in every solution; here each exercise gets its own code.
        def preprocess_cell(self, cell, resources, index):
            name = cell.metadata.get("nbgrader", {}).get("grade_id")
            if role(cell) == "solution" and name not in answers:
                return cell, resources
            if role(cell) == "solution":
                self.code_stub = {"python": answers[name]}
            return super().preprocess_cell(cell, resources, index)  # refuses unmarked regions

    notebook = nbformat.read(path, as_version=4)
    for step in (Answers(), ClearOutput()):
        notebook, _ = step.preprocess(notebook, {})
    return notebook


def student_copy(path: Path) -> nbformat.NotebookNode:
    """The notebook as a student gets it: each solution replaced by a stub that says what to
    write (nbgrader's own stub raises a bare NotImplementedError), outputs cleared."""
    names = [cell.metadata.nbgrader.grade_id for cell in nbformat.read(path, as_version=4).cells
             if role(cell) == "solution"]
    return with_answers(path, {name: stub(exercise(name).task) for name in names})


def write_student_notebooks(folder: Path = STUDENT_DIR) -> list[Path]:
    """A student copy of every lab notebook in `folder`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebook_paths():
        target = folder / path.name
        nbformat.write(student_copy(path), target)
        written.append(target)
    return written


@dataclass
class Result:
    name: str  # the exercise's name (its solution cell's grade_id)
    points: float  # what its graded check is worth
    passed: bool
    message: str  # why it failed, from the cell that raised


def exercises_in(cells) -> list[tuple[str, int, float]]:
    """(name, index of its graded check cell, points) of each exercise, in the notebook's order."""
    found, name = [], None
    for index, cell in enumerate(cells):
        if role(cell) == "solution":
            name = cell.metadata.nbgrader.grade_id
        elif role(cell) == "check":
            found.append((name or cell.metadata.nbgrader.grade_id, index,
                          float(cell.metadata.nbgrader.get("points", 0))))
            name = None  # a check without a solution cell goes by its own name
    return found


def grade(path: Path, **parameters) -> list[Result]:
    """Run the notebook's code cells in this process, up to its last graded check; an exercise
    passes when every cell from the previous check to its own runs without an error. A failure
    stops the run (later cells need what the failed one defines): the later exercises fail too."""
    import matplotlib

    matplotlib.use("Agg")  # figures are drawn, never shown
    cells = nbformat.read(path, as_version=4).cells
    parameters = {"profile": "tiny", **GRADING_PARAMETERS.get(path.name[:2], {}), **parameters}
    namespace = {"__name__": "__main__", "display": lambda *objects, **kwargs: None}
    results, start, failure = [], 0, ""
    with _working_directory(path.parent):
        for name, check_index, points in exercises_in(cells):
            message = "not run: an earlier exercise failed" if failure else ""
            for index in range(start, check_index + 1):
                if failure or cells[index].cell_type != "code":
                    continue
                failure = message = _run_cell(cells[index], f"<{path.name}:{index}>", namespace)
                if "parameters" in cells[index].metadata.get("tags", []):
                    namespace.update(parameters)  # as papermill injects them
            results.append(Result(name, points, not message, message))
            start = check_index + 1
    return results


def _run_cell(cell, filename: str, namespace: dict) -> str:
    """Run one code cell as a kernel would (IPython's reading of magics); returns why it failed,
    or "" when it ran. Its printing stays out of the grade's lines."""
    from IPython.core.inputtransformer2 import TransformerManager

    source = TransformerManager().transform_cell(cell.source)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(source, filename, "exec"), namespace)
    except Exception as error:  # whatever the learner's code raised is the grade
        return _message(error)
    return ""


def _message(error: Exception) -> str:
    text = str(error).strip()
    if isinstance(error, AssertionError):
        return text or "a check failed (its assert has no message)"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@contextlib.contextmanager
def _working_directory(folder: Path):
    # As papermill runs a notebook: in its folder, so that its relative paths hold.
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def report(results: list[Result]) -> str:
    """One line per exercise, then the score."""
    lines = [f"{r.name}: passed ({r.points:g} of {r.points:g})" if r.passed
             else f"{r.name}: failed (0 of {r.points:g}): {r.message}" for r in results]
    earned = sum(r.points for r in results if r.passed)
    lines.append(f"score: {earned:g} of {sum(r.points for r in results):g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m detox_helpers.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    student = commands.add_parser("student", help="write student copies of the notebooks")
    student.add_argument("folder", nargs="?", type=Path, default=STUDENT_DIR)
    graded = commands.add_parser("grade", help="run one notebook's exercises and score them")
    graded.add_argument("notebook", type=Path)
    arguments = parser.parse_args(argv)
    if arguments.command == "student":
        written = write_student_notebooks(arguments.folder)
        print(f"{len(written)} student notebooks in {arguments.folder}")
        return 0
    if not arguments.notebook.is_file():
        parser.error(f"no notebook {arguments.notebook}")
    results = grade(arguments.notebook.resolve())
    if not results:
        parser.error(f"{arguments.notebook} has no graded exercise")
    print(report(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
