"""Figures into words, in one place: verdicts.py words every figure here, from the figure as
printed, so a sentence cannot say more than the digits printed beside it.
"""

from __future__ import annotations

DIGITS = 3  # every verdict prints its figures with three decimals
# A bound nearer zero than this is said to be narrow: it would print as zero with two decimals.
NARROW = 0.005

FALLS = ("fell", "rose", "did not move")
LOWERS = ("lowered", "raised", "did not move")


def printed(value: float) -> float:
    """The value as it reads on the page (so "-0.000" reads as zero)."""
    return float(f"{value:.{DIGITS}f}") + 0.0


def number(value: float) -> str:
    return f"{printed(value):.{DIGITS}f}"


def signed(value: float) -> str:
    return f"{printed(value):+.{DIGITS}f}"


def interval(low: float, high: float) -> str:
    return f"[{signed(low)}, {signed(high)}]"


def excludes_zero(low: float, high: float) -> bool:
    """Whether the interval, as printed, leaves zero out: a bound that prints as 0.000 does not."""
    return printed(low) > 0 or printed(high) < 0


def direction(difference: float, words: tuple[str, str, str] = FALLS) -> str:
    """The verb for a change, from the sign of the difference as printed."""
    shown = printed(difference)
    return words[2] if shown == 0 else words[0] if shown < 0 else words[1]


def share_of_start(before: float, after: float) -> str:
    """"down 80%, to 20% of where it started": the change as a share of the start, then what is
    left, after / before. Empty where the start is not a positive figure."""
    if not before > 0 or after < 0:
        return ""
    left = after / before
    change = round(100 * (left - 1))
    if change == 0:
        return f"{left:.0%} of where it started"
    return f"{'down' if change < 0 else 'up'} {abs(change)}%, to {left:.0%} of where it started"


def kind_of_change(difference: float, low: float, high: float, better: str, smallest: float) -> str:
    """What a paired change is: "not shown" (its printed interval reaches zero), "too small"
    (shown, but under the figure's smallest meaningful difference), "gain" or "cost" (the way
    `better`, "higher" or "lower", says), or "change" (a figure with no better way)."""
    if not excludes_zero(low, high):
        return "not shown"
    if abs(difference) < smallest:
        return "too small"
    if better not in ("higher", "lower"):
        return "change"
    return "gain" if (difference > 0) == (better == "higher") else "cost"


def certainty(kind: str, low: float, high: float) -> str:
    """What the interval lets us say, for kind_of_change's answer."""
    if kind == "too small":
        return "too small to matter"
    if kind != "not shown":
        return "a change shown"
    if low <= 0 <= high:
        return "includes zero"
    return "reaches zero at three decimals"


def change(name: str, before: float, after: float, difference: float, low: float,
           high: float, kind: str) -> str:
    """"names kept fell 0.975 -> 0.850 (-0.125 [-0.200, -0.050]: a change shown)"."""
    return (f"{name} {direction(difference)} {number(before)} -> {number(after)} "
            f"({signed(difference)} {interval(low, high)}: {certainty(kind, low, high)})")


def moved(before: float, after: float) -> str:
    """"fell 0.947 -> 0.917": the verb from the figures as printed."""
    return f"{direction(printed(after) - printed(before))} {number(before)} -> {number(after)}"


def narrow(low: float, high: float) -> str:
    """" (narrowly: its interval ends 0.001 from zero)" where the bound nearest zero, on the
    side the interval lies, is within NARROW of it; else empty."""
    nearest = low if low > 0 else high
    if not excludes_zero(low, high) or abs(nearest) >= NARROW:
        return ""
    return f" (narrowly: its interval ends {number(abs(nearest))} from zero)"


def kl_bound(kl: float) -> str:
    """Best-of-k's KL, worded as the upper bound log k - (k-1)/k is (Beirami et al. 2024)."""
    return f"KL at most {kl:.2f} nats"


def held_in(held: int, seeds: int) -> str:
    """"in only 2 of 5 seeds" or "in all 5 seeds"."""
    return f"in all {seeds} seeds" if held == seeds else f"in only {held} of {seeds} seeds"


def compared(name: str, mine: float, theirs: float, other: str) -> str:
    """"names kept lower than PPO's (0.917 against 0.947)", from the figures as printed."""
    word = direction(printed(mine) - printed(theirs), ("lower than", "higher than", "level with"))
    return f"{name} {word} {other}'s ({number(mine)} against {number(theirs)})"
