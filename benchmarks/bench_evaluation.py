"""Evaluation throughput: the original lab's way against the batched path, in one process.

The lab's way: one prompt at a time, generate a summary, then score prompt+summary with the
classifier. The batched path: `detox_helpers.generation.generate` over many prompts at once,
with the package's default KV cache for the device (`cache_for`: static on CUDA, dynamic on the
CPU), then the reward module scores summary and prompt+summary in batches (what evaluation
does). Same models (random weights, flan-t5-base and roberta-base shapes), same prompts, same
token budget (every summary is forced to exactly --new-tokens tokens). Prints seconds per sample
(generation and reward) and the ratio. Precision as in bench_ppo.py: the lab's way in float32
on the CPU, the package's default (`precision=auto`'s rule at flan-t5-base's width), and
today's float32 path beside it where the CPU's default is bfloat16.

    python benchmarks/bench_evaluation.py                       # CPU-sized defaults
    python benchmarks/bench_evaluation.py --lab-samples 8 --batch-sizes 64,512,1024 \
        --dynamic-batch-sizes 1024                              # GPU: default (static) and dynamic
"""

from __future__ import annotations

import argparse
import time

import torch
from idle import Watch
from shapes import (
    FLAN_T5_BASE_WIDTH,
    benchmark_dialogues,
    flan_t5_base_shape,
    roberta_base_classifier_shape,
    tokenizers,
)

from detox_helpers.evaluation import METRICS
from detox_helpers.generation import cache_for, generate
from detox_helpers.models import choose_dtype, cpu_dtype
from detox_helpers.reward import RewardModel, reward_texts
from detox_helpers.settings import load_settings


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def budget(new_tokens: int) -> dict:
    """The lab's sampling, with the length pinned so both ways do the same work."""
    return dict(do_sample=True, top_k=0, top_p=1.0, min_new_tokens=new_tokens,
                max_new_tokens=new_tokens)


def lab_way(policy, t5_tok, reward_model, prompts, new_tokens, device) -> dict:
    """Seconds per sample by phase, one prompt at a time (generate, decode, score
    prompt+summary)."""
    seconds = dict(generation=0.0, reward=0.0)
    for prompt in prompts:
        sync(device)
        started = time.perf_counter()
        ids = t5_tok(prompt, return_tensors="pt").input_ids.to(device)
        summary = t5_tok.decode(policy.generate(input_ids=ids, **budget(new_tokens))[0],
                                skip_special_tokens=True)
        sync(device)
        scoring = time.perf_counter()
        reward_model.logits([f"{prompt} {summary}"])
        sync(device)
        seconds["generation"] += scoring - started
        seconds["reward"] += time.perf_counter() - scoring
    return {phase: s / len(prompts) for phase, s in seconds.items()}


def batched_way(policy, t5_tok, reward_model, prompts, new_tokens, batch_size, device,
                cache) -> dict:
    """Seconds per sample by phase through the package's batched generation and scoring."""
    prompt_ids = [t5_tok(p).input_ids for p in prompts]
    sync(device)
    started = time.perf_counter()
    generated = generate(policy, t5_tok, prompt_ids, batch_size=batch_size, seed=0,
                         progress=False, cache=cache, **budget(new_tokens))
    sync(device)
    scoring = time.perf_counter()
    reward_model.score(generated.texts)
    reward_model.toxicity(reward_texts(prompts, generated.texts, "prompt+summary"))
    sync(device)
    return dict(generation=(scoring - started) / len(prompts),
                reward=(time.perf_counter() - scoring) / len(prompts))


def precisions(args, device) -> tuple[torch.dtype, torch.dtype, str]:
    """(the lab's way's dtype, the package's default dtype, why the default): the default is
    `precision=auto`'s rule for a flan-t5-base-wide policy on this device."""
    if device.type == "cuda":
        default, why = choose_dtype(load_settings("full", environ={}), device)
    else:
        default, why = cpu_dtype(lambda: FLAN_T5_BASE_WIDTH)
    lab = getattr(torch, args.lab_precision) if args.lab_precision else (
        default if device.type == "cuda" else torch.float32)
    return lab, default, why


def short(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def line(label, phases, lab=None) -> str:
    total = sum(phases.values())
    text = (f"{label}: {total:.4f} s/sample (generation {phases['generation']:.4f}, "
            f"reward {phases['reward']:.4f})")
    return text if lab is None else f"{text}; {lab / total:.1f}x faster than the lab's way"


def tiny_world_in_both_precisions(artifacts) -> None:
    """Toxicity and ROUGE-1 of the tiny world's test prompts in float32 and in bfloat16 (both
    forced), the same prompts and sampling seeds, with the paired difference: what random
    weights cannot say, whether the precision moves the figures."""
    import dataclasses

    import numpy as np

    from detox_helpers.evaluation import figure_values, run_evaluation
    from detox_helpers.stats import bootstrap
    from detox_helpers.tiny.world import world_dir, world_settings

    settings = world_settings(world_dir(), artifacts_dir=artifacts, eval_size=-1)
    runs = {}
    for precision in ("float32", "bfloat16"):
        started = time.perf_counter()
        runs[precision] = run_evaluation(dataclasses.replace(settings, precision=precision),
                                         name=None, progress=False)
        print(f"tiny world, {precision}: {time.perf_counter() - started:.1f} s")
    for key in ("toxicity", "rouge1"):
        metric = next(m for m in METRICS if m.key == key)
        values = {p: figure_values(run.per_sample, metric) for p, run in runs.items()}
        difference = bootstrap(values["bfloat16"] - values["float32"], np.mean)
        print(f"tiny world, {key} over {len(values['float32'])} prompts x "
              f"{settings.eval_samples_per_prompt}: float32 {values['float32'].mean():.4f}, "
              f"bfloat16 {values['bfloat16'].mean():.4f}, paired difference "
              f"{difference[0]:+.4f} [{difference[1]:+.4f}, {difference[2]:+.4f}]")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--lab-samples", type=int, default=2)
    parser.add_argument("--lab-precision", choices=("float32", "bfloat16"),
                        help="the lab's way's weights (default: float32 on the CPU, as today's "
                             "CPU figures; the default precision on a GPU)")
    parser.add_argument("--batch-sizes", default="16",
                        help="comma-separated; each runs one batch of that many prompts with the "
                             "package's default KV cache for the device")
    parser.add_argument("--static-batch-sizes", default="",
                        help="batch sizes to also run with a static KV cache (on CUDA "
                             "transformers compiles the decoder; the first call is not timed)")
    parser.add_argument("--dynamic-batch-sizes", default="",
                        help="batch sizes to also run with the dynamic KV cache")
    parser.add_argument("--tiny-world", metavar="ARTIFACTS",
                        help="instead: evaluate the tiny world's test prompts in both "
                             "precisions (data prepared in the artifacts folder ARTIFACTS) "
                             "and print toxicity and ROUGE-1 side by side")
    args = parser.parse_args()
    if args.tiny_world:
        tiny_world_in_both_precisions(args.tiny_world)
        return

    device = torch.device(args.device)
    default = cache_for(load_settings("full", environ={}).generation_cache, device)
    lab_dtype, dtype, why = precisions(args, device)
    prompts, source = benchmark_dialogues()
    t5_tok, roberta_tok = tokenizers(prompts)
    policies = {precision: flan_t5_base_shape(precision, device)
                for precision in {lab_dtype, dtype, torch.float32 if device.type == "cpu"
                                  else dtype}}
    # the reward model stays float32, as the package's (its logits are the reward)
    reward_model = RewardModel(roberta_base_classifier_shape(torch.float32, device),
                               roberta_tok, batch_size=64)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; prompts from {source}; {args.new_tokens} new tokens each")
    print(f"default precision: {short(dtype)} ({why})")

    for policy in policies.values():  # warm-up
        batched_way(policy, t5_tok, reward_model, prompts[:4], 4, 4, device, "dynamic")
    lab = lab_way(policies[lab_dtype], t5_tok, reward_model, prompts[:args.lab_samples],
                  args.new_tokens, device)
    print(line(f"lab's way (one at a time, {short(lab_dtype)}, {args.lab_samples} samples)",
               lab))
    lab = sum(lab.values())
    sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    runs = []
    if device.type == "cpu" and dtype != torch.float32:  # today's CPU path beside the default
        runs += [(b, f"float32 (today's CPU path), {default} cache", default, torch.float32)
                 for b in sizes]
    runs += [(b, f"the package's default ({short(dtype)}, {default} cache)", default, dtype)
             for b in sizes]
    runs += [(int(b), f"{short(dtype)}, {cache} cache", cache, dtype)
             for cache, sizes in (("static", args.static_batch_sizes),
                                  ("dynamic", args.dynamic_batch_sizes))
             for b in sizes.split(",") if b]
    for batch_size, label, cache, precision in runs:
        policy = policies[precision]
        chosen = (prompts * (batch_size // len(prompts) + 1))[:batch_size]
        label = f"batched, batch {batch_size}, {label}"
        try:
            if cache == "static":  # the first call compiles on CUDA; time the second
                batched_way(policy, t5_tok, reward_model, chosen, args.new_tokens,
                            batch_size, device, cache)
            phases = batched_way(policy, t5_tok, reward_model, chosen, args.new_tokens,
                                 batch_size, device, cache)
        except Exception as error:  # report and go on with the other settings
            print(f"{label}: failed ({type(error).__name__}: "
                  f"{str(error).splitlines()[0][:120]})")
            continue
        print(line(label, phases, lab))


if __name__ == "__main__":
    with Watch() as watch:  # whether the machine was idle while it timed (issue 49)
        main()
    print(watch.line())
