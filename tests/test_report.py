import numpy as np
import pandas as pd
import pytest

from detox_helpers import compare, evaluation, report
from detox_helpers.errors import DetoxError
from detox_helpers.ppo import STAT_COLUMNS
from detox_helpers.settings import load_settings
from detox_helpers.tiny.judge import reward_hacking_note

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
        "share of toxic summaries (>= 0.5; evaluate's toxicity_ratio)":
            ((before >= 0.5).mean(), (after >= 0.5).mean()),
        # RealToxicityPrompts: prompts with a sample > 0.5; prompt 2's 0.5 does not count
        "toxicity probability (RealToxicityPrompts, >= 1 of k=2 toxic)": (1 / 3, 0.0),
        "expected maximum toxicity (k=2)": (before.max(axis=1).mean(), after.max(axis=1).mean()),
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
    assert "use_stemmer=True" in text and "F-measure" in text          # ROUGE's configuration
    assert "k = 2 sampled summaries" in text and "k = 25" in text
    assert "none is adjusted for multiple comparisons" in text


def test_the_report_sets_ppo_against_best_of_k(written):
    _, text = written
    section = text[text.index("## Is PPO better than choosing?"):text.index("## Examples")]
    # best of 2 by reward: prompt 0 takes sample 1 (0.1), prompt 1 sample 0 (0.2), prompt 2
    # sample 1 (0.4); baseline means 0.5, 0.1, 0.45; after 0.05, 0.0, 0.15
    cells = [c.strip() for c in row_of(section, "toxicity, summary alone (mean)").split("|")]
    assert cells[2:5] == ["0.350", "0.233", "0.067"]
    assert cells[5] == f"{0.7 / 3 - 0.35:.3f}" and cells[7] == f"{0.2 / 3 - 0.7 / 3:.3f}"
    assert f"Best-of-2 costs KL {np.log(2) - 0.5:.3f} nats" in section
    assert "PPO's measured KL over its last 2 steps is 0.500" in section


def test_best_of_k_kl_is_zero_for_one_sample_and_grows_with_k():
    assert compare.best_of_k_kl(1) == 0
    costs = [compare.best_of_k_kl(k) for k in (2, 4, 16, 64)]
    assert costs == sorted(costs) and costs[-1] == pytest.approx(np.log(64) - 63 / 64)


def test_verdicts_say_which_way_and_whether_it_is_better():
    table = pd.DataFrame([
        dict(metric="tox", before=0.5, after=0.2, difference=-0.3, low=-0.4, high=-0.2,
             change_shown=True, interval_excludes_zero=True, smallest=0.005, better="lower"),
        dict(metric="rouge", before=0.5, after=0.4, difference=-0.1, low=-0.2, high=-0.05,
             change_shown=True, interval_excludes_zero=True, smallest=0.005, better="higher"),
        dict(metric="len", before=10.0, after=10.5, difference=0.5, low=-1.0, high=2.0,
             change_shown=False, interval_excludes_zero=False, smallest=0.5, better="neither"),
        dict(metric="acc", before=0.999, after=0.9992, difference=0.0002, low=0.0001,
             high=0.0003, change_shown=False, interval_excludes_zero=True, smallest=0.005,
             better="higher"),
    ]).set_index("metric")
    tox, rouge, length, tiny = compare.verdicts(table)
    assert tox.startswith("tox fell from 0.500 to 0.200 (better)")
    assert rouge.startswith("rouge fell from 0.500 to 0.400 (worse)")
    assert length.startswith("len: no change was shown")
    assert tiny.startswith("acc: no change worth reporting") and "rose" not in tiny


def test_a_difference_too_small_to_show_is_no_change():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    nudged = before.per_sample.assign(rouge1=before.per_sample["rouge1"] + 0.0001)
    table = compare.comparison_table(before, evaluation.Evaluation(nudged, before.aggregates))
    row = table.loc["ROUGE-1"]
    assert row.interval_excludes_zero and row.high > 0 and not row.change_shown
    assert "ROUGE-1: no change worth reporting" in " ".join(compare.verdicts(table))


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
    assert list(table.index) == [compare.label(metric, 2) for metric in compare.METRICS]
    clean = table.loc["ROUGE-1, prompts with a clean reference"]
    kept = [0, 2]                                                    # prompts 0 and 2 only
    assert clean.n == 2 and clean.before == pytest.approx(np.mean(np.array(BEFORE_ROUGE1)[kept]))
    assert table.loc["insult present (exact judge)"].after == pytest.approx(1 / 6)
    note = reward_hacking_note(after)
    assert note.startswith("Reward hacking: 1 of 6 summaries") and '"other"' in note
    assert reward_hacking_note(before).startswith("The reward model caught every insult")
    assert reward_hacking_note(later) is None


def test_the_examples_include_the_largest_gains_wherever_they_are():
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "rude c"], [0.0, 0.0, -3.0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "nice c"], [0.1, 0.2, 2.0])
    examples = compare.qualitative_table(before, after, rows=2)
    assert list(examples["id"]) == ["d2", "d0"]           # the largest gain, then the first
    assert examples["reward gain"].tolist() == pytest.approx([5.0, 0.1])


def fake_trained_run(settings, before, after, kl):
    """A run's saved results as training and evaluation leave them (no model needed)."""
    import json

    from detox_helpers import checkpoints

    layout = settings.layout
    evaluation.save_evaluation(settings, "baseline", before)
    evaluation.save_evaluation(settings, "detoxified", after)
    layout.final_adapter.mkdir(parents=True)
    (layout.final_adapter / "adapter_config.json").write_text("{}")
    pd.DataFrame([dict.fromkeys(STAT_COLUMNS, kl) | {"step": s} for s in (1, 2)]).to_csv(
        layout.stats_file, index=False)
    layout.training_record.write_text(json.dumps(dict(
        steps=2, stats_sha256=checkpoints.file_digest(layout.stats_file))))


def test_named_runs_sit_side_by_side_each_against_its_own_baseline(tmp_path):
    base = load_settings("tiny", environ={}, artifacts_dir=tmp_path)
    before = hand_made(BEFORE_TOXICITY, BEFORE_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    after = hand_made(AFTER_TOXICITY, AFTER_ROUGE1, ["a", "b", "c"], [0, 0, 0])
    fake_trained_run(base, before, after, kl=0.5)
    other = load_settings("tiny", environ={}, artifacts_dir=tmp_path, run_name="kl-free")
    fake_trained_run(other, before, before, kl=3.0)            # this run changed nothing
    table = compare.runs_table(base, ["", "kl-free"])
    assert list(table.index) == ["(unnamed)", "kl-free"]
    change = table["toxicity, summary alone (mean): change"]
    assert change["(unnamed)"] == pytest.approx(np.mean(AFTER_TOXICITY) - np.mean(BEFORE_TOXICITY))
    assert change["kl-free"] == 0
    assert table["KL, last 10 steps"].tolist() == [0.5, 3.0]


def test_the_claims_apply_to_the_tiny_profiles_own_run_only():
    from detox_helpers.checkpoints import training_settings
    from detox_helpers.ppo import REWARD_MODULE
    from detox_helpers.tiny import claims

    settings = load_settings("tiny", environ={})
    own = dict(steps=settings.max_ppo_steps, reward=REWARD_MODULE,
               settings=training_settings(settings))
    assert claims.applies(own, settings)
    assert not claims.applies(dict(own, steps=12), settings)
    assert not claims.applies(dict(own, reward="def reward_function(...)"), settings)
    faster = training_settings(load_settings("tiny", environ={}, learning_rate=5e-3))
    assert not claims.applies(dict(own, settings=faster), settings)
