"""`python -m detox_course build-tiny`: check the shipped world, or build one. Kept apart from
the builder so that checking starts without loading the builder's libraries."""

from __future__ import annotations

from pathlib import Path

from ..errors import DetoxError
from ..layout import build_record
from ..settings import load_settings
from .world import ensure_tiny_world, world_dir


def build_tiny(rebuild: bool, output: str | None) -> None:
    """`build-tiny`: check the shipped world (default), rebuild it in place, or build one into
    another folder; print its build record."""
    if output or rebuild:
        folder = Path(output).resolve() if output else world_dir()
        if folder.is_dir() and any(folder.iterdir()) and not build_record(folder).exists():
            raise DetoxError(f"{folder} is not empty and not a tiny world (no BUILD.json); "
                             "building there would replace it. Choose a new folder.")
        from .checks import build_and_check  # the builder's heavy imports only when building

        print(f"Building the tiny world in {folder} (a few minutes on 2 cores)...")
        build_and_check(folder)
    else:
        folder = ensure_tiny_world(load_settings("tiny", environ={}))
    print(build_record(folder).read_text())
    print(f"tiny world: {folder}")
