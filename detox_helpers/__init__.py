"""What the FLAN-T5 detoxification lab's notebooks share: settings, data, models, the tiny
world, the CLI. Notebooks import from the modules (`detox_helpers.settings`, `.data`, ...)."""

from .errors import DetoxError
from .settings import Settings, load_settings

__all__ = ["DetoxError", "Settings", "load_settings"]
