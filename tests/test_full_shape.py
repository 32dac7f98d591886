"""The full profile's path end to end on the CPU, from local folders: random-weight models of
flan-t5-base's and roberta-base's shapes (as the benchmarks build them) and DialogSum's released
test-file format (three references), few prompts and tokens. `evaluate`, `train` for 2 steps
and `compare` run through the command line, notebooks and papermill included."""

import nbformat
import pandas as pd
import pytest
from shapes import save_full_shape_models

from detox_course import __main__ as cli
from detox_helpers.settings import load_settings
from detox_helpers.tiny import fixture

# What keeps it small: 2 of the test prompts, 1 sample each, 4 new tokens, 2 summaries a step.
SMALL = dict(EVAL_SIZE="2", EVAL_SAMPLES_PER_PROMPT="1", EVAL_MAX_NEW_TOKENS="4",
             EVAL_BATCH_SIZE="1", BATCH_SIZE="2", MINI_BATCH_SIZE="1", OUTPUT_MIN_LENGTH="2",
             OUTPUT_MAX_LENGTH="4", MIN_SUMMARY_TOKENS="2", QUALITATIVE_ROWS="2",
             CHECKPOINT_EVERY="1", DEVICE="cpu")


@pytest.fixture(scope="module")
def full_shape_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("full-shape")
    dialogues = pd.DataFrame(fixture.make_dialogues()).head(30)
    released = pd.DataFrame({"fname": [f"test_{i}_1" for i in range(len(dialogues))],
                             "dialogue": dialogues["dialogue"],
                             **{f"summary{j}": dialogues["summary"] + ("" if j == 1 else f" ({j})")
                                for j in (1, 2, 3)},
                             **{f"topic{j}": dialogues["topic"] for j in (1, 2, 3)}})
    (root / "dialogsum").mkdir()
    released.to_json(root / "dialogsum" / "dialogsum.test.jsonl", orient="records", lines=True)
    policy, reward = save_full_shape_models(root / "models", list(dialogues["dialogue"]))
    return {"DETOX_PROFILE": "full", "DETOX_DATASET": str(root / "dialogsum"),
            "DETOX_DATASET_SPLIT": "test", "DETOX_POLICY_MODEL": str(policy),
            "DETOX_REWARD_MODEL": str(reward), "DETOX_ARTIFACTS_DIR": str(root / "artifacts"),
            **{f"DETOX_{name}": value for name, value in SMALL.items()}}


def test_the_full_profile_runs_from_local_folders_of_the_real_shapes(full_shape_env,
                                                                      monkeypatch, capfd):
    for name, value in full_shape_env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    layout = settings.layout
    assert cli.main(["evaluate", "--name", "baseline"]) == 0
    printed = capfd.readouterr().out
    assert "No instruct adapter set: the lab starts from plain" in printed
    assert "evaluating 2 of 6 test prompts x 1 samples on cpu (DETOX_EVAL_SIZE=-1" in printed
    assert "summaries: the first 1 of 2 took" in printed  # the time estimate, measured
    assert "expected maximum toxicity (k=1)" in printed   # the figures, printed
    baseline = pd.read_csv(layout.eval_table("baseline"))
    assert len(baseline) == 2 and baseline["rouge1"].between(0, 1).all()

    assert cli.main(["train", "--max-steps", "2"]) == 0
    assert "PPO steps: the first 1 of 2 took" in capfd.readouterr().out
    assert cli.main(["compare"]) == 0
    assert f"report: {layout.report}" in capfd.readouterr().out
    report = layout.report.read_text()
    assert "2 PPO steps" in report and "of which 2 evaluated (DETOX_EVAL_SIZE=-1" in report
    for name in ("04_ppo_training.ipynb", "05_compare.ipynb"):  # the kept copies: no loading bars
        cells = nbformat.read(layout.executed("full") / name, 4).cells
        shown = "".join(str(o) for cell in cells for o in cell.get("outputs", []))
        assert "steps" in shown and "Loading weights" not in shown


@pytest.mark.long
def test_the_full_profile_draws_the_curve_with_stand_ins_for_gold(full_shape_env, monkeypatch):
    """Notebook 07 on the full profile: no exact judge, so the independent judge and ROUGE
    stand in for the gold, and the second run trains from the real shapes too."""
    from detox_course.commands import run_notebooks

    for name, value in full_shape_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DETOX_CURVE_PROMPTS", "2")
    layout = load_settings().layout
    if not layout.stats_file.exists():  # alone, without the test above
        assert cli.main(["train", "--max-steps", "2"]) == 0
    short = {"run_name": "no-leash", "init_kl_coef": 0.0, "adaptive_kl": False, "max_ppo_steps": 2}
    run_notebooks(["07"], no_leash=short)
    curve = pd.read_csv(layout.eval_table("over-optimisation"))
    assert set(curve["run"]) == {"leash", "no leash"} and set(curve["step"]) == {0, 2}
    assert "insult" not in curve.columns and curve["gold"].between(0, 1).all()
    cells = nbformat.read(layout.executed("full") / "07_over_optimisation.ipynb", 4).cells
    shown = "".join(str(o) for cell in cells for o in cell.get("outputs", []))
    assert "no gold judge, a stand-in" in shown and "the tiny run's claims" not in shown
