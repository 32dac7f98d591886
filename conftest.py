"""The test environment, set at import for any pytest run in this repository: `make test`,
`pytest tests/...`, and `pytest notebooks/...` alone (nbval's kernels inherit it). Test runs
keep their own artifacts folder on the offline tiny profile with a reduced step count, so they
never overwrite a user's results (before this file, `pytest notebooks` alone trained 160 steps
in the user's `artifacts/`)."""

import os
from pathlib import Path

from hypothesis import Phase, settings

REPO = Path(__file__).resolve().parent
os.environ["DETOX_PROFILE"] = "tiny"
os.environ.setdefault("DETOX_ARTIFACTS_DIR", str(REPO / "artifacts" / "tests"))
# The notebooks run under nbval on a reduced step count; the learning test uses the full one.
os.environ.setdefault("DETOX_MAX_PPO_STEPS", "12")
# Never reach for a hub: a hub id fails at once instead of after retries.
for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[variable] = "1"

# `make mutate` runs the tests with --hypothesis-profile=mutate ([tool.mutmut]): a property test
# that a mutant breaks fails on its first counterexample, unshrunk. Shrinking it took long enough
# that mutmut read some killed mutants as timeouts.
settings.register_profile("mutate", phases=[Phase.explicit, Phase.generate], database=None)
