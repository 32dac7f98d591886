"""PPO with a KL penalty, through trl 0.11.4 (the last trl with encoder-decoder PPO).

trl stays behind this module: the notebook and the CLI call `train`, never trl itself.

Each step: a batch of training prompts -> summaries sampled from the policy (batched, with a
new-token budget drawn between the two length settings) -> rewards from the reward module ->
`PPOTrainer.step`. Everything a step draws at random is seeded by (seed, step), so a run
resumed from a checkpoint repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import random
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from . import checkpoints
from .errors import DetoxError
from .generation import generate, sampling_kwargs
from .layout import check_writable
from .reward import RewardModel, reward_texts
from .settings import Settings

# trl 0.11.4 is pinned on purpose (see the README); its deprecation notices say nothing a
# learner can act on, so they are kept out of the notebooks.
for _message in ("`PPOTrainer` is deprecated", "`PPOConfig` is deprecated",
                 "No dataset is provided", "`past_key_values` is deprecated",
                 "`is_gradient_checkpointing` is deprecated"):
    warnings.filterwarnings("ignore", message=_message)

STAT_COLUMNS = ["step", "reward_mean", "reward_std", "toxicity_mean", "kl", "kl_coef",
                "policy_loss", "value_loss", "response_length", "generation_seconds",
                "reward_seconds", "optimisation_seconds"]


@dataclass
class Run:
    """What a training run holds: the trainer, its models, and one row of figures per step."""
    trainer: object
    tokenizer: object
    reward_model: RewardModel
    train_split: object
    settings: Settings
    history: list = field(default_factory=list)

    @property
    def step(self) -> int:
        return len(self.history)

    @property
    def model(self):
        """trl's value-head model, unwrapped from Accelerate's multi-process wrapper if any."""
        return self.trainer.accelerator.unwrap_model(self.trainer.model)

    @property
    def policy(self):
        """The PEFT model (LoRA on the merged instruct policy) that generates summaries."""
        return self.model.pretrained_model


def trainable_share(model) -> str:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return (f"trainable parameters: {trainable:,} of {total:,} "
            f"({100 * trainable / total:.2f}%)")


def build_trainer(settings: Settings, policy, tokenizer):
    """trl's value-head model around a fresh LoRA on `policy`, and its PPOTrainer.

    With a PEFT model trl computes the reference log-probabilities with the adapter disabled,
    which, since the instruct adapter was merged into `policy`, is the instruct model itself.
    """
    from accelerate import PartialState
    from trl import AutoModelForSeq2SeqLMWithValueHead, PPOConfig, PPOTrainer

    from .models import check_lora_targets
    from .sft import lora_config

    if settings.device == "cpu":
        # Settle the process layout before trl first asks for it: asked without `cpu=True`,
        # Accelerate treats several CPU processes (torchrun) as one.
        PartialState(cpu=True)
    check_lora_targets(policy, settings.lora_targets)
    torch.manual_seed(settings.seed)
    config = lora_config(settings.lora_r, settings.lora_alpha, settings.lora_dropout,
                         settings.lora_targets)
    model = AutoModelForSeq2SeqLMWithValueHead.from_pretrained(policy, peft_config=config,
                                                               is_trainable=True)
    model.v_head.to(next(policy.parameters()).device)
    ppo_config = PPOConfig(
        model_name=settings.policy_model, learning_rate=settings.learning_rate,
        batch_size=settings.batch_size, mini_batch_size=settings.mini_batch_size,
        ppo_epochs=settings.ppo_epochs, init_kl_coef=settings.init_kl_coef,
        adap_kl_ctrl=settings.adaptive_kl, target=settings.target_kl, seed=settings.seed,
        remove_unused_columns=False,
        accelerator_kwargs={"cpu": True} if settings.device == "cpu" else {})
    return first_token_trainer(PPOTrainer)(config=ppo_config, model=model, tokenizer=tokenizer)


def first_token_trainer(trainer_class):
    """trl's PPOTrainer, with the first token of an encoder-decoder's summary trained too.

    trl 0.11.4 scores position i of a response with the log-probability of token i + 1, then,
    for encoder-decoders, masks the positions before `start = 1`: position 0, which scores the
    first generated token, never reaches the loss (trl issue #176 asked about this mask). A
    policy that opens its summary with an insult ("Lazy Liam books ...") could then never learn
    to stop. Here position 0 counts for every response that has a token after the start token.
    """
    class FirstTokenPPOTrainer(trainer_class):
        def batched_forward_pass(self, model, queries, responses, model_inputs,
                                 return_logits=False, response_masks=None):
            logprobs, logits, values, masks = super().batched_forward_pass(
                model, queries, responses, model_inputs, return_logits=return_logits,
                response_masks=response_masks)
            if self.is_encoder_decoder:
                scored = torch.tensor([len(r) > 1 for r in responses], device=masks.device)
                masks[:, 0] = scored.to(masks.dtype)
            return logprobs, logits, values, masks

    return FirstTokenPPOTrainer


def start(settings: Settings, progress: bool = True) -> Run:
    """Load data, policy, reward model; set up the trainer. Prints the trainable share."""
    from .data import build_dataset
    from .models import load_policy, pick_device
    from .reward import load_reward_model

    splits = build_dataset(settings)
    if splits["train"].num_rows < settings.batch_size:
        raise DetoxError(f"The train split has {splits['train'].num_rows} prompts, fewer than "
                         f"batch_size={settings.batch_size}; lower batch_size.")
    device = pick_device(settings)
    policy, tokenizer = load_policy(settings, device)
    trainer = build_trainer(settings, policy, tokenizer)
    reward_model = load_reward_model(settings, device)
    if progress:
        print(trainable_share(trainer.model))
    return Run(trainer, tokenizer, reward_model, splits["train"], settings)


def batch_indices(settings: Settings, step: int, num_rows: int, rank: int = 0,
                  world: int = 1) -> list[int]:
    """The train rows of a step: a seeded shuffle per pass over the data, no row twice in a
    pass; with several processes each takes its own share of a larger batch."""
    per_step = settings.batch_size * world
    steps_per_pass = max(num_rows // per_step, 1)
    epoch, within = divmod(step, steps_per_pass)
    order = np.random.default_rng([settings.seed, epoch]).permutation(num_rows)
    start = within * per_step + rank * settings.batch_size
    return [int(i) for i in order[start:start + settings.batch_size]]


def response_budget(settings: Settings, step: int) -> int:
    """New-token budget of a step, drawn in [output_min_length, output_max_length)."""
    rng = random.Random(settings.seed * 1_000_003 + step)
    return rng.randrange(settings.output_min_length, settings.output_max_length)


def ppo_step(run: Run) -> dict:
    """One PPO step; returns (and records) its row of statistics."""
    settings, step = run.settings, run.step
    accelerator = run.trainer.accelerator
    rows = run.train_split.select(batch_indices(settings, step, run.train_split.num_rows,
                                                accelerator.process_index,
                                                accelerator.num_processes))
    queries = [torch.as_tensor(ids) for ids in rows["input_ids"]]
    torch.manual_seed(settings.seed + step)       # sampling and LoRA dropout of this step
    np.random.seed(settings.seed + step)          # trl's mini-batch shuffle

    started = time.perf_counter()
    generated = generate(run.policy, run.tokenizer, queries, batch_size=settings.batch_size,
                         progress=False, cache=settings.generation_cache,
                         **sampling_kwargs(settings, response_budget(settings, step)))
    generation_seconds = time.perf_counter() - started

    started = time.perf_counter()
    rewards, toxicity = run.reward_model.score(
        reward_texts(rows["query"], generated.texts, settings.reward_input))
    reward_seconds = time.perf_counter() - started

    started = time.perf_counter()
    device = run.trainer.accelerator.device
    trl_stats = run.trainer.step([q.to(device) for q in queries],
                                 [r.to(device) for r in generated.token_ids],
                                 [r.to(device) for r in rewards])
    optimisation_seconds = time.perf_counter() - started

    row = dict(step=step + 1, reward_mean=float(rewards.mean()),
               reward_std=float(rewards.std()), toxicity_mean=float(toxicity.mean()),
               kl=float(trl_stats["objective/kl"]),
               kl_coef=float(trl_stats["objective/kl_coef"]),
               policy_loss=float(trl_stats["ppo/loss/policy"]),
               value_loss=float(trl_stats["ppo/loss/value"]),
               response_length=float(np.mean([len(r) for r in generated.token_ids])),
               generation_seconds=generation_seconds, reward_seconds=reward_seconds,
               optimisation_seconds=optimisation_seconds)
    run.history.append(row)
    return row


def train(settings: Settings, max_steps: int | None = None, resume: bool = False,
          progress: bool = True, run: Run | None = None) -> Run:
    """Train for `max_steps` (default: the setting), checkpointing every `checkpoint_every`.

    `resume=True` continues from the newest whole checkpoint. Otherwise, once the new run has
    started (models loaded), the previous run's folder is set aside, not deleted. Statistics
    go to the layout's stats file as they come; a stop (Ctrl-C) says where to continue.
    """
    total = settings.max_ppo_steps if max_steps is None else max_steps
    if total < 1:
        raise DetoxError(f"--max-steps (max_steps) is {total}: train at least 1 step.")
    check_writable(settings.layout.root)
    run = run or start(settings, progress)
    is_main = run.trainer.accelerator.is_main_process
    if resume:
        folder = checkpoints.resume_latest(run)
        if progress:
            print(f"resumed from step {run.step} ({folder})")
    elif is_main:
        aside = checkpoints.set_aside_previous_run(settings.layout)
        if aside and progress:
            print(f"the previous run was set aside in {aside}")
    bar = tqdm(total=total, initial=min(run.step, total), desc="PPO",
               disable=not progress or not is_main)
    try:
        while run.step < total:
            row = ppo_step(run)
            bar.set_postfix(reward=f"{row['reward_mean']:.2f}", kl=f"{row['kl']:.3f}")
            bar.update(1)
            if is_main:
                checkpoints.write_stats(run, STAT_COLUMNS)
                if run.step % settings.checkpoint_every == 0 or run.step == total:
                    checkpoints.save_checkpoint(run)
    except KeyboardInterrupt:
        bar.close()
        if progress and is_main:
            print(checkpoints.where_to_continue(settings.layout))
        raise
    bar.close()
    if is_main:
        checkpoints.write_stats(run, STAT_COLUMNS)
        checkpoints.save_final(run)
    return run
