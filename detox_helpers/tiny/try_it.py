"""The notebooks' "Try it" items as changes to their cells, so that the tests and
benchmarks/try_it.py run each one exactly as its text tells the learner to, and check (tests)
or measure (the benchmark) the outcome the text quotes for the tiny world.

An item is (notebook, {text in a code cell: what the learner puts in its place}); what the learner
types must stand in that notebook's "Try it" text, whitespace aside, or the item refuses to run.
"""

from __future__ import annotations

from pathlib import Path

from ..unattended import notebook

POSITION_REWARD = '''from transformers import pipeline
classify = pipeline("text-classification", model=reward_model.model,
                    tokenizer=reward_model.tokenizer, top_k=None,
                    function_to_apply="none", device=reward_model.device)
def reward_function(prompts, summaries):
    return [scores[0]["score"] for scores in classify(summaries)]   # position [0]'''

INSULTING = '    "insulting": "Anna books a table. What a stupid idiot Anna is.",\n'
ITEMS = {
    "softmax": ("02", {'top_k=None, function_to_apply="none")': "top_k=None)"}),
    "blind-spots": ("02", {INSULTING: INSULTING
                           + '    "moron": "Anna books a table. Anna is a moron.",\n'
                           '    "dimwit": "Anna books a table. What a dimwit Anna is.",\n'
                           '    "awful": "Anna books a table. You are awful, Anna.",\n'
                           '    "hate": "Anna books a table. I hate Anna.",\n'}),
    "insulting-prompt": ("02", {"queries = [query] * len(summaries)":
                                'queries = ["What a stupid jerk. " + query] * len(summaries)'}),
    "kl-free": ("04", {"overrides = {}": 'overrides = {"run_name": "kl-free", "init_kl_coef": 0.0, '
                                         '"adaptive_kl": False}'}),
    "lr-x10": ("04", {"overrides = {}": 'overrides = {"run_name": "lr-x10", '
                                        '"learning_rate": 5e-3}'}),
    "position-0": ("04", {"overrides = {}": 'overrides = {"run_name": "position-0"}',
                          "reward_function = None": POSITION_REWARD}),
    "evaluate-run": ("05", {"overrides = {}": 'overrides = {"run_name": "kl-free"}'}),
    "compare-runs": ("05", {"compare_runs = []": 'compare_runs = ["", "kl-free"]'}),
    "best-of-8": ("05", {"overrides = {}": 'overrides = {"eval_samples_per_prompt": 8}'}),
    "few-prompts": ("05", {"overrides = {}": 'overrides = {"eval_size": 11}'}),
    "rloo-k2": ("06", {"overrides = {}": 'overrides = {"rloo_k": 2}'}),
    "rloo-k8": ("06", {"overrides = {}": 'overrides = {"rloo_k": 8}'}),
    "rloo-kl-free": ("06", {"overrides = {}": 'overrides = {"init_kl_coef": 0.0}'}),
    "rloo-position-0": ("06", {"reward_function = None": POSITION_REWARD}),
    "weak-leash": ("07", {'"run_name": "no-leash", "init_kl_coef": 0.0':
                          '"run_name": "weak-leash", "init_kl_coef": 0.05'}),
    "more-prompts": ("07", {"overrides = {}": 'overrides = {"curve_prompts": 88}'}),
}


def try_it_text(number: str) -> str:
    """Notebook `number`'s "## Try it" text, its whitespace collapsed."""
    import nbformat

    cells = nbformat.read(notebook(number), as_version=4).cells
    return " ".join(next(c.source for c in cells if c.cell_type == "markdown"
                         and c.source.startswith("## Try it")).split())


def with_edits(number: str, edits: dict, folder: Path) -> Path:
    """A copy of notebook `number` in `folder` (made if missing) with `edits` made: each key
    must stand once in the notebook's code, and its replacement in the "Try it" text."""
    import nbformat

    told, book = try_it_text(number), nbformat.read(notebook(number), as_version=4)
    for old, new in edits.items():
        added = new.removeprefix(old)  # "add these lines after ...": the lines added
        if " ".join(added.split()) not in told:
            raise ValueError(f"{new!r} is not in notebook {number}'s Try it")
        cells = [c for c in book.cells if c.cell_type == "code" and old in c.source]
        if len(cells) != 1 or cells[0].source.count(old) != 1:
            raise ValueError(f"{old!r} does not stand once in notebook {number}'s code")
        cells[0].source = cells[0].source.replace(old, new)
    path = Path(folder) / notebook(number).name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(book, path)
    return path


def item(name: str, folder: Path) -> Path:
    """Item `name` of ITEMS as a notebook in `folder`."""
    number, edits = ITEMS[name]
    return with_edits(number, edits, folder)
