"""Where a model or dataset name points: a local path, or a hub id. Clear errors when missing."""

from __future__ import annotations

from pathlib import Path

from .errors import DetoxError, first_line


def looks_like_path(name: str) -> bool:
    """Names that can only be paths: absolute, home-relative, ./ or ../, or whose first part is a
    folder here (`data/dialogsum` beside a `data/` folder is a mistyped path, not a Hub id)."""
    if name.startswith(("/", "./", "../", "~", ".\\", "..\\")) or Path(name).is_absolute():
        return True
    parts = Path(name).parts
    return len(parts) > 1 and Path(parts[0]).is_dir()


def resolve(name: str, what: str, setting: str) -> tuple[str, str]:
    """('local', path) when `name` exists on disk, else ('hub', id); a missing path is an error."""
    if not name:
        raise DetoxError(f"No {what} given: set {setting} (DETOX_{setting.upper()}).")
    path = Path(name).expanduser()
    if path.exists():
        return "local", str(path.resolve())
    if looks_like_path(name) or name.count("/") > 1:
        raise DetoxError(f"The {what} folder {name!r} does not exist (setting {setting}; "
                         f"looked for {path.resolve()}). "
                         "Check the path; the tiny profile's world ships with the package, "
                         "and detox_helpers.tiny.world.ensure_tiny_world(settings) checks it.")
    return "hub", name


def hub_failure(name: str, what: str, setting: str, error: Exception) -> DetoxError:
    """The error for a hub id that could not be loaded, naming the likely cause and the way out."""
    return DetoxError(
        f"Could not load the {what} {name!r} from the Hugging Face Hub ({first_line(error)}). "
        "The likely cause is no network and no cached copy on this machine. Offline, use the "
        f"tiny profile (DETOX_PROFILE=tiny), or point DETOX_{setting.upper()} at a local folder "
        "that holds a copy.")
