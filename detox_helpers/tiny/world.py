"""The offline miniature of the lab, shipped with the package (its folders: see layout.py).

    the dataset         a DialogSum-format fixture (project-written, see fixture.py)
    the policy          a tiny T5ForConditionalGeneration (gated-gelu, untied), trained to summarise
    the instruct adapter  a LoRA adapter from sft.train_instruct_adapter, like the course's
    the reward model    a tiny RobertaForSequenceClassification, labels {0: nothate, 1: hate}
    the build record    the builder's stamp, timings and quality checks

The same classes and functions as the full lab; only sizes differ. Building the world well takes
minutes and weights trained on another CPU differ, so every clone gets the same one, written by
the package's own builder (builder.py, checked by checks.py): `python -m detox_course
build-tiny --rebuild` makes it anew. This module only finds and checks it: the stamp hashes the
builder's code, and a world whose stamp does not match the code is refused with that way out.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ..errors import DetoxError
from ..layout import TINY_WORLD_DIR, build_record, world_paths
from ..settings import Settings, load_settings

# A world is current while these files are unchanged (the stamp hashes them).
BUILDER_FILES = ("tiny/builder.py", "tiny/fixture.py", "tiny/insults.py", "sft.py")
REBUILD = "`python -m detox_course build-tiny --rebuild` (about 5 minutes on 2 cores)"


def builder_stamp() -> str:
    digest = hashlib.sha256()
    for name in BUILDER_FILES:
        digest.update((Path(__file__).parents[1] / name).read_bytes())
    return digest.hexdigest()[:16]


def world_dir() -> Path:
    return TINY_WORLD_DIR


def uses_world(settings: Settings, folder: Path) -> bool:
    """Whether any model or data setting points into the world folder (settings may point
    elsewhere, e.g. at a world built for another artifacts folder)."""
    paths = [getattr(settings, setting) for setting in world_paths(folder)]
    return any(path and Path(path).resolve().is_relative_to(folder.resolve()) for path in paths)


def ensure_tiny_world(settings: Settings) -> Path | None:
    """Check the shipped tiny world when the settings use it; None when they do not.

    A missing world, or one made by other builder code than this (someone edited fixture.py,
    say), is refused: its models would not match the fixture the code now describes.
    """
    folder = world_dir()
    if settings.profile != "tiny" or not uses_world(settings, folder):
        return None
    stamp_file = build_record(folder)
    if not stamp_file.exists():
        raise DetoxError(f"The tiny world is missing from {folder}. It ships with the package: "
                         f"restore it from the repository, or rebuild it with {REBUILD}.")
    stamp = json.loads(stamp_file.read_text()).get("stamp")
    if stamp != builder_stamp():
        raise DetoxError(f"The tiny world in {folder} was built by other builder code (stamp "
                         f"{stamp}, the code's is {builder_stamp()}). Rebuild it with {REBUILD}.")
    return folder


def world_settings(folder: Path, **overrides) -> Settings:
    """Tiny-profile settings that read the world in `folder` (say, one built elsewhere)."""
    return load_settings("tiny", environ={}, **{**world_paths(folder), **overrides})


def exact_judge_for(settings: Settings):
    """What a notebook's set-up cell calls: the tiny world checked (ensure_tiny_world), and its
    exact judge (judge.EXACT_JUDGE) on the tiny profile, for the evaluations to be handed;
    None on the full profile, which has no judge of truth."""
    ensure_tiny_world(settings)
    if settings.profile != "tiny":
        return None
    from .judge import EXACT_JUDGE

    return EXACT_JUDGE
