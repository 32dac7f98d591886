"""Every knob of the lab in one frozen dataclass, with two profiles: `full` (the original lab)
and `tiny` (the offline miniature), chosen by `DETOX_PROFILE` (default `tiny`). Any field can be
overridden by `DETOX_<FIELD>` or by keyword (`load_settings(batch_size=8)`), keywords winning.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from string import Formatter

from .errors import DetoxError
from .layout import ARTIFACTS, RUN_NAME, TINY_WORLD_DIR, Layout, default_artifacts_dir, world_paths

PROFILES = ("full", "tiny")
DEFAULT_PROFILE = "tiny"
ENV_PREFIX = "DETOX_"
PROMPT_TEMPLATE = "\nSummarize the following conversation.\n\n{dialogue}\n\nSummary:\n"
# The reward classifier's clean label: its raw logit is the reward.
CLEAN_LABEL = "nothate"
# Counts that must be at least 1.
AT_LEAST_ONE = ("ppo_epochs", "max_ppo_steps", "kl_horizon", "checkpoint_every",
                "eval_max_new_tokens", "eval_samples_per_prompt", "qualitative_rows",
                "curve_prompts", "sft_steps", "sft_batch_size")
BOOLEANS = {"1": True, "true": True, "yes": True, "on": True,
            "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Settings:
    """The field defaults are the original lab's (the `full` profile). Build settings with
    `load_settings()`, which applies a profile; constructed directly, the profile must be
    named, so that no one gets the full lab's values under another profile's name."""

    profile: str
    """which preset the other defaults come from: `full` (hub models) or `tiny` (offline)"""
    artifacts_dir: str = ARTIFACTS
    """folder for everything a run writes: data cache, results, checkpoints, report"""
    run_name: str = ""
    """its results, checkpoints and report go to `runs/<name>/`, beside other runs; empty: none"""
    seed: int = 42
    """seed for data order, sampling and initialisation"""
    device: str = "auto"
    """`auto` (a GPU when there is one), `cpu`, `cuda`, `cuda:N` or `mps`"""
    precision: str = "auto"
    """the policy's frozen weights: `auto` (bfloat16 on a GPU that supports it and on a CPU with
    native bfloat16 where it is faster at the policy's width, else float32), `float32` or
    `bfloat16`; what trains (LoRA, value head) and the reward model stay float32"""

    # --- data ---
    dataset: str = "knkarthick/dialogsum"
    """DialogSum as a hub id, or a local folder (or file) of CSV / JSON Lines in its columns"""
    dataset_split: str = "train"
    """split of the source to use (a local folder: files whose name contains it, else all)"""
    min_dialogue_chars: int = 200
    """keep dialogues longer than this many characters"""
    max_dialogue_chars: int = 1000
    """keep dialogues of at most this many characters"""
    prompt_template: str = PROMPT_TEMPLATE
    """the instruction wrapped around each dialogue; holds `{dialogue}`, ends in `Summary:`"""
    test_fraction: float = 0.2
    """share of the filtered dialogues held out as the test split (taken from the end)"""

    # --- models ---
    policy_model: str = "google/flan-t5-base"
    """the seq2seq model to detoxify (hub id or local folder); its tokenizer too"""
    instruct_adapter: str = ""
    """LoRA adapter that makes the policy summarise (path or hub id); empty: none"""
    instruct_adapter_trainable: bool = False
    """True: the original lab's way, PPO trains the instruct adapter itself and the KL reference
    is the base model; False (this lab): it is merged and PPO trains a fresh LoRA on the instruct
    model, the reference. Needs an `instruct_adapter`; see docs/design.md"""
    reward_model: str = "facebook/roberta-hate-speech-dynabench-r4-target"
    """hate-speech classifier with labels `nothate` and `hate` (hub id or local folder)"""
    toxic_labels: str = "hate"
    """the classifier's toxic labels, comma-separated, any case: toxicity is the sum of their
    probabilities, the reward stays the `nothate` logit; a label neither `nothate` nor named
    here is refused (it would count as neither toxic nor clean)"""
    reward_input: str = "summary"
    """what the reward reads: `summary` (default) or `prompt+summary` (the original lab)"""

    # --- LoRA (PPO adapter and the instruct fine-tuning) ---
    lora_r: int = 32
    """rank of the LoRA update matrices"""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)"""
    lora_dropout: float = 0.05
    """dropout on the LoRA branch"""
    lora_target_modules: str = "q,v"
    """comma-separated attention projections that get LoRA"""

    # --- PPO ---
    learning_rate: float = 1.41e-5
    """Adam learning rate of the PPO updates"""
    batch_size: int = 16
    """prompts per PPO step"""
    mini_batch_size: int = 4
    """samples per gradient step inside a PPO step; divides batch_size"""
    ppo_epochs: int = 1
    """optimisation passes over each batch"""
    max_ppo_steps: int = 10
    """PPO steps in a training run"""
    init_kl_coef: float = 0.2
    """starting weight of the KL penalty to the reference model"""
    adaptive_kl: bool = True
    """adapt the KL weight towards target_kl"""
    target_kl: float = 6.0
    """KL the adaptive controller aims at"""
    kl_horizon: int = 10000
    """the controller's pace: each step moves the coefficient by at most 20% x batch / horizon"""
    checkpoint_every: int = 5
    """save a resumable checkpoint every this many PPO steps"""
    snapshot_every: int = 2
    """keep the LoRA adapter every this many PPO steps, the start and the last step too, for
    notebook 07's over-optimisation curve; 0 keeps none"""

    # --- RLOO (notebook 06: the same steps, samples and learning rate as PPO) ---
    rloo_k: int = 4
    """samples per prompt in notebook 06's RLOO, at least 2 and dividing batch_size: each step
    takes batch_size / rloo_k prompts"""

    # --- generation ---
    output_min_length: int = 100
    """lower end of the new-token budget drawn for each PPO batch"""
    output_max_length: int = 400
    """upper end (exclusive) of the new-token budget drawn for each PPO batch"""
    min_summary_tokens: int = 5
    """generation never stops before this many tokens (the lab's `min_length`)"""
    top_k: int = 0
    """sampling top-k; 0 switches it off (pure sampling, as in the lab)"""
    top_p: float = 1.0
    """nucleus sampling mass; 1.0 switches it off"""
    generation_cache: str = "auto"
    """`auto` (static cache and bucketed prompts on CUDA, dynamic on CPU), `static` or `dynamic`"""

    # --- evaluation ---
    eval_max_new_tokens: int = 100
    """new-token budget of each evaluated summary"""
    eval_size: int = 0
    """test prompts to evaluate (the first n); 0: all on a GPU, at most 100 on a CPU; -1: all"""
    eval_samples_per_prompt: int = 4
    """k, the samples per prompt for the expected maximum toxicity"""
    eval_batch_size: int = 0
    """prompts per generation batch in evaluation; 0: 1024 on GPU (halved if OOM), 32 on CPU"""
    qualitative_rows: int = 20
    """test dialogues shown in the before/after table"""
    curve_prompts: int = 24
    """test prompts (the first n) notebook 07 evaluates at each snapshot, k samples each (a
    subset of the test split, for time: both runs' snapshots are evaluated)"""

    # --- instruct fine-tuning (makes the starting adapter) ---
    sft_steps: int = 1000
    """optimisation steps of the supervised fine-tuning that makes the instruct adapter"""
    sft_learning_rate: float = 1e-3
    """learning rate of that fine-tuning"""
    sft_batch_size: int = 8
    """dialogue/summary pairs per fine-tuning step"""

    def __post_init__(self):
        for problem in _problems(self):
            raise DetoxError(f"Setting out of range: {problem}")

    @property
    def artifacts(self) -> Path:
        return Path(self.artifacts_dir)

    @property
    def layout(self) -> Layout:
        """Every place a run with these settings writes (see layout.py)."""
        return Layout(self.artifacts, self.run_name)

    @property
    def lora_targets(self) -> list[str]:
        return [name.strip() for name in self.lora_target_modules.split(",") if name.strip()]


def label_names(text: str) -> list[str]:
    """Comma-separated label names, lower-cased: labels are matched in any letter case."""
    return [name.strip().lower() for name in text.split(",") if name.strip()]


def _problems(s: Settings) -> list[str]:
    """Each out-of-range value, named with the field and the rule it breaks."""
    try:  # the `{...}` fields `str.format` would fill in; None for a lone brace
        fields = [field for _, field, _, _ in Formatter().parse(s.prompt_template)
                  if field is not None]
    except ValueError:
        fields = None
    labels = label_names(s.toxic_labels)
    seed_limit = 2**32 - s.max_ppo_steps  # step n seeds numpy with seed + n, below 2**32
    checks = [
        # inf and nan pass comparisons such as `> 0` (or fail them with a misleading rule)
        *((math.isfinite(getattr(s, f.name)), f"{f.name}={getattr(s, f.name)} (need a finite "
           "number)") for f in dataclasses.fields(s) if isinstance(getattr(s, f.name), float)),
        (0 <= s.seed <= seed_limit,
         f"seed={s.seed} (need 0 <= seed <= {seed_limit}, i.e. 2**32 - max_ppo_steps: PPO step "
         "n seeds numpy with seed + n, and numpy's seeds end at 2**32 - 1)"),
        (s.profile in PROFILES, f"profile={s.profile!r} (known profiles: {', '.join(PROFILES)})"),
        (not s.run_name or re.fullmatch(RUN_NAME, s.run_name) is not None,
         f"run_name={s.run_name!r} (letters, digits, '.', '_' and '-'; no folders)"),
        (s.precision in ("auto", "float32", "bfloat16"),
         f"precision={s.precision!r} (use auto, float32 or bfloat16)"),
        (s.device == "auto" or s.device.split(":")[0] in ("cpu", "cuda", "mps"),
         f"device={s.device!r} (use auto, cpu, cuda, cuda:N or mps)"),
        (bool(s.instruct_adapter) or not s.instruct_adapter_trainable,
         "instruct_adapter_trainable=True needs an instruct_adapter to train (set "
         "instruct_adapter, or make one with `python -m detox_course make-adapter`)"),
        (s.reward_input in ("summary", "prompt+summary"),
         f"reward_input={s.reward_input!r} (use summary or prompt+summary)"),
        (bool(labels) and CLEAN_LABEL not in labels,
         f"toxic_labels={s.toxic_labels!r} (comma-separated names of the reward model's toxic "
         f"labels, e.g. hate or hate,offensive; never {CLEAN_LABEL}, its clean label)"),
        (0 <= s.min_dialogue_chars < s.max_dialogue_chars,
         f"min_dialogue_chars={s.min_dialogue_chars}, max_dialogue_chars={s.max_dialogue_chars}"
         " (need 0 <= min < max)"),
        (fields == ["dialogue"],
         "prompt_template must contain {dialogue} exactly once and no other braces (it has "
         + ("a lone '{' or '}'" if fields is None else f"the fields {fields}")
         + "): write a literal brace twice, '{{' or '}}'"),
        (s.prompt_template.strip().endswith("Summary:"),
         "prompt_template must end with 'Summary:'"),
        (0 < s.test_fraction < 1, f"test_fraction={s.test_fraction} (need 0 < x < 1)"),
        (s.lora_r >= 1 and s.lora_alpha > 0, f"lora_r={s.lora_r}, lora_alpha={s.lora_alpha}"
         " (need r >= 1 and alpha > 0)"),
        (0 <= s.lora_dropout < 1, f"lora_dropout={s.lora_dropout} (need 0 <= x < 1)"),
        (bool(s.lora_targets), "lora_target_modules is empty"),
        (s.learning_rate > 0 and s.sft_learning_rate > 0,
         f"learning_rate={s.learning_rate}, sft_learning_rate={s.sft_learning_rate}"
         " (both need > 0)"),
        (s.batch_size >= 1 and s.mini_batch_size >= 1 and s.batch_size % s.mini_batch_size == 0,
         f"batch_size={s.batch_size}, mini_batch_size={s.mini_batch_size}"
         " (both >= 1, mini_batch_size divides batch_size)"),
        (s.rloo_k >= 2, f"rloo_k={s.rloo_k} (at least 2: a sample needs a sibling)"),
        (s.init_kl_coef >= 0 and s.target_kl > 0,
         f"init_kl_coef={s.init_kl_coef}, target_kl={s.target_kl} (need >= 0 and > 0)"),
        (1 <= s.output_min_length < s.output_max_length,
         f"output_min_length={s.output_min_length}, output_max_length={s.output_max_length}"
         " (need 1 <= min < max)"),
        (s.min_summary_tokens >= 0, f"min_summary_tokens={s.min_summary_tokens} (need >= 0)"),
        (s.top_k >= 0, f"top_k={s.top_k} (need >= 0)"),
        (0 < s.top_p <= 1, f"top_p={s.top_p} (need 0 < x <= 1)"),
        (s.generation_cache in ("auto", "static", "dynamic"),
         f"generation_cache={s.generation_cache!r} (use auto, static or dynamic)"),
        (s.eval_size >= -1, f"eval_size={s.eval_size} (need >= -1; -1: the whole split, 0: "
                             "the whole split on a GPU, at most 100 prompts on a CPU)"),
        (s.eval_batch_size >= 0, f"eval_batch_size={s.eval_batch_size} (need >= 0; 0 is auto)"),
        (s.snapshot_every >= 0, f"snapshot_every={s.snapshot_every} (need >= 0; 0 keeps none)"),
        *((getattr(s, name) >= 1, f"{name}={getattr(s, name)} (need >= 1)")
          for name in AT_LEAST_ONE),
    ]
    return [message for ok, message in checks if not ok]


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Settings))


def profile_defaults(profile: str) -> dict:
    """The values a profile changes from the dataclass defaults (which are the `full` lab's)."""
    if profile == "full":
        return {}
    if profile == "tiny":
        return dict(
            **{setting: str(path) for setting, path in world_paths(TINY_WORLD_DIR).items()},
            # A model this small needs a far larger step than flan-t5-base's 1.41e-5. Batches
            # of 16 samples are noisy, so the steps stay moderate (lr 5e-4, 2 PPO epochs) and
            # many (160). A horizon of 300 lets the KL coefficient move up to 1% a step (trl's
            # 10000: 0.03%, a fixed leash), towards a KL of 0.5: at 1.0 one seed in five
            # overshot to 5 nats and more names were swapped (benchmarks/tiny_seeds.py). LoRA
            # stays off the cross-attention, the decoder's way of copying a name from the
            # dialogue: there, PPO's first-word changes swapped one person for another. The leash
            # starts at 0.4: from 0.2 or 0.3 one seed in five ran past twice its KL target.
            lora_r=16, lora_target_modules="SelfAttention.q,SelfAttention.v", learning_rate=5e-4,
            ppo_epochs=2, max_ppo_steps=160, checkpoint_every=40, snapshot_every=20,
            init_kl_coef=0.4, target_kl=0.5, kl_horizon=300, output_min_length=24,
            output_max_length=40, eval_max_new_tokens=40, eval_batch_size=48, qualitative_rows=12,
            sft_steps=150, sft_batch_size=16,
        )
    raise DetoxError(f"Unknown profile {profile!r}: choose one of {', '.join(PROFILES)}"
                     f" (set {ENV_PREFIX}PROFILE or pass profile=...).")


def _parse(name: str, text: str, like):
    """Turn an environment string into the type of the field's default."""
    parse = {bool: lambda word: BOOLEANS[word.strip().lower()], int: int, float: float}
    try:
        return parse.get(type(like), str)(text)
    except (KeyError, ValueError):
        raise DetoxError(f"{ENV_PREFIX}{name.upper()}={text!r} is not a valid "
                         f"{type(like).__name__} for setting {name!r}.") from None


def _check_type(name: str, value, like):
    if isinstance(like, str) and isinstance(value, os.PathLike):
        return str(value)
    if isinstance(like, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    # bool is an int to isinstance: True is refused for a number, 1 for a bool
    if not isinstance(value, type(like)) or isinstance(value, bool) != isinstance(like, bool):
        raise DetoxError(f"Setting {name!r} must be of type {type(like).__name__}, got {value!r}.")
    return value


def load_settings(profile: str | None = None, environ=None, **overrides) -> Settings:
    """Settings for a profile (None: `DETOX_PROFILE`, else DEFAULT_PROFILE), with `DETOX_<FIELD>`
    variables and keyword overrides applied; an unknown field, in the environment or as a
    keyword, or a value out of range raises `DetoxError` naming it."""
    environ = os.environ if environ is None else environ
    from_env = {key[len(ENV_PREFIX):].lower(): value for key, value in environ.items()
                if key.startswith(ENV_PREFIX)}
    in_environ = [ENV_PREFIX + name.upper() for name in sorted(set(from_env) - set(FIELD_NAMES))]
    for where, unknown in ((" in the environment", in_environ),
                           ("", sorted(set(overrides) - set(FIELD_NAMES)))):
        if unknown:
            raise DetoxError(f"Unknown setting{where}: {', '.join(unknown)}. "
                             f"Known settings: {', '.join(FIELD_NAMES)}.")

    profile = profile or from_env.get("profile") or DEFAULT_PROFILE
    artifacts_dir = overrides.get("artifacts_dir") or from_env.get("artifacts_dir")
    artifacts_dir = Path(artifacts_dir).resolve() if artifacts_dir else default_artifacts_dir()

    defaults = Settings.__dataclass_fields__
    values = profile_defaults(profile)
    for name, text in from_env.items():  # profile and artifacts_dir, read above, are set last
        values[name] = _parse(name, text, defaults[name].default)
    for name, value in overrides.items():
        values[name] = _check_type(name, value, defaults[name].default)
    values.update(profile=profile, artifacts_dir=str(artifacts_dir))
    return Settings(**values)

