"""trl 0.11.4 (pinned on purpose, see docs/design.md) as the lab runs it: its PPO trainer with
one method changed, the Accelerate set-up its value-head model needs, its notices silenced."""

from __future__ import annotations

import warnings

import torch
from trl import PPOTrainer

from .models import weights_precision

# trl's deprecation notices say nothing a learner can act on.
for _message in ("`PPOTrainer` is deprecated", "`PPOConfig` is deprecated",
                 "No dataset is provided", "`past_key_values` is deprecated"):
    warnings.filterwarnings("ignore", message=_message)


class FirstTokenPPOTrainer(PPOTrainer):
    """trl's PPOTrainer, built like it, with the first token of an encoder-decoder's summary trained
    too, and a batch scored in one pass where `one_scoring_pass` says so (`scoring_in_one_pass`).

    trl 0.11.4 scores position i of a response with the log-probability of token i + 1, then, for
    encoder-decoders, masks the positions before `start = 1`: position 0, which scores the first
    generated token, never reaches the loss (trl issue #176 asked about this mask). A policy whose
    summaries open with a rude word (an adjective before the first name) could then never learn to
    stop. Here position 0 counts for every response with a token after the start token."""
    scoring_in_one_pass = False

    def __init__(self, config, model, *args, **kwargs):
        super().__init__(config, model, *args, **kwargs)
        self.scoring_in_one_pass = one_scoring_pass(model)  # same numbers, fewer passes

    def batched_forward_pass(self, model, queries, responses, model_inputs,
                             return_logits=False, response_masks=None):
        # trl runs its scoring passes over a whole batch (policy with values, then the
        # reference) in chunks of mini_batch_size. The inputs are padded once for the whole
        # batch, so one pass over all of it computes the same numbers with fewer, larger
        # launches (see `one_scoring_pass` for where it pays).
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


def one_scoring_pass(model) -> bool:
    """Whether the trainer should score a batch in one pass (`scoring_in_one_pass`): on a GPU, and
    on a CPU whose frozen weights are bfloat16, where it measured 1.17x and 1.22x (2-core Xeon with
    AMX, flan-t5-base shapes, batch 16). A CPU in float32 keeps trl's chunks: one pass measured
    1.00x on that Xeon, and on a 2-core AMD EPYC 7.8 s against 6.8 s chunked (batch 16)."""
    on_gpu = next(model.parameters()).device.type == "cuda"
    return on_gpu or weights_precision(model) == "bfloat16"


def set_up_accelerate(device: torch.device) -> None:
    """Call before building trl's value-head model, which asks Accelerate's process state (one
    a process, made by whoever asks first) for the device: made there, on the CPU it is no CPU
    state, and with several CPU processes under torchrun the trainer's `Accelerator(cpu=True)`
    (notebook 04's `accelerator_kwargs`) finds it in its way. So on the CPU it is made here."""
    if torch.device(device).type == "cpu":
        from accelerate import PartialState

        PartialState(cpu=True)
