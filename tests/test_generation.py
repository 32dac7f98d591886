import torch

from detox_helpers.generation import generate, sampling_kwargs, trim
from detox_helpers.models import load_policy


def test_trim_cuts_after_the_first_end_of_sequence():
    assert trim(torch.tensor([0, 5, 6, 1, 0, 0]), eos_id=1).tolist() == [0, 5, 6, 1]
    assert trim(torch.tensor([0, 5, 6, 7]), eos_id=1).tolist() == [0, 5, 6, 7]


def prompts(tiny_settings, count):
    from detox_helpers.data import build_dataset

    return list(build_dataset(tiny_settings)["test"]["input_ids"])[:count]


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
