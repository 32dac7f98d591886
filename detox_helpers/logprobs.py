"""Log-probabilities of given summaries under a sequence-to-sequence model, in one batched
pass: what a policy-gradient loss and a KL to the reference need (notebook 06)."""

from __future__ import annotations

import torch

from .generation import pad_prompts


def summary_logprobs(model, tokenizer, prompt_ids, summary_ids) -> torch.Tensor:
    """Each summary's log-probability given its prompt: the sum over its tokens, the first
    included (`summary_ids` are `generate`'s token ids: the decoder's start token, the tokens,
    `</s>` when it ended). Differentiable unless called under `torch.no_grad()`."""
    device = next(model.parameters()).device
    prompts = pad_prompts(tokenizer, [torch.as_tensor(ids) for ids in prompt_ids]).to(device)
    summaries = pad_prompts(tokenizer, [torch.as_tensor(ids) for ids in summary_ids]).to(device)
    # The decoder reads each token and predicts the next: position i scores token i + 1. It is
    # causal, so the padding after a summary changes nothing before it; the mask drops it.
    logits = model(**prompts, decoder_input_ids=summaries.input_ids[:, :-1]).logits.float()
    per_token = logits.log_softmax(-1).gather(-1, summaries.input_ids[:, 1:, None]).squeeze(-1)
    return (per_token * summaries.attention_mask[:, 1:]).sum(-1)
