"""trl_patch's repairs of trl's PPO trainer, with trl's own pass replaced by one that records its
arguments: the first token of each summary enters the loss, and when a batch is scored in one
pass."""

from types import SimpleNamespace

import pytest
import torch
from trl import PPOTrainer

from detox_helpers import trl_patch


def test_the_first_token_of_each_summary_enters_trls_loss(monkeypatch):
    chunks, calls = [], []

    def trl_pass(self, model, queries, responses, model_inputs, return_logits=False,
                 response_masks=None):
        chunks.append(self.config.mini_batch_size)
        calls.append((model, queries, model_inputs, return_logits, response_masks))
        masks = torch.ones(len(responses), 3)
        masks[:, 0] = 0                      # trl 0.11.4: position 0 never reaches the loss
        return "logprobs", "logits", "values", masks

    monkeypatch.setattr(PPOTrainer, "batched_forward_pass", trl_pass)
    trainer = object.__new__(trl_patch.FirstTokenPPOTrainer)  # trl's own set-up is not under test
    trainer.config, trainer.is_encoder_decoder = SimpleNamespace(mini_batch_size=2), True
    # a summary with a token after the start token, and one with the start token only
    responses = [torch.tensor([0, 5, 1]), torch.tensor([0]), torch.tensor([0, 7])]
    masks = trainer.batched_forward_pass(None, ["q"] * 3, responses, {})[3]
    assert masks.tolist() == [[1, 1, 1], [0, 1, 1], [1, 1, 1]]
    trainer.scoring_in_one_pass = True       # the whole batch at once, then trl's chunk again
    trainer.batched_forward_pass(None, ["q"] * 3, responses, {})
    assert chunks == [2, 3] and trainer.config.mini_batch_size == 2
    # everything else goes to trl as given
    trainer.batched_forward_pass("policy", ["q"], responses[:1], {"inputs": 1}, True, "masks")
    assert calls == [(None, ["q"] * 3, {}, False, None)] * 2 + [
        ("policy", ["q"], {"inputs": 1}, True, "masks")]
    trainer.is_encoder_decoder = False       # a decoder-only model keeps trl's mask
    assert trainer.batched_forward_pass(None, ["q"] * 3, responses, {})[3][:, 0].tolist() == [
        0, 0, 0]


@pytest.mark.parametrize("dtype, one_pass", [(torch.float32, False), (torch.bfloat16, True)])
def test_a_cpu_scores_a_batch_in_one_pass_only_in_bfloat16(dtype, one_pass):
    model = torch.nn.Linear(4, 4).to(dtype)
    model.register_parameter("head", torch.nn.Parameter(torch.ones(2)))  # a float32 minority
    assert trl_patch.one_scoring_pass(model) is one_pass


def test_a_gpu_scores_a_batch_in_one_pass_in_float32_too():
    weight = SimpleNamespace(device=torch.device("cuda"), dtype=torch.float32, numel=lambda: 4)
    assert trl_patch.one_scoring_pass(SimpleNamespace(parameters=lambda: iter([weight])))
