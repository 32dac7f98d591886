import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from detox_helpers import checkpoints, ppo
from detox_helpers.errors import DetoxError

SMALL = dict(batch_size=4, mini_batch_size=2, ppo_epochs=1, checkpoint_every=2,
             output_min_length=8, output_max_length=12)


def test_kl_to_the_reference_is_zero_before_any_update(isolated_settings):
    settings = isolated_settings(**SMALL)
    run = ppo.start(settings, progress=False)
    trainable = [n for n, p in run.trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "v_head" in n for n in trainable)
    row = ppo.ppo_step(run)          # trl measures KL on this batch before it updates
    assert abs(row["kl"]) < 1e-4
    assert row["step"] == 1 and set(ppo.STAT_COLUMNS) == set(row)


def test_the_first_token_of_every_summary_is_in_the_loss(isolated_settings):
    settings = isolated_settings(**SMALL)
    run = ppo.start(settings, progress=False)
    queries = [torch.tensor([5, 6, 7, 1]), torch.tensor([8, 9, 1])]
    # decoder start token, then the summary's tokens; the second one is shorter (padding)
    responses = [torch.tensor([0, 11, 12, 13, 1]), torch.tensor([0, 14, 1])]
    inputs = run.trainer.prepare_model_inputs(queries, responses)
    *_, masks = run.trainer.batched_forward_pass(run.trainer.model, queries, responses, inputs)
    # position i scores token i + 1: all of the first summary, and the second up to its end
    assert masks.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    # trl's own pass leaves the first token out, which is what the repair is for
    plain = super(type(run.trainer), run.trainer).batched_forward_pass(
        run.trainer.model, queries, responses, inputs)[-1]
    assert plain[:, 0].tolist() == [0, 0] and plain[:, 1:].tolist() == masks[:, 1:].tolist()


def test_each_pass_over_the_data_uses_every_row_once(isolated_settings):
    settings = isolated_settings(batch_size=4, mini_batch_size=2)
    seen = [i for step in range(5) for i in ppo.batch_indices(settings, step, 20)]
    assert sorted(seen) == list(range(20))
    assert ppo.batch_indices(settings, 5, 20) != ppo.batch_indices(settings, 0, 20)
    shards = [ppo.batch_indices(settings, 0, 40, rank, 2) for rank in (0, 1)]
    assert not set(shards[0]) & set(shards[1])


def test_response_budget_stays_in_range_and_is_repeatable(isolated_settings):
    settings = isolated_settings()
    budgets = [ppo.response_budget(settings, step) for step in range(200)]
    assert min(budgets) >= settings.output_min_length
    assert max(budgets) < settings.output_max_length and len(set(budgets)) > 5
    assert budgets == [ppo.response_budget(settings, step) for step in range(200)]


def comparable(stats):
    return [{k: v for k, v in row.items() if not k.endswith("_seconds")} for row in stats]


def test_a_stopped_and_resumed_run_ends_where_an_uninterrupted_one_does(
        isolated_settings, tmp_path):
    straight = isolated_settings(artifacts_dir=tmp_path / "straight", **SMALL)
    whole = ppo.train(straight, max_steps=4, progress=False)

    stopped = isolated_settings(artifacts_dir=tmp_path / "stopped", **SMALL)
    ppo.train(stopped, max_steps=2, progress=False)
    assert [p.name for p in stopped.layout.checkpoints()] == ["step-000002"]
    resumed = ppo.train(stopped, max_steps=4, resume=True, progress=False)

    for a, b in zip(comparable(whole.history), comparable(resumed.history), strict=True):
        assert a.keys() == b.keys()
        assert all(np.isclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a), (a, b)
    weights_a = load_file(straight.layout.final_adapter / "adapter_model.safetensors")
    weights_b = load_file(stopped.layout.final_adapter / "adapter_model.safetensors")
    assert weights_a.keys() == weights_b.keys()
    assert all(torch.allclose(weights_a[k], weights_b[k], atol=1e-6) for k in weights_a)
    assert any(weights_a[k].abs().sum() > 0 for k in weights_a if "lora_B" in k)  # it trained
    csv = stopped.layout.stats_file.read_text().splitlines()
    assert len(csv) == 1 + 4


def test_a_checkpoint_holds_what_resuming_needs(isolated_settings):
    settings = isolated_settings(**SMALL)
    run = ppo.train(settings, max_steps=2, progress=False)
    folder = settings.layout.checkpoints()[-1]
    assert (folder / "adapter" / "adapter_model.safetensors").exists()
    state = torch.load(folder / checkpoints.STATE_FILE, weights_only=True)  # data only
    assert {"value_head", "optimizer", "kl_coef", "rng", "history", "settings"} <= set(state)
    assert state["optimizer"]["state"]           # Adam moments, not just hyper-parameters
    assert len(state["history"]) == run.step == 2
    assert state["settings"]["lora_r"] == settings.lora_r
    assert (settings.layout.final_adapter / checkpoints.VALUE_HEAD_FILE).exists()


def test_resuming_with_another_seed_is_refused(isolated_settings):
    settings = isolated_settings(**SMALL)
    ppo.train(settings, max_steps=2, progress=False)
    other = isolated_settings(seed=7, **SMALL)
    with pytest.raises(DetoxError, match="seed"):
        ppo.train(other, max_steps=3, resume=True, progress=False)


def test_too_small_a_train_split_is_a_clear_error(isolated_settings):
    settings = isolated_settings(batch_size=400, mini_batch_size=4)
    with pytest.raises(DetoxError, match="fewer than batch_size=400"):
        ppo.start(settings, progress=False)


def without_timings(row):
    return {k: v for k, v in row.items() if k not in ppo.TIMING_COLUMNS}


def test_a_step_taken_apart_is_the_step_ppo_step_takes(isolated_settings, tmp_path):
    whole = ppo.start(isolated_settings(artifacts_dir=tmp_path / "a", **SMALL), progress=False)
    parts = ppo.start(isolated_settings(artifacts_dir=tmp_path / "b", **SMALL), progress=False)
    for _ in range(2):
        expected = ppo.ppo_step(whole)
        step = ppo.take_batch(parts)
        ppo.sample(parts, step)
        ppo.score(parts, step)
        ppo.optimise(parts, step)
        row = ppo.record(parts, step)
        assert without_timings(row) == pytest.approx(without_timings(expected), rel=1e-5)
    assert {"returns_mean", "advantages_mean", "clipfrac", "value_error"} <= set(row)


def test_a_reward_function_replaces_the_reward_but_not_the_measured_toxicity(isolated_settings,
                                                                              tmp_path):
    plain = ppo.start(isolated_settings(artifacts_dir=tmp_path / "a", **SMALL), progress=False)
    custom = ppo.start(isolated_settings(artifacts_dir=tmp_path / "b", **SMALL), progress=False)
    seen = []

    def constant(prompts, summaries):
        seen.append((len(prompts), len(summaries)))
        return [0.25] * len(summaries)

    expected = ppo.ppo_step(plain)
    row = ppo.ppo_step(custom, reward_function=constant)
    assert seen == [(4, 4)]
    assert row["reward_mean"] == pytest.approx(0.25) and row["reward_std"] == 0
    assert row["reward_mean"] != pytest.approx(expected["reward_mean"])
    # the same samples (sampling comes before the reward), so the classifier's toxicity agrees
    assert row["toxicity_mean"] == pytest.approx(expected["toxicity_mean"], rel=1e-5)


def test_one_scoring_pass_over_the_batch_computes_what_trls_chunks_do(isolated_settings):
    settings = isolated_settings(**SMALL)                      # batch 4, mini-batch 2
    run = ppo.start(settings, progress=False)
    assert not run.trainer.scoring_in_one_pass                 # the CPU keeps trl's chunks
    run.trainer.scoring_in_one_pass = True                     # what a GPU run does
    queries = [torch.tensor([5, 6, 7, 1]), torch.tensor([8, 9, 1]), torch.tensor([4, 1]),
               torch.tensor([3, 3, 3, 3, 1])]
    responses = [torch.tensor([0, 11, 12, 13, 1]), torch.tensor([0, 14, 1]),
                 torch.tensor([0, 15, 16, 1]), torch.tensor([0, 17, 1])]
    inputs = run.trainer.prepare_model_inputs(queries, responses)
    calls, forward = [], run.trainer.model.forward
    run.trainer.model.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    whole = run.trainer.batched_forward_pass(run.trainer.model, queries, responses, inputs,
                                             return_logits=True)
    assert len(calls) == 1                                         # one pass, not two chunks
    chunked = super(type(run.trainer), run.trainer).batched_forward_pass(
        run.trainer.model, queries, responses, inputs, return_logits=True)
    assert len(calls) == 3 and run.trainer.config.mini_batch_size == 2  # trl's: 2 chunks
    for ours, trls in zip(whole[:3], chunked[:3], strict=True):    # logprobs, logits, values
        assert torch.allclose(ours, trls, atol=1e-5)
    assert whole[3][:, 1:].tolist() == chunked[3][:, 1:].tolist()  # masks, but position 0
