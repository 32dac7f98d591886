"""Helpers for the FLAN-T5 detoxification lab: settings, data, models, the tiny world, the CLI.

Notebooks import what they need from the modules (`detox_helpers.settings`, `.data`, ...);
the logic lives here so that it is tested once.
"""

from .errors import DetoxError
from .settings import Settings, load_settings

__all__ = ["DetoxError", "Settings", "load_settings"]
