"""Batched summary generation, the one path of evaluation, PPO and the comparison. Prompts are
right-padded (left padding on encoder-decoders destabilised KL in trl's history) and sorted by
length, results in the caller's order. On CUDA a static KV cache, compiled, at bucketed lengths."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm


@dataclass
class Generated:
    texts: list[str]
    """decoded summaries, special tokens removed"""
    token_ids: list[torch.Tensor]
    """decoder ids of each summary: the start token, the tokens, and `</s>` when it ended"""


def sampling_kwargs(settings, max_new_tokens: int) -> dict:
    """The lab's sampling: pure sampling (top_k=0, top_p=1.0), at least a few tokens."""
    return dict(do_sample=True, top_k=settings.top_k, top_p=settings.top_p,
                min_length=settings.min_summary_tokens, max_new_tokens=max_new_tokens)


CACHES = ("auto", "static", "dynamic")

# Static-cache shapes are rounded up to a multiple of this. A static cache is sized by the
# prompt length (cross-attention) and the token budget (self-attention), and every new size
# compiles anew. Multiples of 64 give a handful of sizes over the lab's prompts (about 60 to
# 300 tokens: 64 ... 320) and budgets (100 to 400 tokens), while a row carries fewer than 64
# pad tokens; powers of two would give fewer sizes but up to twice the encoder's work.
BUCKET = 64

def sampled_and_greedy(policy, tokenizer, prompt_ids, generation_kwargs: dict, seed: int):
    """One prompt's summary sampled from `seed` with the lab's keywords, and its greedy one (text):
    where they differ, notebook 03's hidden test tells a sampling answer from a greedy one."""
    texts = []
    for kwargs in (generation_kwargs, generation_kwargs | {"do_sample": False}):
        torch.manual_seed(seed)
        ids = policy.generate(input_ids=prompt_ids, **kwargs)[0]
        texts.append(tokenizer.decode(ids, skip_special_tokens=True).strip())
    return tuple(texts)


def time_estimate(what: str, seconds: float, done: int, total: int) -> str:
    """One line: how long the first `done` of `total` took here, and what all of them will take
    at that pace (a guide for planning, measured on this device)."""
    whole = seconds / done * total
    length = (f"{whole / 3600:.1f} h" if whole >= 5400 else f"{whole / 60:.0f} min"
              if whole >= 90 else f"{whole:.0f} s")
    return f"{what}: the first {done} of {total} took {seconds:.1f} s here; all: about {length}"


def cache_for(cache: str, device) -> str:
    """The KV cache a `generation_cache` setting means on `device`: `static` or `dynamic`."""
    if cache not in CACHES:
        raise ValueError(f"cache={cache!r}: use one of {', '.join(CACHES)}")
    if cache == "auto":
        # Compiling pays off on CUDA only; transformers does not compile on the CPU.
        return "static" if torch.device(device).type == "cuda" else "dynamic"
    return cache


def bucketed(length: int, bucket: int = BUCKET) -> int:
    """`length` rounded up to a multiple of `bucket`."""
    return -(-length // bucket) * bucket


def pad_prompts(tokenizer, prompt_ids, bucket: int | None = None):
    """Right-pad rows of ids (never left: see above) to the longest, rounded up to `bucket`."""
    return tokenizer.pad({"input_ids": list(prompt_ids)}, padding=True,
                         pad_to_multiple_of=bucket, padding_side="right", return_tensors="pt")


def trim(row: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Cut a generated row after its first `</s>` (what follows is padding)."""
    ends = (row == eos_id).nonzero()
    return row[: int(ends[0]) + 1] if len(ends) else row


@torch.no_grad()
def generate(model, tokenizer, prompt_ids, *, batch_size: int, seed: int | None = None,
             progress: bool = True, desc: str = "generating", cache: str = "dynamic",
             **generate_kwargs) -> Generated:
    """Summaries for prompts (lists or tensors of token ids), `batch_size` at a time; keywords go
    to `model.generate`, `pad_token_id` defaulting to the tokenizer's (trl's `PPOTrainer.generate`
    leaves it to the caller). A seed repeats the draw for the same prompts, batch size and device;
    out of GPU memory, the batch size halves for the rest of the call. `cache`: see `cache_for`."""
    cache = cache_for(cache, next(model.parameters()).device)
    if cache == "static":
        generate_kwargs = dict(generate_kwargs, cache_implementation="static")
        if "max_new_tokens" in generate_kwargs:
            # transformers keeps the largest self-attention cache seen so far; bucketing its
            # size bounds the recompiles when PPO draws a new token budget each step.
            generate_kwargs["max_cache_len"] = bucketed(generate_kwargs["max_new_tokens"])
    prompt_ids = [torch.as_tensor(ids) for ids in prompt_ids]
    if seed is not None:
        torch.manual_seed(seed)
    # Sample from the policy itself, without dropout (PPO leaves the model in training mode).
    was_training = model.training
    model.eval()
    try:
        return _generate_sorted(model, tokenizer, prompt_ids, batch_size, progress, desc,
                                BUCKET if cache == "static" else None, generate_kwargs)
    finally:
        model.train(was_training)


def _generate_sorted(model, tokenizer, prompt_ids, batch_size, progress, desc, bucket,
                     generate_kwargs) -> Generated:
    device = next(model.parameters()).device
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    outputs: list[torch.Tensor | None] = [None] * len(prompt_ids)
    # Seconds of each batch: with a static cache, the first's (it compiles on CUDA) less the
    # next's is the compile cost, printed with the progress.
    seconds: list[float] = []
    bar = tqdm(total=len(order), desc=desc, disable=not progress)
    start = 0
    while start < len(order):
        picked = order[start:start + batch_size]
        batch = pad_prompts(tokenizer, [prompt_ids[i] for i in picked], bucket).to(device)
        started = time.perf_counter()
        try:
            rows = model.generate(**batch, **{"pad_token_id": tokenizer.pad_token_id,
                                              **generate_kwargs}).cpu()
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            # A large batch is fastest on a big GPU; on a smaller one, halve it and go on.
            torch.cuda.empty_cache()
            batch_size //= 2
            bar.write(f"GPU memory full: generating {batch_size} prompts at a time instead")
            continue
        seconds.append(time.perf_counter() - started)
        if bucket and len(seconds) == 2 and progress:
            first, second = seconds
            bar.write(f"static KV cache: the first batch took {first:.1f} s, the next "
                      f"{second:.1f} s: about {first - second:.1f} s of compiling (on CUDA)")
        if start == 0 and progress and len(picked) < len(order):
            bar.write(time_estimate(desc, seconds[0], len(picked), len(order))
                      + " (the longest prompts come first)")
        for i, row in zip(picked, rows, strict=True):
            outputs[i] = trim(row, tokenizer.eos_token_id)
        start += len(picked)
        bar.update(len(picked))
    bar.close()
    texts = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    return Generated(texts=[t.strip() for t in texts], token_ids=outputs)
