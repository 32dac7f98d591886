"""Where the lab keeps things: every folder and file name a run writes under the artifacts
folder, and the parts of the tiny world shipped in detox_helpers/tiny/tiny-world/ (README.md
draws the tree). Every other module asks this one; none spells these names.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from .errors import DetoxError

ARTIFACTS = "artifacts"
TINY_WORLD_DIR = Path(__file__).resolve().parent / "tiny" / "tiny-world"
# The project's own `evaluate` toxicity measurement: `evaluate.load(str(MEASUREMENT_DIR), model,
# module_type="measurement")` needs no network, where the course's "toxicity" fetches a script.
MEASUREMENT_DIR = Path(__file__).resolve().parent / "evaluate-modules" / "toxicity"
# The setting each part of a tiny world serves, and its folder inside the world.
WORLD_PARTS = {"dataset": "dialogsum", "policy_model": "policy-base",
               "instruct_adapter": "instruct-adapter", "reward_model": "reward-classifier"}
WORLD_DATA_FILE = "dialogsum.train.jsonl"
BUILD_RECORD = "BUILD.json"
RUN_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # a plain file name: results and run names
PARTIAL = ".partial"


def default_artifacts_dir() -> Path:
    """`artifacts/` at the top of a checkout (editable install), else in the working folder."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists():
        return checkout / ARTIFACTS
    return Path.cwd() / ARTIFACTS


def shown(path) -> str:
    """A path as printed for people: relative to the checkout (or the working folder) when it
    lies inside, so that printed output holds no machine's absolute paths."""
    path = Path(path).resolve()
    checkout = Path(__file__).resolve().parents[1]
    for base in (checkout, Path.cwd()):
        if path.is_relative_to(base) and path != base:
            return str(path.relative_to(base))
    return str(path)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a stop mid-write leaves the previous file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open (not mkstemp, which makes the file private) keeps the usual permissions.
    scratch = path.with_name(f".{path.name}.{os.getpid()}{PARTIAL}")
    try:
        scratch.write_text(text)
        os.replace(scratch, path)
    except BaseException:
        scratch.unlink(missing_ok=True)
        raise


def check_result_name(name: str) -> str:
    """A name for saved results must be a plain file name: letters, digits, `.`, `_`, `-`."""
    if not re.fullmatch(RUN_NAME, name or ""):
        raise DetoxError(f"{name!r} is not a valid results name: use letters, digits, '.', '_' "
                         "and '-' (no folders, no spaces), e.g. 'baseline' or 'run-2'.")
    return name


def check_writable(folder: Path) -> Path:
    """Make sure `folder` can be created and written, before any long work writes into it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DetoxError(f"Cannot write into {folder} ({reason}): set DETOX_ARTIFACTS_DIR "
                         "(artifacts_dir) to a folder you can write.") from None
    return folder


def world_paths(world: Path) -> dict[str, Path]:
    """Setting name -> the folder of a world that serves it."""
    return {setting: Path(world) / part for setting, part in WORLD_PARTS.items()}


def build_record(world: Path) -> Path:
    return Path(world) / BUILD_RECORD


def partial(folder: Path) -> Path:
    """Where `folder` is written before it is renamed into place (a stop leaves no half one)."""
    return folder.with_name(folder.name + PARTIAL)


class Layout:
    """The places under one artifacts folder. A named run keeps its own results, training and
    report under `runs/<name>/`, so that runs with other settings sit side by side; the data
    cache and the benchmarks are shared."""

    def __init__(self, root: Path, run: str = ""):
        self.root = Path(root)
        self.run = run
        self.run_root = self.root / "runs" / run if run else self.root
        self.eval_dir = self.run_root / "eval"
        self.ppo_dir = self.run_root / "ppo"
        self.stats_file = self.ppo_dir / "stats.csv"
        self.checkpoints_dir = self.ppo_dir / "checkpoints"
        self.final_adapter = self.ppo_dir / "final-adapter"
        self.training_record = self.final_adapter / "training.json"
        self.instruct_adapter = self.root / "instruct-adapter"
        self.report_dir = self.run_root / "report"
        self.report = self.report_dir / "report.md"
        self.benchmarks = self.root / "benchmarks"

    def data_cache(self, key: str) -> Path:
        return self.root / "data" / f"dialogsum-{key}"

    def eval_table(self, name: str) -> Path:
        return self.eval_dir / f"{name}.csv"

    def eval_record(self, name: str) -> Path:
        return self.eval_dir / f"{name}.json"

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints_dir / f"step-{step:06d}"

    def checkpoints(self) -> list[Path]:
        """Whole checkpoints, oldest first; folders still being written are not among them."""
        return sorted(p for p in self.checkpoints_dir.glob("step-*")
                      if p.is_dir() and not p.name.endswith(PARTIAL))

    def previous_run(self, stamp: str) -> Path:
        """Where a new run sets the previous run's folder aside."""
        return self.run_root / "ppo-previous" / stamp

    def executed(self, profile: str) -> Path:
        return self.run_root / "executed" / profile
