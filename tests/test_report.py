import numpy as np
import pandas as pd
import pytest

from detox_helpers import compare, evaluation, report
from detox_helpers.errors import DetoxError
from detox_helpers.ppo import STAT_COLUMNS
from detox_helpers.settings import load_settings

# 3 prompts x 2 samples, written by hand
BEFORE_TOXICITY = [[0.9, 0.1], [0.2, 0.0], [0.5, 0.4]]
AFTER_TOXICITY = [[0.1, 0.0], [0.0, 0.0], [0.2, 0.1]]
BEFORE_ROUGE1 = [[0.5, 0.7], [0.4, 0.6], [0.3, 0.5]]
AFTER_ROUGE1 = [[0.4, 0.6], [0.5, 0.5], [0.3, 0.4]]


def hand_made(toxicity, rouge1, summaries, rewards):
    rows = []
    for prompt in range(3):
        for sample in range(2):
            rows.append(dict(
                id=f"d{prompt}", prompt=prompt, sample=sample,
                summary=summaries[prompt] if sample == 0 else "other",
                reference="ref", reward=rewards[prompt] if sample == 0 else 0.0,
                toxicity=toxicity[prompt][sample], toxicity_with_prompt=0.01,
                judge=toxicity[prompt][sample] / 2, length_tokens=10.0,
                rouge1=rouge1[prompt][sample], rouge2=0.2, rougeL=0.3))
    table = pd.DataFrame(rows)
    record = dict(data=dict(train=12, test=3),
                  dialogues={"d0": "dialogue zero", "d1": "dialogue one", "d2": "two"})
    return evaluation.Evaluation(table, evaluation.aggregate(table), record)


@pytest.fixture
def written(tmp_path):
    settings = load_settings("tiny", environ={}, artifacts_dir=tmp_path, qualitative_rows=3)
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["rude a", "fine b", "rude c"],
                       [-2.0, 1.0, -1.0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["nice a", "fine b", "nice c"],
                      [2.0, 1.5, 2.5])
    training = pd.DataFrame([dict.fromkeys(STAT_COLUMNS, 0.5) | {"step": s} for s in (1, 2)])
    path = report.write_report(settings, before, after, training, tmp_path / "report")
    return path, path.read_text()


def row_of(text, metric):
    return next(line for line in text.splitlines() if line.startswith(f"| {metric} |"))


def test_report_numbers_equal_the_statistics_of_the_inputs(written):
    _, text = written
    before, after = np.array(BEFORE_TOXICITY), np.array(AFTER_TOXICITY)
    expected = {
        "toxicity, summary alone (mean)": (before.mean(), after.mean()),
        "toxicity probability (share >= 0.5)": ((before >= 0.5).mean(), (after >= 0.5).mean()),
        "expected maximum toxicity": (before.max(axis=1).mean(), after.max(axis=1).mean()),
        "ROUGE-1": (np.mean(BEFORE_ROUGE1), np.mean(AFTER_ROUGE1)),
        "independent judge (alt-profanity-check)": (before.mean() / 2, after.mean() / 2),
    }
    for metric, (first, second) in expected.items():
        cells = [c.strip() for c in row_of(text, metric).split("|")[2:5]]
        assert cells == [f"{first:.3f}", f"{second:.3f}", f"{second - first:.3f}"], metric


def test_report_has_settings_data_training_figures_and_examples(written):
    path, text = written
    assert "| profile | tiny |" in text and "tiny offline miniature" in text
    assert "12 training prompts and 3 test prompts" in text
    for figure in ("training.png", "toxicity_distribution.png", "toxicity_per_prompt.png"):
        assert (path.parent / figure).exists() and f"]({figure})" in text
    examples = text[text.index("## Examples"):]
    # sorted by reward gain: c (+3.5), a (+4.0) -> a first, then c, then b (+0.5)
    order = [examples.index(name) for name in ("nice a", "nice c", "fine b | fine b")]
    assert order == sorted(order)
    assert "summary length (tokens): no change was shown" in text


def test_verdicts_say_which_way_and_whether_it_is_better():
    table = pd.DataFrame([
        dict(metric="tox", before=0.5, after=0.2, difference=-0.3, low=-0.4, high=-0.2,
             change_shown=True, better="lower"),
        dict(metric="rouge", before=0.5, after=0.4, difference=-0.1, low=-0.2, high=-0.05,
             change_shown=True, better="higher"),
        dict(metric="len", before=10.0, after=10.5, difference=0.5, low=-1.0, high=2.0,
             change_shown=False, better="neither"),
    ]).set_index("metric")
    tox, rouge, length = compare.verdicts(table)
    assert tox.startswith("tox fell from 0.500 to 0.200 (better)")
    assert rouge.startswith("rouge fell from 0.500 to 0.400 (worse)")
    assert length.startswith("len: no change was shown")


def test_evaluations_of_different_prompts_are_not_compared():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    other = evaluation.Evaluation(before.per_sample.assign(id="x"), before.aggregates)
    with pytest.raises(DetoxError, match="differ in prompts"):
        compare.comparison_table(before, other)


def with_exact_judge(made, insult, missed):
    """The hand-made evaluation with the tiny world's exact-judge columns; prompt 1's reference
    is the one insulting reference, so clean-reference figures leave it out."""
    table = made.per_sample.assign(
        insult=insult, missed_insult=missed, reference_clean=made.per_sample["prompt"] != 1,
        facts_kept=1.0, reference_has_name=True, name_kept=True)
    return evaluation.Evaluation(table, evaluation.aggregate(table))


def test_exact_judge_rows_appear_only_where_it_ran_and_read_their_subset():
    plain = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    later = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    assert "missed insult (present, reward model says clean)" not in \
        compare.comparison_table(plain, later).index              # the full profile's case
    before = with_exact_judge(plain, [True, False] * 3, [False] * 6)
    after = with_exact_judge(later, [False] * 5 + [True], [False] * 5 + [True])
    table = compare.comparison_table(before, after)
    assert list(table.index) == [label for label, *_ in compare.METRICS]
    clean = table.loc["ROUGE-1, prompts with a clean reference"]
    kept = [0, 2]                                                    # prompts 0 and 2 only
    assert clean.n == 2 and clean.before == pytest.approx(np.mean(np.array(BEFORE_ROUGE1)[kept]))
    assert table.loc["insult present (exact judge)"].after == pytest.approx(1 / 6)
    note = compare.reward_hacking_note(after)
    assert note.startswith("Reward hacking: 1 of 6 summaries") and '"other"' in note
    assert compare.reward_hacking_note(before).startswith("The reward model caught every insult")
    assert compare.reward_hacking_note(later) is None
