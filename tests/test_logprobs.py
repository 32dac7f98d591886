"""Notebook 06's log-probabilities of given summaries: one padded pass equals each summary
scored alone, every token counted, the first included."""

import torch

from detox_helpers.data import load_splits
from detox_helpers.generation import generate, sampling_kwargs
from detox_helpers.logprobs import summary_logprobs
from detox_helpers.models import load_policy


def test_one_padded_pass_equals_each_summary_scored_alone_first_token_included(tiny_settings):
    model, tokenizer = load_policy(tiny_settings)
    model.eval()
    prompts = list(load_splits(tiny_settings)["train"]["input_ids"][:3])
    summaries = generate(model, tokenizer, prompts, batch_size=3, seed=0, progress=False,
                         **sampling_kwargs(tiny_settings, 12)).token_ids
    summaries[1] = summaries[1][:6]  # summaries of different lengths: padding to mask
    with torch.no_grad():
        batched = summary_logprobs(model, tokenizer, prompts, summaries)
        alone = []
        for prompt, summary in zip(prompts, summaries, strict=True):
            logits = model(input_ids=prompt[None], decoder_input_ids=summary[None, :-1]).logits
            picked = logits[0].log_softmax(-1).gather(-1, summary[1:, None])
            alone.append(picked.sum())  # tokens 1.. of the ids: the first token after the start
    assert torch.allclose(batched, torch.stack(alone), atol=1e-4)
    assert (batched < 0).all()
