"""Loading models and tokenizers by hub id or local folder, on the right device and precision."""

from __future__ import annotations

import torch

from . import sources
from .errors import DetoxError
from .settings import Settings


def pick_device(settings: Settings) -> torch.device:
    """The configured device; `auto` takes the GPU when there is one."""
    if settings.device != "auto":
        if settings.device.startswith("cuda") and not torch.cuda.is_available():
            raise DetoxError(f"device={settings.device!r} but no CUDA GPU is visible; "
                             "use device=auto or cpu.")
        return torch.device(settings.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(settings: Settings, device: torch.device) -> torch.dtype:
    """bfloat16 on a GPU that supports it (as the original lab), float32 elsewhere."""
    if settings.precision != "auto":
        return getattr(torch, settings.precision)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def from_pretrained(loader, name: str, what: str, setting: str, **kwargs):
    """`loader.from_pretrained(name)`, turning "not found / no network" into a clear DetoxError."""
    kind, location = sources.resolve(name, what, setting)
    try:
        return loader.from_pretrained(location, **kwargs)
    except (OSError, ValueError) as error:
        if kind == "hub":
            raise sources.hub_failure(name, what, setting, error) from error
        raise DetoxError(f"The {what} folder {location!r} (setting {setting}) could not be "
                         f"loaded: {error}") from error


def load_tokenizer(settings: Settings):
    """The policy's tokenizer (flan-t5-base's, or the tiny T5's)."""
    from transformers import AutoTokenizer

    return from_pretrained(AutoTokenizer, settings.policy_model, "policy tokenizer",
                           "policy_model")
