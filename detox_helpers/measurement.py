"""The project's own `evaluate` toxicity measurement, loadable offline from the package: the
course's `evaluate.load("toxicity", ...)` fetches its script from the Hub; the same call on
MEASUREMENT_DIR needs no network (README.md shows it).
"""

from __future__ import annotations

from pathlib import Path

# A folder `toxicity/` holding `toxicity.py`: the layout evaluate.load expects of a local module.
MEASUREMENT_DIR = Path(__file__).resolve().parent / "evaluate-modules" / "toxicity"


def load_toxicity(model: str | None = None):
    """The toxicity measurement on `model` (a folder or hub id), by default the settings' reward
    model; its scores are `RewardModel.toxicity`'s."""
    import evaluate

    return evaluate.load(str(MEASUREMENT_DIR), model or "default", module_type="measurement")
