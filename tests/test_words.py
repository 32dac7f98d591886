"""The verdicts' words against their figures: property tests over generated figure sets (falls,
rises, no change, intervals touching zero, gains and costs in each kept figure, two methods in
either order), and the words at each boundary."""

import re

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from detox_helpers import compare, evaluation, verdicts, words
from detox_helpers.tiny.judge import EXACT_JUDGE

FEW = settings(max_examples=80, deadline=None)
NUMBER = r"(-?\d+\.\d+)"
# every figure, the exact judge's included; the kept ones (Metric.role) and their labels at k = 4
ALL = evaluation.metrics_with(EXACT_JUDGE)
KEPT = [metric.key for metric in compare.kept_metrics(ALL)]
LABELS = {key: evaluation.label(compare.metric_of(key, ALL), 4) for key in KEPT}


def printed(value):
    return float(f"{value:.3f}")


def sign_word(value, words_for=("fell", "rose", "did not move")):
    """The word a printed difference calls for (the tests' own reading, not words.py's)."""
    return words_for[2] if printed(value) == 0 else words_for[0 if value < 0 else 1]


# differences and interval bounds near the printed precision, where words go wrong
NEAR_ZERO = st.sampled_from([0.0, 0.0001, -0.0001, 0.0004, -0.0004, 0.0006, -0.0006, 0.003,
                             -0.003])


@st.composite
def paired_change(draw, scale=1.0):
    """(before, after, difference, low, high) of one figure: a fall, a rise or none, with an
    interval that may touch or cross zero."""
    before = draw(st.floats(0.01, 1.0)) * scale
    difference = draw(st.one_of(st.floats(-0.5, 0.5), NEAR_ZERO)) * scale
    low = difference - draw(st.one_of(st.floats(0, 0.3), st.just(0.0))) * scale
    high = difference + draw(st.one_of(st.floats(0, 0.3), st.just(0.0))) * scale
    bound = draw(st.sampled_from(["as drawn", "low near zero", "high near zero"]))
    if bound == "low near zero":
        low = min(draw(NEAR_ZERO), difference)
    elif bound == "high near zero":
        high = max(draw(NEAR_ZERO), difference)
    return before, before + difference, difference, low, high


def expected_kind(difference, low, high, better, smallest):
    """Cost, gain, change, too small or not shown, read from the figures as printed."""
    if not (printed(low) > 0 or printed(high) < 0):
        return "not shown"
    if abs(difference) < smallest:
        return "too small"
    if better == "neither":
        return "change"
    return "gain" if (difference > 0) == (better == "higher") else "cost"


@st.composite
def comparison(draw):
    """A comparison table: toxicity, the judge and any of the kept figures."""
    keys = ["toxicity", "judge"] + draw(st.lists(st.sampled_from(KEPT), unique=True))
    rows = []
    for key in keys:
        metric = compare.metric_of(key, ALL)
        before, after, difference, low, high = draw(
            paired_change(scale=20.0 if key == "length" else 1.0))
        rows.append(dict(metric=key, before=before, after=after, difference=difference,
                         low=low, high=high, better=metric.better, smallest=metric.smallest,
                         label=evaluation.label(metric, 4), role=metric.role,
                         instead_of=metric.instead_of))
    return pd.DataFrame(rows).set_index("metric")


def best_of_k(difference, low, high):
    return pd.DataFrame([{"metric": "toxicity", "best-of-k": 0.2, "PPO after": 0.2 + difference,
                          "PPO - best-of-k": difference, "low (PPO)": low,
                          "high (PPO)": high}]).set_index("metric")


@FEW
@given(st.floats(0.001, 1.0), st.floats(0.0, 1.0))
def test_the_share_of_the_start_is_after_over_before(before, after):
    said = words.share_of_start(before, after)
    left = 100 * after / before
    found = re.fullmatch(r"(?:(down|up) (\d+)%, to )?(\d+)% of where it started", said)
    assert found, said
    way, change, to = found.groups()
    assert abs(int(to) - left) <= 0.5 + 1e-9                  # what is left: after / before
    if way is None:
        assert abs(left - 100) <= 0.5 + 1e-9
    else:
        assert (way == "down") == (after < before)
        assert abs(int(change) - abs(left - 100)) <= 0.5 + 1e-9   # the size of the change


@FEW
@given(comparison(), paired_change())
def test_every_figure_in_the_verdict_is_worded_as_its_numbers_say(table, versus):
    _, _, difference, low, high = versus
    text = verdicts.verdict(table, best_of_k(difference, low, high), kl=0.5, k=4)
    groups = {"cost": "What it cost", "gain": "What it gained",
              "change": "Neither better nor worse",
              "too small": "Too small to matter", "not shown": "No change shown"}
    headers = {header: kind for kind, header in groups.items()}
    for key in ["toxicity", "judge", *verdicts.kept_figures(table)]:
        row = table.loc[key]
        name = "toxicity" if key == "toxicity" else evaluation.label(compare.metric_of(key, ALL),
                                                                     4)
        found = re.search(re.escape(name) + rf" (fell|rose|did not move) {NUMBER} -> {NUMBER} "
                          rf"\(([+-]\d+\.\d+) \[([+-]\d+\.\d+), ([+-]\d+\.\d+)\]: ([^)]+)\)", text)
        assert found, (name, text)
        word, *figures, certainty = found.groups()
        assert word == sign_word(row.difference), (name, text)
        assert [float(f) for f in figures] == [printed(v) for v in (
            row.before, row.after, row.difference, row.low, row.high)]
        kind = expected_kind(row.difference, row.low, row.high, row.better, row.smallest)
        assert (certainty == "a change shown") == (kind in ("gain", "cost", "change")), text
        if key in KEPT:  # under the header of its kind, and no other
            before_it = text[:found.start()]
            header = max(headers, key=lambda h: before_it.rfind(f"{h}:"))
            assert headers[header] == kind, (name, kind, text)
    shown_fall = printed(high) < 0
    assert ("PPO beat it" in text) == shown_fall
    assert ("PPO lost to it" in text) == (printed(low) > 0)


def methods_table(draw_change, k=4):
    """methods_table's shape: the start, best-of-k and two trained methods."""
    start = 0.4
    rows = [dict(method="starting policy", toxicity=start, change=0.0, low=0.0, high=0.0)]
    for name in (f"best-of-{k}", "PPO", "RLOO"):
        _, _, difference, low, high = draw_change()
        rows.append(dict(method=name, toxicity=start + difference, change=difference, low=low,
                         high=high))
    for row in rows:
        for key in KEPT:
            row[key] = draw_change()[0]
    return pd.DataFrame(rows).set_index("method")


@FEW
@given(st.data())
def test_two_methods_are_worded_alike_in_either_order(data):
    table = methods_table(lambda: data.draw(paired_change()))
    _, _, difference, low, high = data.draw(paired_change())
    versus = dict(difference=difference, low=low, high=high)
    swapped = dict(difference=-difference, low=-high, high=-low)
    one = verdicts.methods_in_words(table, "PPO", "RLOO", versus, LABELS)
    other = verdicts.methods_in_words(table, "RLOO", "PPO", swapped, LABELS)
    for text in (one, other):
        for name in ("PPO", "RLOO"):
            row = table.loc[name]
            found = re.search(rf"{name} (lowered|raised|did not move) the toxicity {NUMBER} -> "
                              rf"{NUMBER} \(([+-]\d+\.\d+)", text)
            assert found.group(1) == sign_word(row.change, ("lowered", "raised",
                                                            "did not move")), text
            for key in KEPT:
                label = LABELS[key]
                said = re.search(re.escape(label) + rf" (fell|rose|did not move) {NUMBER} -> "
                                 rf"{NUMBER}", text[found.start():])
                moved = printed(row[key]) - printed(table.iloc[0][key])
                assert said.group(1) == sign_word(moved), (label, text)
    winner = ("RLOO" if printed(high) < 0 else "PPO" if printed(low) > 0 else None)
    for text in (one, other):
        assert (f"{winner} ends less toxic" in text) if winner else "is shown" in text
    for key in KEPT:  # RLOO lower than PPO's <=> PPO higher than RLOO's
        label = LABELS[key]
        first = re.search(re.escape(label) + r" (lower than|higher than|level with) PPO's", one)
        second = re.search(re.escape(label) + r" (lower than|higher than|level with) RLOO's",
                           other)
        pairs = {"lower than": "higher than", "higher than": "lower than",
                 "level with": "level with"}
        assert pairs[first.group(1)] == second.group(1)
        assert first.group(1) == sign_word(printed(table.loc["RLOO", key])
                                           - printed(table.loc["PPO", key]),
                                           ("lower than", "higher than", "level with"))


# The boundaries, one example each (a property test reaches them only by chance): the words on
# either side of a printed zero, a share of exactly 0% or 1%, a bound exactly at zero or at NARROW.
BOUNDARIES = [
    (words.share_of_start, (0.0, 0.1), ""),            # no start to take a share of
    (words.share_of_start, (0.5, -0.1), ""),           # a figure below zero has no share
    (words.share_of_start, (1.0, 1.001), "100% of where it started"),
    (words.share_of_start, (1.0, 1.01), "up 1%, to 101% of where it started"),
    (words.share_of_start, (1.0, 0.99), "down 1%, to 99% of where it started"),
    (words.certainty, ("not shown", 0.0, 0.02), "includes zero"),
    (words.certainty, ("not shown", -0.02, 0.0), "includes zero"),
    (words.certainty, ("not shown", 0.0002, 0.02), "reaches zero at three decimals"),
    (words.narrow, (0.002, 0.3), " (narrowly: its interval ends 0.002 from zero)"),
    (words.narrow, (-0.3, -0.002), " (narrowly: its interval ends 0.002 from zero)"),
    (words.narrow, (0.005, 0.3), ""),                  # NARROW itself is not narrow
    (words.narrow, (-0.3, -0.0049), " (narrowly: its interval ends 0.005 from zero)"),
    (words.direction, (-0.0004,), "did not move"),     # prints as -0.000
    (words.direction, (-0.0006,), "fell"),
    (words.excludes_zero, (0.0006, 0.1), True),
    (words.excludes_zero, (0.0004, 0.1), False),
    (words.excludes_zero, (-0.1, -0.0006), True),
    (words.excludes_zero, (-0.1, -0.0004), False),
    (words.kind_of_change, (0.02, 0.01, 0.03, "lower", 0.02), "cost"),   # at its smallest
    (words.kind_of_change, (-0.02, -0.03, -0.01, "higher", 0.02), "cost"),
    (words.kind_of_change, (0.0199, 0.01, 0.03, "lower", 0.02), "too small"),
]


def test_the_words_at_each_boundary():
    for function, arguments, expected in BOUNDARIES:
        assert function(*arguments) == expected, (function.__name__, arguments)
