"""Evaluation throughput: the original lab's way against the batched path, in one process.

The lab's way: one prompt at a time, generate a summary, then score prompt+summary with the
classifier. The batched path: `detox_helpers.generation.generate` over many prompts at once,
then the reward module scores summary and prompt+summary in batches (what evaluation does).
Same models (random weights, flan-t5-base and roberta-base shapes), same prompts, same token
budget (every summary is forced to exactly --new-tokens tokens). Prints seconds per sample and
the ratio.

    python benchmarks/bench_evaluation.py                       # CPU-sized defaults
    python benchmarks/bench_evaluation.py --lab-samples 8 --batch-sizes 64,512 \
        --static-batch-sizes 256
"""

from __future__ import annotations

import argparse
import time

import torch
from shapes import (
    benchmark_dialogues,
    flan_t5_base_shape,
    roberta_base_classifier_shape,
    tokenizers,
)

from detox_helpers.generation import generate
from detox_helpers.reward import RewardModel, reward_texts


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def budget(new_tokens: int) -> dict:
    """The lab's sampling, with the length pinned so both ways do the same work."""
    return dict(do_sample=True, top_k=0, top_p=1.0, min_new_tokens=new_tokens,
                max_new_tokens=new_tokens)


def lab_way(policy, t5_tok, reward_model, prompts, new_tokens, device) -> float:
    """Seconds per sample, one prompt at a time (generate, decode, score prompt+summary)."""
    sync(device)
    started = time.perf_counter()
    for prompt in prompts:
        ids = t5_tok(prompt, return_tensors="pt").input_ids.to(device)
        summary = t5_tok.decode(policy.generate(input_ids=ids, **budget(new_tokens))[0],
                                skip_special_tokens=True)
        reward_model.logits([f"{prompt} {summary}"])
    sync(device)
    return (time.perf_counter() - started) / len(prompts)


def batched_way(policy, t5_tok, reward_model, prompts, new_tokens, batch_size, device,
                **extra) -> float:
    """Seconds per sample through the package's batched generation and scoring."""
    prompt_ids = [t5_tok(p).input_ids for p in prompts]
    sync(device)
    started = time.perf_counter()
    generated = generate(policy, t5_tok, prompt_ids, batch_size=batch_size, seed=0,
                         progress=False, **budget(new_tokens), **extra)
    reward_model.score(generated.texts)
    reward_model.toxicity(reward_texts(prompts, generated.texts, "prompt+summary"))
    sync(device)
    return (time.perf_counter() - started) / len(prompts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--new-tokens", type=int, default=100)
    parser.add_argument("--lab-samples", type=int, default=2)
    parser.add_argument("--batch-sizes", default="16",
                        help="comma-separated; each runs one batch of that many prompts")
    parser.add_argument("--static-batch-sizes", default="",
                        help="batch sizes to also run with a static KV cache (transformers then "
                             "compiles the decoder; the first, compiling call is not timed)")
    args = parser.parse_args()

    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    prompts, source = benchmark_dialogues()
    t5_tok, roberta_tok = tokenizers(prompts)
    policy = flan_t5_base_shape(dtype, device)
    reward_model = RewardModel(roberta_base_classifier_shape(dtype, device), roberta_tok,
                               batch_size=64)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; {dtype}; prompts from {source}; {args.new_tokens} new tokens each")

    batched_way(policy, t5_tok, reward_model, prompts[:4], 4, 4, device)  # warm-up
    lab = lab_way(policy, t5_tok, reward_model, prompts[:args.lab_samples], args.new_tokens,
                  device)
    print(f"lab's way (one at a time, {args.lab_samples} samples): {lab:.4f} s/sample")
    runs = [(int(b), "dynamic cache", {}) for b in args.batch_sizes.split(",") if b]
    runs += [(int(b), "static cache", dict(cache_implementation="static"))
             for b in args.static_batch_sizes.split(",") if b]
    for batch_size, label, extra in runs:
        chosen = (prompts * (batch_size // len(prompts) + 1))[:batch_size]
        try:
            if extra:  # the first call compiles; time the second
                batched_way(policy, t5_tok, reward_model, chosen, args.new_tokens,
                            batch_size, device, **extra)
            seconds = batched_way(policy, t5_tok, reward_model, chosen, args.new_tokens,
                                  batch_size, device, **extra)
        except Exception as error:  # report and go on with the other settings
            print(f"batched, batch {batch_size}, {label}: failed ({type(error).__name__}: "
                  f"{str(error).splitlines()[0][:120]})")
            continue
        print(f"batched, batch {batch_size}, {label}: {seconds:.4f} s/sample; "
              f"{lab / seconds:.1f}x faster than the lab's way")


if __name__ == "__main__":
    main()
