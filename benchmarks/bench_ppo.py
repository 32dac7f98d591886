"""One PPO step: the original lab's way against the package's batched step, in one process.

The lab's way: generate a summary for each of the batch's prompts one at a time, score
prompt+summary with the classifier, then `PPOTrainer.step`. The package's way: one batched
generation (`detox_helpers.generation.generate` with the default KV cache for the device,
`cache_for`: static on CUDA, dynamic on the CPU), the summaries scored in one batch, the same
`PPOTrainer.step`. Same models (random weights, flan-t5-base shape with a LoRA r=32 on q,v and a
value head; roberta-base-shaped classifier), same prompts, the same pinned number of new tokens.
Prints seconds per phase for each way and the ratio.

Precision: the package's default is `precision=auto`'s rule for a policy of flan-t5-base's
width (bfloat16 on a GPU that has it, and on a CPU with native bfloat16 where a layer that wide
runs faster in it; float32 elsewhere). On a CPU that picks bfloat16, today's float32 batched
path is timed too, so the three ways stand side by side. The lab's way runs in float32 on the
CPU (what today's CPU figures compare against; the original notebook asked for bfloat16
weights: `--lab-precision bfloat16` times that), in the default precision on a GPU. The reward
model stays float32, as the package's.

    python benchmarks/bench_ppo.py                  # CPU: one step each way
    python benchmarks/bench_ppo.py --steps 3 --dynamic    # GPU: the default (static), dynamic too
    python benchmarks/bench_ppo.py --profile-optimisation # where trl's step spends its time
"""

from __future__ import annotations

import argparse
import time

import torch
from bench_evaluation import budget, precisions, short, sync
from idle import Watch
from shapes import (
    benchmark_dialogues,
    flan_t5_base_shape,
    roberta_base_classifier_shape,
    tokenizers,
)

from detox_helpers.generation import cache_for, generate
from detox_helpers.reward import RewardModel, reward_texts
from detox_helpers.settings import load_settings
from detox_helpers.trl_patch import FirstTokenPPOTrainer, one_scoring_pass


def build_trainer(settings, policy, tokenizer):
    """Notebook 04's trainer on `policy`: a fresh LoRA and a value head, the first-token
    repair, one scoring pass over the batch where the notebook takes it (`one_scoring_pass`)."""
    from peft import LoraConfig, TaskType
    from trl import AutoModelForSeq2SeqLMWithValueHead, PPOConfig

    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                      lora_dropout=settings.lora_dropout, target_modules=settings.lora_targets,
                      task_type=TaskType.SEQ_2_SEQ_LM)
    model = AutoModelForSeq2SeqLMWithValueHead.from_pretrained(policy, peft_config=lora,
                                                              is_trainable=True)
    model.v_head.to(next(policy.parameters()).device)
    config = PPOConfig(learning_rate=settings.learning_rate, batch_size=settings.batch_size,
                       mini_batch_size=settings.mini_batch_size, ppo_epochs=settings.ppo_epochs,
                       remove_unused_columns=False,
                       accelerator_kwargs={"cpu": True} if settings.device == "cpu" else {})
    trainer = FirstTokenPPOTrainer(config=config, model=model, tokenizer=tokenizer)
    trainer.scoring_in_one_pass = one_scoring_pass(model)
    return trainer


def timed(device, work):
    sync(device)
    started = time.perf_counter()
    result = work()
    sync(device)
    return result, time.perf_counter() - started


def profile_optimisation(trainer, device) -> dict:
    """Time the parts of `PPOTrainer.step` (seconds summed per part, since the last reset):
    its forward passes (`batched_forward_pass`: the policy with values and the reference, both
    without gradients, then each mini-batch's own forward with them), and the mini-batches'
    backward passes and optimiser steps (`train_minibatch`); the rest of the step is
    advantages, statistics and host syncs. Wraps the trainer's own methods; what they compute
    is unchanged."""
    seconds = {"forward passes": 0.0, "backward and optimiser": 0.0}

    def timing(part, method):
        def wrapper(*args, **kwargs):
            result, spent = timed(device, lambda: method(*args, **kwargs))
            seconds[part] += spent
            return result
        return wrapper

    trainer.batched_forward_pass = timing("forward passes", trainer.batched_forward_pass)
    trainer.train_minibatch = timing("backward and optimiser", trainer.train_minibatch)
    return seconds


@torch.no_grad()  # as trl's step scores (with the graph kept, batch 16 ran out of 24 GB)
def compare_scoring(trainer, queries, new_tokens, device, repeats=3) -> None:
    """One scoring pass over the batch, trl's way (chunks of mini_batch_size) and in one pass
    (`scoring_in_one_pass`, see `one_scoring_pass`), timed in this process, ratio printed."""
    responses = [torch.randint(5, 1000, (new_tokens,), device=device) for _ in queries]
    inputs = trainer.prepare_model_inputs(list(queries), responses)
    seconds = {}
    for one_pass in (False, True):
        trainer.scoring_in_one_pass = one_pass
        trainer.batched_forward_pass(trainer.model, queries, responses, inputs)  # warm-up
        _, spent = timed(device, lambda: [trainer.batched_forward_pass(
            trainer.model, queries, responses, inputs) for _ in range(repeats)])
        seconds[one_pass] = spent / repeats
    trainer.scoring_in_one_pass = one_scoring_pass(trainer.model)
    print(f"one scoring pass: in chunks of {trainer.config.mini_batch_size} {seconds[False]:.3f} "
          f"s, in one pass {seconds[True]:.3f} s ({seconds[False] / seconds[True]:.2f}x)")


def lab_generation(policy, tokenizer, queries, new_tokens, cache):
    responses = []
    for query in queries:  # the lab's way: the default (dynamic) cache, whatever `cache` says
        row = policy.generate(input_ids=query.unsqueeze(0), **budget(new_tokens))[0]
        responses.append(row)
    texts = tokenizer.batch_decode(responses, skip_special_tokens=True)
    return texts, responses


def batched_generation(policy, tokenizer, queries, new_tokens, cache):
    generated = generate(policy, tokenizer, queries, batch_size=len(queries), progress=False,
                         cache=cache, **budget(new_tokens))
    return generated.texts, generated.token_ids


def ppo_step(trainer, tokenizer, reward_model, prompts, queries, new_tokens, generation,
             reward_input, device, cache) -> dict:
    policy = trainer.model.pretrained_model
    (texts, responses), generation_seconds = timed(
        device, lambda: generation(policy, tokenizer, queries, new_tokens, cache))
    rewards, reward_seconds = timed(
        device, lambda: reward_model.rewards(reward_texts(prompts, texts, reward_input)))
    _, optimisation_seconds = timed(device, lambda: trainer.step(
        list(queries), [r.to(device) for r in responses], [r.to(device) for r in rewards]))
    return dict(generation=generation_seconds, reward=reward_seconds,
                optimisation=optimisation_seconds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--new-tokens", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1, help="timed batched steps")
    parser.add_argument("--lab-steps", type=int, default=1,
                        help="timed steps the lab's way (0: leave the lab's way out)")
    parser.add_argument("--lab-precision", choices=("float32", "bfloat16"),
                        help="the lab's way's weights (default: float32 on the CPU, as today's "
                             "CPU figures; the default precision on a GPU)")
    parser.add_argument("--static", action="store_true",
                        help="also time the batched step with a static KV cache (compiled on "
                             "CUDA), if the default is not that already")
    parser.add_argument("--profile-optimisation", action="store_true",
                        help="split the optimisation phase into trl's forward passes, the "
                             "backward passes and optimiser steps, and the rest")
    parser.add_argument("--dynamic", action="store_true",
                        help="also time the batched step with the dynamic KV cache, if the "
                             "default is not that already")
    args = parser.parse_args()

    device = torch.device(args.device)
    lab_dtype, dtype, why = precisions(args, device)
    prompts, source = benchmark_dialogues()
    prompts = prompts[:args.batch_size]
    t5_tok, roberta_tok = tokenizers(prompts)
    settings = load_settings("full", environ={}, batch_size=args.batch_size,
                             device=device.type)
    trainers = {}  # one per precision: notebook 04's trainer on a policy of that precision

    def trainer_in(precision):
        if precision not in trainers:
            trainers[precision] = build_trainer(settings, flan_t5_base_shape(precision, device),
                                                t5_tok)
        return trainers[precision]

    # the reward model stays float32, as the package's (its logits are the reward)
    reward_model = RewardModel(roberta_base_classifier_shape(torch.float32, device),
                               roberta_tok, batch_size=64)
    queries = [torch.tensor(t5_tok(p).input_ids, device=device) for p in prompts]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch_size}, mini-batch {settings.mini_batch_size}; "
          f"{args.new_tokens} new tokens; prompts from {source}")
    print(f"default precision: {str(dtype).removeprefix('torch.')} ({why})")

    default = cache_for(settings.generation_cache, device)
    ways = [(f"lab's way (one prompt at a time, prompt+summary, {short(lab_dtype)})",
             lab_generation, "prompt+summary", "dynamic", lab_dtype, args.lab_steps)
            ] if args.lab_steps else []  # 0: only the batched ways, e.g. the two precisions
    if device.type == "cpu" and dtype != torch.float32:
        ways.append((f"batched, float32 (today's CPU path; {default} cache; summary)",
                     batched_generation, "summary", default, torch.float32, args.steps))
    ways.append((f"batched, the package's default ({default} cache, {short(dtype)}; summary)",
                 batched_generation, "summary", default, dtype, args.steps))
    ways += [(f"batched, {cache} cache ({short(dtype)}; summary)", batched_generation,
              "summary", cache, dtype, args.steps)
             for cache, wanted in (("static", args.static), ("dynamic", args.dynamic))
             if wanted and cache != default]
    results, parts_of = {}, {}
    for label, generation, reward_input, cache, precision, timed_steps in ways:
        trainer = trainer_in(precision)
        if args.profile_optimisation and precision not in parts_of:  # wrap each trainer once
            parts_of[precision] = profile_optimisation(trainer, device)
        parts = parts_of.get(precision)
        # one untimed step first: warm-up, and compilation for the static cache
        ppo_step(trainer, t5_tok, reward_model, prompts, queries, args.new_tokens, generation,
                 reward_input, device, cache)
        if parts:
            parts.update(dict.fromkeys(parts, 0.0))
        steps = [ppo_step(trainer, t5_tok, reward_model, prompts, queries, args.new_tokens,
                          generation, reward_input, device, cache)
                 for _ in range(timed_steps)]
        phases = {k: sum(s[k] for s in steps) / len(steps) for k in steps[0]}
        results[label] = sum(phases.values())
        print(f"{label}: {results[label]:.3f} s per step (generation {phases['generation']:.3f}"
              f", reward {phases['reward']:.3f}, optimisation {phases['optimisation']:.3f})")
        if parts:
            per_step = {part: spent / len(steps) for part, spent in parts.items()}
            rest = phases["optimisation"] - sum(per_step.values())
            print("  optimisation: " + ", ".join(f"{part} {spent:.3f}"
                                                 for part, spent in per_step.items())
                  + f", the rest (advantages, statistics, syncs) {rest:.3f}")
    for precision in parts_of:
        print(f"{short(precision)}: ", end="")
        compare_scoring(trainers[precision], queries, args.new_tokens, device)
    batched = {precision: results[label] for label, _, _, cache, precision, _ in ways
               if label in results and cache == default and not label.startswith("lab's")}
    if len(batched) == 2:  # a CPU whose default is bfloat16: end to end against float32
        print(f"batched step, bfloat16 against float32: {batched[torch.bfloat16]:.2f} s "
              f"against {batched[torch.float32]:.2f} s, "
              f"{batched[torch.float32] / batched[torch.bfloat16]:.2f}x as fast")
    if args.lab_steps:
        lab = results[ways[0][0]]
        for label, seconds in list(results.items())[1:]:
            print(f"{label}: {lab / seconds:.1f}x faster than the lab's way")


if __name__ == "__main__":
    with Watch() as watch:  # whether the machine was idle while it timed (issue 49)
        main()
    print(watch.line())
