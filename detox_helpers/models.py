"""Loading models and tokenizers by hub id or local folder, on the right device and precision."""

from __future__ import annotations

import collections
import logging
import warnings

import torch

from . import sources
from .errors import DetoxError, first_line
from .settings import Settings

# Notices about library internals that a learner can do nothing about, kept out of the
# notebooks: transformers 5 always declares T5's output layer tied to its input embeddings, so
# loading a checkpoint that keeps them apart (flan-t5's and the tiny T5) says so, and merging an
# adapter says it again; and a deprecation inside transformers that peft calls.
for _message in ("`is_gradient_checkpointing` is deprecated",
                 "Input and output embeddings are no longer tied after merging"):
    warnings.filterwarnings("ignore", message=_message)


logging.getLogger("transformers.modeling_utils").addFilter(
    lambda record: "tied weights mapping" not in record.getMessage())


def pick_device(settings: Settings) -> torch.device:
    """The configured device; `auto` takes the GPU when there is one."""
    if settings.device != "auto":
        if settings.device.startswith("cuda") and not torch.cuda.is_available():
            raise DetoxError(f"device={settings.device!r} but no CUDA GPU is visible; "
                             "use device=auto or cpu.")
        return torch.device(settings.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# bfloat16 on a CPU with native bfloat16 only for a policy at least this wide (flan-t5-small
# is 512, flan-t5-base 768; the tiny world 64). A rule on the width, not on a timing: timed in
# each process, a layer's speed-up moved with the machine's load (flan-t5-base's 1.9x to 6.1x
# on a 2-core EPYC, the tiny world's 0.8x to 2.0x), so one command ran in either precision
# from one run to the next. At flan-t5-base's width bfloat16 was faster end to end in every
# measurement (docs/benchmarks.md); the tiny world's steps are mostly overhead, and its claims
# were measured in float32.
BF16_MIN_WIDTH = 512


def choose_dtype(settings: Settings, device: torch.device) -> tuple[torch.dtype, str]:
    """(dtype, why): bfloat16 on a GPU that supports it (as the original lab) and on a CPU with
    native bfloat16 for a policy at least BF16_MIN_WIDTH wide; float32 elsewhere."""
    if settings.precision != "auto":
        return getattr(torch, settings.precision), f"precision={settings.precision}"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16, "auto: a GPU with bfloat16"
        return torch.float32, "auto: a GPU without bfloat16"
    if device.type != "cpu":
        return torch.float32, f"auto: float32 on {device.type}"
    return cpu_dtype(lambda: model_width(settings))


def cpu_dtype(width) -> tuple[torch.dtype, str]:
    """choose_dtype on this CPU; `width()` (hidden, feed-forward) asked only if bf16 is native."""
    if not cpu_has_native_bf16():
        return torch.float32, "auto: no native bfloat16 on this CPU"
    hidden = width()[0]
    if hidden >= BF16_MIN_WIDTH:
        return torch.bfloat16, (f"auto: native bfloat16 on this CPU, a policy {hidden} wide "
                                f"(>= {BF16_MIN_WIDTH})")
    return torch.float32, (f"auto: native bfloat16 on this CPU, but a policy only {hidden} "
                           f"wide (< {BF16_MIN_WIDTH})")


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16, as torch reads the processor (emulated bfloat16 is slower)."""
    try:
        capability = torch._C._cpu._get_cpu_capability()  # no public equivalent in torch 2.13
    except AttributeError:
        return False
    return bool(capability.get("avx512_bf16") or capability.get("amx_bf16"))


def model_width(settings: Settings) -> tuple[int, int]:
    """(hidden size, feed-forward size) of the policy, from its config alone."""
    from transformers import AutoConfig

    config = from_pretrained(AutoConfig, settings.policy_model, "policy model", "policy_model")
    hidden = getattr(config, "d_model", None) or config.hidden_size
    return hidden, getattr(config, "d_ff", None) or getattr(config, "intermediate_size", 4 * hidden)


def weights_precision(model) -> str:
    """The dtype that holds most of `model`'s weights, e.g. `bfloat16` (what ran)."""
    sizes = collections.Counter()
    for parameter in model.parameters():
        sizes[parameter.dtype] += parameter.numel()
    return str(sizes.most_common(1)[0][0]).removeprefix("torch.")


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
    from transformers import AutoTokenizer

    return from_pretrained(AutoTokenizer, settings.policy_model, "policy tokenizer", "policy_model")


def merge_adapter(model, adapter: str):
    """Fold a LoRA adapter into the base weights, so that a fresh LoRA can go on top: trl's KL
    reference (with PEFT, the adapter *disabled*) is then the instruct model, not the bare base."""
    from peft import PeftModel

    kind, location = sources.resolve(adapter, "instruct adapter", "instruct_adapter")
    try:
        return PeftModel.from_pretrained(model, location).merge_and_unload()
    except (OSError, ValueError) as error:
        if kind == "hub":
            raise sources.hub_failure(adapter, "instruct adapter", "instruct_adapter",
                                      error) from error
        raise DetoxError(f"The instruct adapter {location!r} could not be loaded: {error}. Is "
                         "it a PEFT LoRA adapter folder (adapter_config.json) made for this "
                         "base model?") from error
    except RuntimeError as error:  # shapes that do not fit the base model
        raise DetoxError(f"The instruct adapter {location!r} does not fit the policy model "
                         f"{model.name_or_path!r}: {first_line(error)}") from error


def check_lora_targets(model, targets: list[str]) -> None:
    """Each LoRA target must name linear layers of `model` (as PEFT matches them: the whole
    module name or its last parts); a clear error listing the layers it has otherwise."""
    linear = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in linear)]
    if missing:
        names = sorted({name.rsplit(".", 1)[-1] for name in linear})
        raise DetoxError(f"lora_target_modules={','.join(targets)}: {', '.join(missing)} "
                         f"matches no linear layer of the policy {model.name_or_path!r}. Its "
                         f"layers are named {', '.join(map(repr, names))} (flan-t5's attention "
                         "projections are q, k, v, o).")


# The course's instruct adapter is not public: what the lab starts from without one, and the way.
NO_ADAPTER = ("No instruct adapter set: the lab starts from plain {policy}. To start from a "
              "fine-tuned summariser as the course did, run `python -m detox_course "
              "make-adapter` (it times its first step and says how long the rest will take) and "
              "set DETOX_INSTRUCT_ADAPTER to the folder it names.")


def load_policy(settings: Settings, device: torch.device | None = None):
    """(model, tokenizer): the policy with the instruct adapter merged in (when one is set).
    With `instruct_adapter_trainable` (the original lab's way), the base model alone: the
    caller puts the instruct adapter on, to train it (notebook 04) or as trained (notebook 05)."""
    from transformers import AutoModelForSeq2SeqLM

    device = device or pick_device(settings)
    dtype, why = choose_dtype(settings, device)
    model = from_pretrained(AutoModelForSeq2SeqLM, settings.policy_model, "policy model",
                            "policy_model", dtype=dtype)
    if settings.instruct_adapter and not settings.instruct_adapter_trainable:
        model = merge_adapter(model, settings.instruct_adapter)
    elif not settings.instruct_adapter:
        print(NO_ADAPTER.format(policy=settings.policy_model))
    print(f"policy weights in {weights_precision(model)} ({why})")
    return model.to(device).eval(), load_tokenizer(settings)


def lab_lora(settings: Settings):
    """The lab's `LoraConfig` from `settings`, in the instruct adapter's shape (sft.lora_config):
    what notebook 04's exercise `configs` writes and notebook 06's RLOO trains."""
    from .sft import lora_config

    return lora_config(settings.lora_r, settings.lora_alpha, settings.lora_dropout,
                       settings.lora_targets)


def lab_configs(settings: Settings, plumbing: dict):
    """Notebook 04's `LoraConfig` and `PPOConfig` from `settings`: its fallback where the
    exercise `configs` is left blank, so that its later cells and `ppo-step` still run."""
    from trl import PPOConfig

    knobs = dict(learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                 mini_batch_size=settings.mini_batch_size, ppo_epochs=settings.ppo_epochs,
                 init_kl_coef=settings.init_kl_coef, adap_kl_ctrl=settings.adaptive_kl,
                 target=settings.target_kl, horizon=settings.kl_horizon, seed=settings.seed)
    return lab_lora(settings), PPOConfig(**knobs, **plumbing)
