"""generation: summaries cut at their first end token, prompts padded to their bucket, batched
and seeded sampling on the tiny policy, a full GPU, and the generation cache."""

import pytest
import torch

from detox_helpers import generation
from detox_helpers.errors import DetoxError
from detox_helpers.generation import (
    cache_for,
    generate,
    pad_prompts,
    sampled_and_greedy,
    sampling_kwargs,
)
from detox_helpers.models import load_policy
from detox_helpers.settings import load_settings


def test_a_summary_is_cut_after_its_first_end_token():
    eos = 1
    assert generation.trim(torch.tensor([0, 5, 6, 1, 7, 1, 0]), eos).tolist() == [0, 5, 6, 1]
    assert generation.trim(torch.tensor([0, 1, 0, 0]), eos).tolist() == [0, 1]
    assert generation.trim(torch.tensor([0, 5, 6]), eos).tolist() == [0, 5, 6]  # never ended


def test_a_length_is_rounded_up_to_its_bucket_and_never_cut():
    assert [generation.bucketed(n) for n in (1, 63, 64, 65, 128, 129)] == [64, 64, 64, 128,
                                                                          128, 192]
    assert [generation.bucketed(n, bucket=10) for n in (9, 10, 11)] == [10, 10, 20]


def prompts(tiny_settings, count):
    from detox_helpers.data import load_splits

    return list(load_splits(tiny_settings)["test"]["input_ids"])[:count]


def test_batched_right_padded_generation_equals_one_at_a_time(tiny_settings):
    model, tokenizer = load_policy(tiny_settings)
    ids = prompts(tiny_settings, 6)
    assert len({len(p) for p in ids}) > 1          # different lengths: padding is exercised
    greedy = dict(do_sample=False, max_new_tokens=30)
    batched = generate(model, tokenizer, ids, batch_size=6, progress=False, **greedy)
    single = [generate(model, tokenizer, [p], batch_size=1, progress=False, **greedy).texts[0]
              for p in ids]
    assert batched.texts == single
    for row in batched.token_ids:
        assert row[0] == model.config.decoder_start_token_id
        assert (row == tokenizer.eos_token_id).sum() <= 1


def test_sampling_is_seeded_and_the_budget_is_kept(tiny_settings):
    model, tokenizer = load_policy(tiny_settings)
    ids = prompts(tiny_settings, 8)
    kwargs = sampling_kwargs(tiny_settings, max_new_tokens=12)
    first = generate(model, tokenizer, ids, batch_size=4, seed=7, progress=False, **kwargs)
    again = generate(model, tokenizer, ids, batch_size=4, seed=7, progress=False, **kwargs)
    other = generate(model, tokenizer, ids * 4, batch_size=16, seed=8, progress=False, **kwargs)
    assert first.texts == again.texts
    assert other.texts != first.texts * 4
    assert all(len(row) <= 12 + 1 for row in first.token_ids)   # start token + budget
    assert len(first.texts) == 8


def test_notebook_03s_hidden_test_has_a_prompt_whose_sample_is_not_greedy(tiny_settings):
    """The hidden test of `one-summary` tells a sampling answer from a greedy one only where the
    two differ: on the tiny world they do at its first try (test prompt 2, seed 0), with the
    notebook's keywords; the same seed gives the same sample twice."""
    model, tokenizer = load_policy(tiny_settings)
    prompt = prompts(tiny_settings, 3)[2].unsqueeze(0)
    kwargs = sampling_kwargs(tiny_settings, tiny_settings.eval_max_new_tokens) | {
        "pad_token_id": tokenizer.pad_token_id}
    sampled, greedy = sampled_and_greedy(model, tokenizer, prompt, kwargs, seed=0)
    assert sampled != greedy and sampled_and_greedy(model, tokenizer, prompt, kwargs, 0) == (
        sampled, greedy)


def test_sampling_ignores_dropout_and_restores_the_training_mode(tiny_settings):
    from transformers import T5ForConditionalGeneration

    policy, tokenizer = load_policy(tiny_settings)
    config = policy.config
    config.dropout_rate = 0.5                       # a policy whose dropout would matter
    noisy = T5ForConditionalGeneration(config)
    noisy.load_state_dict(policy.state_dict())
    ids = prompts(tiny_settings, 4)
    kwargs = sampling_kwargs(tiny_settings, max_new_tokens=12)
    noisy.eval()
    in_eval = generate(noisy, tokenizer, ids, batch_size=4, seed=3, progress=False, **kwargs)
    noisy.train()
    in_train = generate(noisy, tokenizer, ids, batch_size=4, seed=3, progress=False, **kwargs)
    assert in_train.texts == in_eval.texts and noisy.training


def test_prompts_pad_right_to_the_bucket_and_are_never_cut(tiny_settings):
    _, tokenizer = load_policy(tiny_settings)
    for lengths, padded in [([5], 64), ([64], 64), ([65, 3], 128), ([130, 64, 1], 192)]:
        ids = [list(range(2, 2 + n)) for n in lengths]
        batch = pad_prompts(tokenizer, ids, bucket=64)
        assert batch["input_ids"].shape == (len(ids), padded)
        for row, mask, prompt in zip(batch["input_ids"], batch["attention_mask"], ids,
                                     strict=True):
            assert row[:len(prompt)].tolist() == prompt                  # right padding, uncut
            assert (row[len(prompt):] == tokenizer.pad_token_id).all()
            assert mask.tolist() == [1] * len(prompt) + [0] * (padded - len(prompt))
    assert pad_prompts(tokenizer, [[2] * 70, [3] * 5])["input_ids"].shape == (2, 70)


class HoldsTwoPrompts(torch.nn.Module):
    """The tiny policy on a pretend GPU whose memory holds two prompts at a time."""

    def __init__(self, model):
        super().__init__()
        self.model, self.batch_sizes = model, []

    def generate(self, input_ids, **kwargs):
        self.batch_sizes.append(len(input_ids))
        if len(input_ids) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (pretend)")
        return self.model.generate(input_ids=input_ids, **kwargs)


def test_a_full_gpu_halves_the_batch_and_loses_nothing(tiny_settings, capsys):
    model, tokenizer = load_policy(tiny_settings)
    ids = prompts(tiny_settings, 7)
    greedy = dict(do_sample=False, max_new_tokens=20, seed=0)
    small = HoldsTwoPrompts(model)
    halved = generate(small, tokenizer, ids, batch_size=8, **greedy)
    assert small.batch_sizes == [7, 4, 2, 2, 2, 1]  # 7 -> 4 -> 2, then on at 2
    printed = capsys.readouterr()
    assert "GPU memory full: generating 4 prompts at a time" in printed.out + printed.err
    whole = generate(model, tokenizer, ids, batch_size=8, progress=False, **greedy)
    assert halved.texts == whole.texts


def test_static_cache_greedy_generation_equals_dynamic_on_the_cpu(tiny_settings):
    # transformers uses a static cache on the CPU without compiling it: quick (under a second).
    model, tokenizer = load_policy(tiny_settings)
    ids = prompts(tiny_settings, 8)
    greedy = dict(do_sample=False, max_new_tokens=30, seed=0, progress=False)
    static = generate(model, tokenizer, ids, batch_size=3, cache="static", **greedy)
    dynamic = generate(model, tokenizer, ids, batch_size=3, cache="dynamic", **greedy)
    assert static.texts == dynamic.texts
    for a, b in zip(static.token_ids, dynamic.token_ids, strict=True):
        assert torch.equal(a, b)


def test_the_cache_setting_resolves_per_device_and_rejects_unknown_values(tiny_settings):
    assert tiny_settings.generation_cache == "auto"
    assert cache_for(tiny_settings.generation_cache, torch.device("cpu")) == "dynamic"
    assert cache_for(tiny_settings.generation_cache, torch.device("cuda")) == "static"
    assert cache_for(tiny_settings.generation_cache, "cuda:1") == "static"
    dynamic = load_settings(environ={"DETOX_GENERATION_CACHE": "dynamic"})
    assert cache_for(dynamic.generation_cache, torch.device("cuda")) == "dynamic"
    with pytest.raises(DetoxError, match="generation_cache='paged'.*auto, static or dynamic"):
        load_settings(environ={}, generation_cache="paged")
    model, tokenizer = load_policy(tiny_settings)
    with pytest.raises(ValueError, match="cache='paged'"):
        generate(model, tokenizer, [[2, 3]], batch_size=1, cache="paged", progress=False)
