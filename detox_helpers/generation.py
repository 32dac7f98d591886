"""Batched summary generation: the one path used by evaluation, PPO and the comparison.

Prompts are right-padded (left padding on encoder-decoder models destabilised KL in trl's own
history) and sorted by length so each batch carries little padding; results come back in the
caller's order.
"""

from __future__ import annotations

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


def trim(row: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Cut a generated row after its first `</s>` (what follows is padding)."""
    ends = (row == eos_id).nonzero()
    return row[: int(ends[0]) + 1] if len(ends) else row


@torch.no_grad()
def generate(model, tokenizer, prompt_ids, *, batch_size: int, seed: int | None = None,
             progress: bool = True, desc: str = "generating", **generate_kwargs) -> Generated:
    """Summaries for many prompts (lists or tensors of token ids), `batch_size` at a time.

    `generate_kwargs` go to `model.generate` (see `sampling_kwargs`). A seed makes the draw
    repeatable for the same prompts, batch size and device. When the GPU runs out of memory
    the batch size is halved for the rest of the call.
    """
    prompt_ids = [torch.as_tensor(ids) for ids in prompt_ids]
    if seed is not None:
        torch.manual_seed(seed)
    # Sample from the policy itself, without dropout (PPO leaves the model in training mode).
    was_training = model.training
    model.eval()
    try:
        return _generate_sorted(model, tokenizer, prompt_ids, batch_size, progress, desc,
                                generate_kwargs)
    finally:
        model.train(was_training)


def _generate_sorted(model, tokenizer, prompt_ids, batch_size, progress, desc,
                     generate_kwargs) -> Generated:
    device = next(model.parameters()).device
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    outputs: list[torch.Tensor | None] = [None] * len(prompt_ids)
    bar = tqdm(total=len(order), desc=desc, disable=not progress)
    start = 0
    while start < len(order):
        picked = order[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [prompt_ids[i] for i in picked]}, padding=True,
                              padding_side="right", return_tensors="pt").to(device)
        try:
            rows = model.generate(**batch, pad_token_id=tokenizer.pad_token_id,
                                  **generate_kwargs)
        except torch.cuda.OutOfMemoryError:
            if batch_size == 1:
                raise
            # A large batch is fastest on a big GPU; on a smaller one, halve it and go on.
            torch.cuda.empty_cache()
            batch_size //= 2
            bar.write(f"GPU memory full: generating {batch_size} prompts at a time instead")
            continue
        for i, row in zip(picked, rows.cpu(), strict=True):
            outputs[i] = trim(row, tokenizer.eos_token_id)
        start += len(picked)
        bar.update(len(picked))
    bar.close()
    texts = tokenizer.batch_decode(outputs, skip_special_tokens=True)
    return Generated(texts=[t.strip() for t in texts], token_ids=outputs)
