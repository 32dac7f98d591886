"""PPO with a KL penalty, through trl 0.11.4 (the last trl with encoder-decoder PPO).

trl stays behind this module: the notebook and the CLI call its functions, never trl itself.

A step has four parts, each a function the notebook can call on its own: `take_batch` (a
batch of training prompts), `sample` (summaries from the policy, batched, with a new-token
budget drawn between the two length settings), `score` (rewards from the reward module, or
from a reward function of the learner's), `optimise` (`PPOTrainer.step`); `record` turns what
the step saw into a row of statistics. `ppo_step` runs the four in order; `train` loops over
it, and so does notebook 04's loop, with `keep` after each step and `finish` at the end.
Everything a step draws at random is seeded by (seed, step), so a run resumed from a
checkpoint repeats exactly what the uninterrupted run would have done.
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
from .generation import Generated, generate, sampling_kwargs
from .layout import check_writable, shown
from .reward import RewardModel, reward_texts
from .settings import Settings

# trl 0.11.4 is pinned on purpose (see the README); its deprecation notices say nothing a
# learner can act on, so they are kept out of the notebooks.
for _message in ("`PPOTrainer` is deprecated", "`PPOConfig` is deprecated",
                 "No dataset is provided", "`past_key_values` is deprecated"):
    warnings.filterwarnings("ignore", message=_message)

# Our name for each statistic of trl's that a step records, and trl's name.
TRL_STATISTICS = {"kl": "objective/kl", "kl_coef": "objective/kl_coef",
                  "returns_mean": "ppo/returns/mean",
                  "advantages_mean": "ppo/policy/advantages_mean",
                  "clipfrac": "ppo/policy/clipfrac", "value_error": "ppo/val/error",
                  "policy_loss": "ppo/loss/policy", "value_loss": "ppo/loss/value"}
REWARD_MODULE = "the reward module"
TIMING_COLUMNS = ["generation_seconds", "reward_seconds", "optimisation_seconds"]
STAT_COLUMNS = ["step", "reward_mean", "reward_std", "toxicity_mean", *TRL_STATISTICS,
                "response_length", *TIMING_COLUMNS]


@dataclass
class Run:
    """What a training run holds: the trainer, its models, and one row of figures per step."""
    trainer: object
    tokenizer: object
    reward_model: RewardModel
    train_split: object
    settings: Settings
    history: list = field(default_factory=list)
    reward_source: str = REWARD_MODULE
    """what the reward came from: the reward module, or the source of a reward function"""

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


def trainable_parts(model) -> dict:
    """Parameter counts of the value-head model: LoRA, value head, frozen, and all."""
    counts = {"LoRA (trained)": 0, "value head (trained)": 0, "frozen": 0}
    for name, parameter in model.named_parameters():
        part = ("frozen" if not parameter.requires_grad else
                "value head (trained)" if name.startswith("v_head") else "LoRA (trained)")
        counts[part] += parameter.numel()
    counts["all"] = sum(counts.values())
    return counts


def trainable_share(model) -> str:
    parts = trainable_parts(model)
    trained = parts["all"] - parts["frozen"]
    return (f"trainable parameters: {trained:,} of {parts['all']:,} "
            f"({100 * trained / parts['all']:.2f}%)")


def lora_config_for(settings: Settings):
    """The PEFT LoraConfig of PPO's fresh adapter."""
    from .sft import lora_config

    return lora_config(settings.lora_r, settings.lora_alpha, settings.lora_dropout,
                       settings.lora_targets)


def ppo_config_for(settings: Settings):
    """trl's PPOConfig from the settings (the lab's PPO hyper-parameters)."""
    from trl import PPOConfig

    return PPOConfig(
        model_name=settings.policy_model, learning_rate=settings.learning_rate,
        batch_size=settings.batch_size, mini_batch_size=settings.mini_batch_size,
        ppo_epochs=settings.ppo_epochs, init_kl_coef=settings.init_kl_coef,
        adap_kl_ctrl=settings.adaptive_kl, target=settings.target_kl, seed=settings.seed,
        remove_unused_columns=False,
        accelerator_kwargs={"cpu": True} if settings.device == "cpu" else {})


def build_trainer(settings: Settings, policy, tokenizer):
    """trl's value-head model around a fresh LoRA on `policy`, and its PPOTrainer.

    With a PEFT model trl computes the reference log-probabilities with the adapter disabled,
    which, since the instruct adapter was merged into `policy`, is the instruct model itself.
    """
    from accelerate import PartialState
    from trl import AutoModelForSeq2SeqLMWithValueHead, PPOTrainer

    from .models import check_lora_targets

    if settings.device == "cpu":
        # Settle the process layout before trl first asks for it: asked without `cpu=True`,
        # Accelerate treats several CPU processes (torchrun) as one.
        PartialState(cpu=True)
    check_lora_targets(policy, settings.lora_targets)
    torch.manual_seed(settings.seed)
    model = AutoModelForSeq2SeqLMWithValueHead.from_pretrained(
        policy, peft_config=lora_config_for(settings), is_trainable=True)
    model.v_head.to(next(policy.parameters()).device)
    trainer = first_token_trainer(PPOTrainer)(config=ppo_config_for(settings), model=model,
                                              tokenizer=tokenizer)
    trainer.scoring_in_one_pass = next(policy.parameters()).device.type == "cuda"
    return trainer


def first_token_trainer(trainer_class):
    """trl's PPOTrainer, with the first token of an encoder-decoder's summary trained too, and
    (with `scoring_in_one_pass`, set on a GPU) its scoring passes run over the whole batch.

    trl 0.11.4 scores position i of a response with the log-probability of token i + 1, then,
    for encoder-decoders, masks the positions before `start = 1`: position 0, which scores the
    first generated token, never reaches the loss (trl issue #176 asked about this mask). A
    policy that opens its summary with an insult ("Lazy Liam books ...") could then never learn
    to stop. Here position 0 counts for every response that has a token after the start token.
    """
    class FirstTokenPPOTrainer(trainer_class):
        scoring_in_one_pass = False

        def batched_forward_pass(self, model, queries, responses, model_inputs,
                                 return_logits=False, response_masks=None):
            # trl runs its scoring passes over a whole batch (policy with values, then the
            # reference) in chunks of mini_batch_size. The inputs are padded once for the whole
            # batch, so one pass over all of it computes the same numbers with fewer, larger
            # launches. That is for a GPU; on a 2-core CPU (flan-t5-base shapes) it measured
            # either way (batch 8: 4.9 s against 5.9 s chunked; batch 16: 7.8 s against 6.8 s),
            # so the CPU keeps trl's chunks.
            chunk = self.config.mini_batch_size
            if self.scoring_in_one_pass:
                self.config.mini_batch_size = max(len(queries), chunk)
            try:
                logprobs, logits, values, masks = super().batched_forward_pass(
                    model, queries, responses, model_inputs, return_logits=return_logits,
                    response_masks=response_masks)
            finally:
                self.config.mini_batch_size = chunk
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


@dataclass
class Step:
    """One PPO step in the making: each part fills in what it adds."""
    number: int
    """1 for the run's first step"""
    rows: object
    """the batch's rows of the train split (`query` is each prompt's text)"""
    queries: list
    """each prompt's token ids"""
    generated: Generated | None = None
    rewards: torch.Tensor | None = None
    toxicity: torch.Tensor | None = None
    trl_stats: dict | None = None
    seconds: dict = field(default_factory=dict)


def take_batch(run: Run) -> Step:
    """The next step's prompts; seeds everything the step draws at random."""
    settings, accelerator = run.settings, run.trainer.accelerator
    rows = run.train_split.select(batch_indices(settings, run.step, run.train_split.num_rows,
                                                accelerator.process_index,
                                                accelerator.num_processes))
    torch.manual_seed(settings.seed + run.step)   # sampling and LoRA dropout of this step
    np.random.seed(settings.seed + run.step)      # trl's mini-batch shuffle
    return Step(run.step + 1, rows, [torch.as_tensor(ids) for ids in rows["input_ids"]])


def sample(run: Run, step: Step) -> Generated:
    """The policy's summaries of the step's prompts (the lab's sampling, the step's budget)."""
    settings = run.settings
    started = time.perf_counter()
    step.generated = generate(run.policy, run.tokenizer, step.queries,
                              batch_size=settings.batch_size, progress=False,
                              cache=settings.generation_cache,
                              **sampling_kwargs(settings, response_budget(settings,
                                                                          step.number - 1)))
    step.seconds["generation_seconds"] = time.perf_counter() - started
    return step.generated


def score(run: Run, step: Step, reward_function=None) -> torch.Tensor:
    """The reward of each summary: the reward module's (the `nothate` logit of what
    `reward_input` names), or `reward_function(prompts, summaries)` when one is given. The
    step's toxicity is always the classifier's, so that what the reward does stays visible."""
    started = time.perf_counter()
    texts = reward_texts(step.rows["query"], step.generated.texts, run.settings.reward_input)
    if reward_function is None:
        step.rewards, step.toxicity = run.reward_model.score(texts)
    else:
        run.reward_source = describe_function(reward_function)
        step.rewards = torch.as_tensor(
            reward_function(list(step.rows["query"]), step.generated.texts),
            dtype=torch.float32).reshape(-1)
        step.toxicity = run.reward_model.toxicity(texts)
    step.seconds["reward_seconds"] = time.perf_counter() - started
    return step.rewards


def describe_function(function) -> str:
    """A reward function as its source code (a notebook's too), for the training record."""
    import inspect

    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return repr(function)


def optimise(run: Run, step: Step) -> dict:
    """`PPOTrainer.step` on the prompts, the summaries' token ids and their rewards; trl's
    statistics of the update."""
    started = time.perf_counter()
    device = run.trainer.accelerator.device
    step.trl_stats = run.trainer.step([q.to(device) for q in step.queries],
                                      [r.to(device) for r in step.generated.token_ids],
                                      [r.to(device) for r in step.rewards])
    step.seconds["optimisation_seconds"] = time.perf_counter() - started
    return step.trl_stats


def record(run: Run, step: Step) -> dict:
    """The step's row of statistics, appended to the run's history."""
    row = dict(step=step.number, reward_mean=float(step.rewards.mean()),
               reward_std=float(step.rewards.std()), toxicity_mean=float(step.toxicity.mean()),
               **{ours: float(step.trl_stats[theirs]) for ours, theirs in TRL_STATISTICS.items()},
               response_length=float(np.mean([len(r) for r in step.generated.token_ids])),
               **step.seconds)
    run.history.append(row)
    return row


def ppo_step(run: Run, reward_function=None) -> dict:
    """One PPO step, its four parts in order; returns (and records) its row of statistics."""
    step = take_batch(run)
    sample(run, step)
    score(run, step, reward_function)
    optimise(run, step)
    return record(run, step)


def prepare(run: Run, resume: bool, progress: bool = True) -> None:
    """Before the first step: continue from the newest checkpoint, or set the previous run
    aside (never delete it)."""
    if resume:
        folder = checkpoints.resume_latest(run)
        if progress:
            print(f"resumed from step {run.step} ({shown(folder)})")
    elif run.trainer.accelerator.is_main_process:
        aside = checkpoints.set_aside_previous_run(run.settings.layout)
        if aside and progress:
            print(f"the previous run was set aside in {shown(aside)}")


def keep(run: Run, total: int) -> None:
    """After each step: the statistics file, and a checkpoint every `checkpoint_every` steps
    and at the last."""
    if run.trainer.accelerator.is_main_process:
        checkpoints.write_stats(run, STAT_COLUMNS)
        if run.step % run.settings.checkpoint_every == 0 or run.step == total:
            checkpoints.save_checkpoint(run)


def finish(run: Run) -> None:
    """After the last step: the trained adapter, its value head and its record."""
    if run.trainer.accelerator.is_main_process:
        checkpoints.write_stats(run, STAT_COLUMNS)
        checkpoints.save_final(run)


def progress_line(history: list) -> str:
    """Where training stands, as means over the last 10 steps (one batch is noisy)."""
    last = history[-10:]

    def mean(name):
        return float(np.mean([row[name] for row in last]))
    return (f"step {history[-1]['step']:>4}: reward {mean('reward_mean'):+.3f}, toxicity "
            f"{mean('toxicity_mean'):.3f}, KL {mean('kl'):.3f}, returns "
            f"{mean('returns_mean'):+.3f} (means of the last {len(last)} steps)")


def train(settings: Settings, max_steps: int | None = None, resume: bool = False,
          progress: bool = True, run: Run | None = None, reward_function=None) -> Run:
    """Train for `max_steps` (default: the setting), checkpointing every `checkpoint_every`.

    `resume=True` continues from the newest whole checkpoint. Otherwise, once the new run has
    started (models loaded), the previous run's folder is set aside, not deleted. Statistics
    go to the layout's stats file as they come; a stop (Ctrl-C) says where to continue.
    `reward_function(prompts, summaries)` replaces the reward module's reward (see `score`).
    """
    total = settings.max_ppo_steps if max_steps is None else max_steps
    if total < 1:
        raise DetoxError(f"--max-steps (max_steps) is {total}: train at least 1 step.")
    check_writable(settings.layout.root)
    run = run or start(settings, progress)
    prepare(run, resume, progress)
    is_main = run.trainer.accelerator.is_main_process
    bar = tqdm(total=total, initial=min(run.step, total), desc="PPO",
               disable=not progress or not is_main)
    try:
        while run.step < total:
            row = ppo_step(run, reward_function)
            bar.set_postfix(reward=f"{row['reward_mean']:.2f}", kl=f"{row['kl']:.3f}")
            bar.update(1)
            keep(run, total)
    except KeyboardInterrupt:
        bar.close()
        if progress and is_main:
            print(checkpoints.where_to_continue(settings.layout))
        raise
    bar.close()
    finish(run)
    return run
