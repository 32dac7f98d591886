"""Where the lab keeps things: every folder and file name a run writes under the artifacts
folder, and the parts of the tiny world shipped in detox_helpers/tiny/tiny-world/ (README.md
draws the tree). Every other module asks this one; none spells these names.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import DetoxError

ARTIFACTS = "artifacts"
CHECKOUT = Path(__file__).resolve().parents[1]  # a clone's top, with an editable install
TINY_WORLD_DIR = Path(__file__).resolve().parent / "tiny" / "tiny-world"
# The project's own `evaluate` toxicity measurement: `evaluate.load(str(MEASUREMENT_DIR), model,
# module_type="measurement")` needs no network, where the course's "toxicity" fetches a script.
MEASUREMENT_DIR = Path(__file__).resolve().parent / "evaluate-modules" / "toxicity"
# The setting each part of a tiny world serves, and its folder inside the world.
WORLD_PARTS = {"dataset": "dialogsum", "policy_model": "policy-base",
               "instruct_adapter": "instruct-adapter", "reward_model": "reward-classifier"}
WORLD_DATA_FILE = "dialogsum.train.jsonl"
RUN_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"  # a plain file name: results and run names
PARTIAL = ".partial"
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # what peft's save_pretrained writes
REPLACED = ".replaced"  # an old copy, while its new one is renamed in


def default_artifacts_dir() -> Path:
    """`artifacts/` at the top of a checkout (editable install), else in the working folder."""
    return (CHECKOUT if (CHECKOUT / "pyproject.toml").exists() else Path.cwd()) / ARTIFACTS


def shown(path) -> str:
    """A path as printed for people: relative to the checkout (or the working folder) when it
    lies inside, so that printed output holds no machine's absolute paths."""
    if not Path(path).is_absolute() and not Path(path).exists():
        return str(path)  # a Hub id, or a name that is no path here
    path = Path(path).resolve()
    for base in (CHECKOUT, Path.cwd()):
        if path.is_relative_to(base) and path != base:
            return str(path.relative_to(base))
    return str(path)


def check_result_name(name: str) -> None:
    """A name for saved results must be a plain file name: letters, digits, `.`, `_`, `-`."""
    if not re.fullmatch(RUN_NAME, name or ""):
        raise DetoxError(f"{name!r} is not a valid results name: use letters, digits, '.', '_' "
                         "and '-' (no folders, no spaces), e.g. 'baseline' or 'run-2'.")


def world_paths(world: Path) -> dict[str, Path]:
    """Setting name -> the folder of a world that serves it."""
    return {setting: Path(world) / part for setting, part in WORLD_PARTS.items()}


def build_record(world: Path) -> Path:
    return Path(world) / "BUILD.json"


def partial(folder: Path, writer: int | None = None) -> Path:
    """Where `folder` is written before it is renamed into place (a stop leaves no half one);
    `writer` (a process id) gives each of several processes writing at once its own."""
    return folder.with_name(folder.name + (f".{writer}" if writer else "") + PARTIAL)


def aside(folder: Path) -> Path:
    """Where `folder`'s old copy waits while a new one is renamed into its place."""
    return folder.with_name(folder.name + REPLACED)


class Layout:
    """The places under one artifacts folder: a named run keeps its results, training and report in
    `runs/<name>/`, beside runs with other settings; the data cache and benchmarks are shared."""

    def __init__(self, root: Path, run: str = ""):
        self.root = Path(root)
        self.run_root = self.root / "runs" / run if run else self.root
        self.eval_dir = self.run_root / "eval"
        self.ppo_dir = self.run_root / "ppo"
        self.stats_file = self.ppo_dir / "stats.csv"
        self.checkpoints_dir = self.ppo_dir / "checkpoints"
        self.snapshots_dir = self.ppo_dir / "snapshots"  # adapters along the run (notebook 07)
        self.final_adapter = self.ppo_dir / "final-adapter"
        self.training_record = self.final_adapter / "training.json"
        self.instruct_adapter = self.root / "instruct-adapter"
        self.report_dir = self.run_root / "report"
        self.report = self.report_dir / "report.md"
        # notebook 06's own page: appended to report.md it took the handout past 800 words
        self.methods_report = self.report_dir / "beyond_ppo.md"
        self.benchmarks = self.root / "benchmarks"
        self.lock_file = self.run_root / ".lock"  # held by the command writing this run
        self.rloo_dir = self.run_root / "rloo"  # notebook 06: its statistics and adapter
        self.rloo_stats = self.rloo_dir / "stats.csv"
        self.rloo_adapter = self.rloo_dir / "final-adapter"
        self.tensorboard = self.run_root / "tensorboard"  # trl's log, a folder per start

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
                      if p.is_dir() and not p.name.endswith((PARTIAL, REPLACED)))

    def written_folders(self) -> list[Path]:
        """Every folder a command may write: checked before any long work begins."""
        return [self.root / "data", self.eval_dir, self.ppo_dir, self.report_dir,
                self.rloo_dir, self.run_root / "executed"]

    def previous_run(self, stamp: str) -> Path:
        """Where a new run sets the previous run's folder aside."""
        return self.run_root / "ppo-previous" / stamp

    def executed(self, profile: str) -> Path:
        return self.run_root / "executed" / profile
