"""The arithmetic a learner reads in the notebooks, read from the notebooks themselves and run on
inputs whose answers are worked out by hand: a wrong sign or denominator in a notebook's lines
fails a named test here, not only a long run's direction.

Statements are found by the variable they assign (cells are reshaped often), and a missing one
fails with its name."""

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def statements(number: str, names: list[str]) -> str:
    """The source of the statements of notebook `number` that assign or define each of `names`
    (the first of each, wherever it stands, inside a loop too), in the order of `names`."""
    [path] = NOTEBOOKS.glob(f"{number}_*.ipynb")
    found = {}
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # magics and shell lines are not Python; blank them, keeping the line numbers
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.name in names:
                found.setdefault(node.name, ast.get_source_segment(source, node))
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name) and name.id in names:
                            found.setdefault(name.id, ast.get_source_segment(source, node))
    missing = [name for name in names if name not in found]
    assert not missing, f"{path.name} no longer assigns {missing}: the test reads those lines"
    return "\n".join(dict.fromkeys(found[name] for name in names))


def run(number: str, names: list[str], **inputs) -> dict:
    namespace = dict(inputs)
    exec(compile(statements(number, names), f"notebook {number}", "exec"), namespace)
    return namespace


RLOO = ["kl", "shaped", "others", "advantages", "loss"]


def rloo(rewards, logprobs, reference, k, beta):
    logprobs = torch.tensor(logprobs, requires_grad=True)
    return run("06", RLOO, torch=torch, rewards=torch.tensor(rewards), logprobs=logprobs,
               reference=torch.tensor(reference), k=k, beta=beta, device="cpu"), logprobs


def test_notebook_06_rloo_leave_one_out_baseline_divides_by_k_minus_1():
    # one prompt, k=3, no KL: rewards 3, 0, 0. Each sample's baseline is the mean of the
    # others: (0 + 0) / 2 = 0 and (3 + 0) / 2 = 1.5 twice; advantages 3, -1.5, -1.5
    values, _ = rloo([3.0, 0.0, 0.0], [-1.0] * 3, [-1.0] * 3, k=3, beta=0.5)
    assert values["others"].view(-1).tolist() == pytest.approx([0.0, 1.5, 1.5])
    assert values["advantages"].tolist() == pytest.approx([3.0, -1.5, -1.5])


def test_notebook_06_kl_penalty_lowers_the_reward_of_drifting_summaries():
    # two prompts x k=3, beta 2. KL per summary = log-prob under the policy - under the
    # reference: 0.5, -0.5, -1.5 for the first prompt, 0 for the second.
    # shaped = reward - 2 x KL: 1 - 1 = 0, 2 + 1 = 3, 3 + 3 = 6; and 0, 0, 3.
    # baselines (sum - own) / 2: 4.5, 3, 1.5; and 1.5, 1.5, 0
    values, logprobs = rloo([1.0, 2.0, 3.0, 0.0, 0.0, 3.0], [-1.0, -2.0, -3.0, -1.0, -1.0, -1.0],
                            [-1.5, -1.5, -1.5, -1.0, -1.0, -1.0], k=3, beta=2.0)
    assert values["kl"].tolist() == pytest.approx([0.5, -0.5, -1.5, 0.0, 0.0, 0.0])
    assert values["shaped"].tolist() == [pytest.approx([0, 3, 6]), pytest.approx([0, 0, 3])]
    assert values["advantages"].tolist() == pytest.approx([-4.5, 0.0, 4.5, -1.5, -1.5, 3.0])
    # the penalty is a number, not a path for gradients: only the log-probabilities train
    assert not values["advantages"].requires_grad
    # loss = -mean(advantage x log-prob): -(4.5 + 0 - 13.5 + 1.5 + 1.5 - 3) / 6 = 1.5, and its
    # gradient raises the log-probability of each sample with a positive advantage
    assert values["loss"].item() == pytest.approx(1.5)
    values["loss"].backward()
    assert (-logprobs.grad * 6).tolist() == pytest.approx([-4.5, 0.0, 4.5, -1.5, -1.5, 3.0])


def classify_as(scores: dict):
    """A text-classification pipeline's answer for `scores` ({label: logit}): labels sorted by
    score, highest first, as the pipeline returns them."""
    ranked = sorted(scores.items(), key=lambda item: -item[1])

    def classify(texts):
        return [[dict(label=label, score=score) for label, score in ranked] for _ in texts]
    return classify


@pytest.mark.parametrize("labels", [{0: "hate", 1: "nothate"}, {0: "NOTHATE", 1: "HATE"}])
def test_notebook_02_finds_the_labels_by_name_in_any_order_or_case(labels):
    values = run("02", ["label_index", "nothate", "hate"], labels=labels)
    by_hand = {name.lower(): index for index, name in labels.items()}
    assert (values["nothate"], values["hate"]) == (by_hand["nothate"], by_hand["hate"])


def test_notebook_02_reward_by_label_is_the_nothate_score_wherever_it_is_ranked():
    # an insult: hate scores 2.0 and comes first; the reward is nothate's -1.0, not [0]'s 2.0
    values = run("02", ["by_label", "by_position"], texts={"insult": "x"},
                 classify=classify_as({"nothate": -1.0, "hate": 2.0}))
    assert values["by_label"] == {"insult": -1.0}
    assert values["by_position"] == {"insult": 2.0}


def evaluation_of(toxicity: dict):
    """An evaluation's per-sample table from {prompt: [toxicity of each sample]}, its rows in
    reverse order, as a notebook reads it (`.per_sample`)."""
    rows = [dict(prompt=prompt, sample=sample, toxicity=value)
            for prompt, values in toxicity.items() for sample, value in enumerate(values)]
    return SimpleNamespace(per_sample=pd.DataFrame(rows[::-1]))


class RecordingGenerator:
    """numpy's generator, the sizes of its `integers` draws kept."""

    def __init__(self, seed: int):
        self.generator, self.sizes = np.random.default_rng(seed), []

    def integers(self, *args, size=None, **kwargs):
        self.sizes.append(size)
        return self.generator.integers(*args, size=size, **kwargs)


def test_notebook_05_paired_difference_by_hand():
    # Per-prompt means: before 0.3 and 0.7, after 0.1 and 0.4; differences -0.2 and -0.3. A
    # resample of the 2 prompts has the mean -0.2, -0.25 or -0.3 (chances 1/4, 1/2, 1/4), so
    # over 2,000 draws the 95% interval runs from -0.3 to -0.2 and excludes zero. Unpaired (or
    # after pairing prompt 0 with prompt 1) the differences would reach -0.7 or +0.1.
    values = run("05", ["per_prompt_toxicity", "toxicity_before", "toxicity_after",
                        "paired_interval", "paired", "differences", "rng", "low", "high"],
                 np=np, pd=pd, settings=SimpleNamespace(seed=0),
                 before=evaluation_of({0: [0.2, 0.4], 1: [0.6, 0.8]}),
                 after=evaluation_of({0: [0.1, 0.1], 1: [0.5, 0.3]}))
    assert values["toxicity_before"].to_dict() == pytest.approx({0: 0.3, 1: 0.7})
    assert values["differences"].tolist() == pytest.approx([-0.2, -0.3])
    assert (values["low"], values["high"]) == pytest.approx((-0.3, -0.2))
    # the interval's function draws 2,000 sets of as many prompt positions as there are prompts
    recording = RecordingGenerator(0)
    interval = values["paired_interval"](np.array([0.3, 0.7]), np.array([0.1, 0.4]), recording)
    assert recording.sizes == [(2000, 2)] and interval == pytest.approx((-0.3, -0.2))
