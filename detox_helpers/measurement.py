"""The project's own `evaluate` toxicity measurement, loadable offline from the package.

The course writes `evaluate.load("toxicity", <model>, module_type="measurement")`, which fetches
the measurement's script from the Hub. The same call on a local folder needs no network:

    import evaluate
    from detox_helpers.measurement import MEASUREMENT_DIR

    toxicity = evaluate.load(str(MEASUREMENT_DIR), module_type="measurement")
    toxicity.compute(predictions=summaries, aggregation="maximum")
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
