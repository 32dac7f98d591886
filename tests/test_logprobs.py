"""Notebook 06's log-probabilities of given summaries: by hand on a decoder that reads one token
(the first token counted, padding not), and on the tiny policy one padded pass equals each summary
scored alone."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import BatchEncoding

from detox_helpers import logprobs
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


# A decoder whose next-token distribution depends on the token it reads only: row i of
# NEXT_TOKEN is the distribution after token i (0 is the start and the padding, 1 is </s>).
NEXT_TOKEN = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25],
                           [0.4, 0.3, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7]])


class BigramDecoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, input_ids, attention_mask, decoder_input_ids):
        return SimpleNamespace(logits=NEXT_TOKEN.log()[decoder_input_ids] * self.scale)


class PaddingTokenizer:
    pad_token_id = 0

    def pad(self, encoded, padding, pad_to_multiple_of, padding_side, return_tensors):
        rows = [list(map(int, ids)) for ids in encoded["input_ids"]]
        width = max(map(len, rows))
        return BatchEncoding(dict(
            input_ids=torch.tensor([row + [0] * (width - len(row)) for row in rows]),
            attention_mask=torch.tensor([[1] * len(row) + [0] * (width - len(row))
                                         for row in rows])))


def test_a_summarys_log_probability_by_hand_first_token_included_padding_not():
    summaries = [torch.tensor([0, 2, 3, 1]), torch.tensor([0, 3])]   # start, tokens, </s>
    result = logprobs.summary_logprobs(BigramDecoder(), PaddingTokenizer(),
                                       [[5, 6, 7], [5]], summaries)
    # P(2 | start) P(3 | 2) P(</s> | 3) = 0.3 x 0.1 x 0.1; P(3 | start) = 0.4, padding unscored
    assert result.tolist() == pytest.approx([np.log(0.3 * 0.1 * 0.1), np.log(0.4)])
    assert result.requires_grad       # the loss of notebook 06 trains through it
