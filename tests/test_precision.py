"""bfloat16 on the CPU: with the policy's frozen weights in bfloat16, the tiny world's
log-probabilities, KL and rewards stay within stated tolerances of float32's, and what trains
(LoRA, value head, the optimiser's state) stays float32. On a CPU without native bfloat16 torch
emulates it: slower, but the same rounding, so these tests run on any machine."""

import dataclasses

import numpy as np
import pytest
import torch

from detox_helpers import checkpoints
from detox_helpers.data import load_splits
from detox_helpers.generation import generate, sampling_kwargs
from detox_helpers.logprobs import summary_logprobs
from detox_helpers.models import load_policy
from detox_helpers.reward import load_reward_model
from detox_helpers.unattended import run_notebook_here

# The stated tolerances (docs/design.md, "Precision"), bfloat16 against float32:
TOKEN_LOGPROB_MEAN = 0.005  # nats: mean |difference| of a summary token's log-probability
TOKEN_LOGPROB_MAX = 0.025   # nats: the largest such difference, averaged over a summary
KL_ABSOLUTE, KL_RELATIVE = 0.02, 0.05  # the batch's mean KL: within 0.02 nats + 5%
SAME_GREEDY = 0.9           # share of greedy summaries identical in both precisions
REWARD_MEAN = 0.05          # logits: the greedy summaries' mean reward

PROMPTS = 16


def policies(settings, precision):
    """(the instruct policy, the base model without the instruct adapter, the tokenizer)."""
    chosen = dataclasses.replace(settings, precision=precision)
    policy, tokenizer = load_policy(chosen)
    base, _ = load_policy(dataclasses.replace(chosen, instruct_adapter=""))
    return policy, base, tokenizer


@pytest.fixture(scope="module")
def scored(tiny_settings):
    """Sampled summaries of the float32 policy, scored under both precisions: per precision,
    (summed log-probability under the policy, under the base model), and the token counts."""
    prompts = list(load_splits(tiny_settings)["test"]["input_ids"][:PROMPTS])
    models = {p: policies(tiny_settings, p) for p in ("float32", "bfloat16")}
    policy, _, tokenizer = models["float32"]
    sampled = generate(policy, tokenizer, [p for p in prompts for _ in range(4)], batch_size=16,
                       seed=0, progress=False, **sampling_kwargs(tiny_settings, 30))
    with torch.no_grad():
        logprobs = {p: tuple(summary_logprobs(m, tokenizer, [q for q in prompts for _ in range(4)],
                                              sampled.token_ids) for m in models[p][:2])
                    for p in models}
    tokens = torch.tensor([len(ids) - 1 for ids in sampled.token_ids], dtype=torch.float32)
    return dict(models=models, prompts=prompts, logprobs=logprobs, tokens=tokens)


def test_bfloat16_policy_holds_its_weights_in_bfloat16(scored):
    policy, base, _ = scored["models"]["bfloat16"]
    assert {p.dtype for p in policy.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in base.parameters()} == {torch.bfloat16}


def test_log_probabilities_and_kl_in_bfloat16_are_within_tolerance_of_float32(scored):
    (policy32, base32), (policy16, base16) = (scored["logprobs"][p]
                                              for p in ("float32", "bfloat16"))
    per_token = (policy16 - policy32).abs() / scored["tokens"]
    assert per_token.mean() <= TOKEN_LOGPROB_MEAN and per_token.max() <= TOKEN_LOGPROB_MAX
    # the KL estimate trl uses, log p(policy) - log p(reference) summed over the summary,
    # averaged over the batch (objective/kl)
    kl32, kl16 = (policy32 - base32).mean(), (policy16 - base16).mean()
    assert kl32 > 0.05  # the two models differ: a KL worth comparing
    assert abs(kl16 - kl32) <= KL_ABSOLUTE + KL_RELATIVE * kl32


def test_greedy_summaries_and_their_rewards_in_bfloat16_match_float32(scored, tiny_settings):
    reward_model = load_reward_model(tiny_settings)
    texts, rewards = {}, {}
    for precision, (policy, _, tokenizer) in scored["models"].items():
        texts[precision] = generate(policy, tokenizer, scored["prompts"], batch_size=16,
                                    progress=False, do_sample=False, max_new_tokens=40).texts
        rewards[precision] = reward_model.score(texts[precision])[0]
    same = np.mean([a == b for a, b in zip(texts["float32"], texts["bfloat16"], strict=True)])
    assert same >= SAME_GREEDY
    assert abs(rewards["bfloat16"].mean() - rewards["float32"].mean()) <= REWARD_MEAN


SMALL = dict(batch_size=4, mini_batch_size=2, ppo_epochs=1, checkpoint_every=2,
             output_min_length=8, output_max_length=12)


def test_ppo_in_bfloat16_trains_float32_lora_and_value_head_and_records_it(isolated_settings):
    folder = isolated_settings().artifacts_dir
    run = run_notebook_here("04", overrides=dict(SMALL, artifacts_dir=folder,
                                                 precision="bfloat16"), max_steps=2)
    trained = {p.dtype for p in run["model"].parameters() if p.requires_grad}
    frozen = {p.dtype for p in run["model"].parameters() if not p.requires_grad}
    assert trained == {torch.float32} and frozen == {torch.bfloat16}
    assert run["ppo_trainer"].scoring_in_one_pass  # bfloat16 on a CPU scores a batch in one pass
    state = run["ppo_trainer"].optimizer.state.values()
    assert state and all(v.dtype == torch.float32 for s in state for v in s.values()
                         if torch.is_tensor(v) and v.is_floating_point())
    history = run["history"]
    assert abs(history[0]["kl"]) < 1e-4  # policy and reference agree before the first update
    assert all(np.isfinite(list(row.values())).all() for row in history)
    record = checkpoints.training_record(run["settings"].layout)
    assert record["precision"] == "bfloat16"
