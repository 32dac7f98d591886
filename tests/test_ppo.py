"""Notebook 04's PPO loop and the package's pieces of it: the first-token repair, the batch order,
the response budget, the progress line, the reward's source, checkpoints and resuming. The loop
is the notebook's: these tests run its cells (in this process, as `run_notebook` does) and look at
what it built and saved."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from detox_helpers import checkpoints, loop, ppo
from detox_helpers.errors import DetoxError
from detox_helpers.unattended import run_notebook_here

SMALL = dict(batch_size=4, mini_batch_size=2, ppo_epochs=1, checkpoint_every=2,
             output_min_length=8, output_max_length=12)
# The statistics file's columns, in order: what notebook 05, the report and the plots read.
STAT_COLUMNS = ["step", "reward_mean", "reward_std", "toxicity_mean", *ppo.TRL_STATISTICS,
                "response_length", "seconds"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_settings, with_data):
    """Notebook 04 run for 2 steps on small settings: its variables."""
    folder = with_data(tmp_path_factory.mktemp("ppo"))
    return run_notebook_here("04", overrides=dict(SMALL, artifacts_dir=str(folder)), max_steps=2)


def test_the_loop_trains_lora_and_the_value_head_only_and_saves_them(trained):
    settings, history = trained["settings"], trained["history"]
    names = [n for n, p in trained["model"].named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or "v_head" in n for n in names)
    assert [row["step"] for row in history] == [1, 2] and set(STAT_COLUMNS) == set(history[0])
    assert abs(history[0]["kl"]) < 1e-4       # trl measures KL before the first update
    weights = load_file(settings.layout.final_adapter / "adapter_model.safetensors")
    assert any(w.abs().sum() > 0 for k, w in weights.items() if "lora_B" in k)  # it trained
    record = checkpoints.training_record(settings.layout)
    assert record["steps"] == 2 and record["reward"] == ppo.REWARD_MODULE


def test_the_first_token_of_every_summary_is_in_the_loss(trained):
    trainer = trained["ppo_trainer"]
    queries = [torch.tensor([5, 6, 7, 1]), torch.tensor([8, 9, 1])]
    # decoder start token, then the summary's tokens; the second one is shorter (padding)
    responses = [torch.tensor([0, 11, 12, 13, 1]), torch.tensor([0, 14, 1])]
    inputs = trainer.prepare_model_inputs(queries, responses)
    *_, masks = trainer.batched_forward_pass(trainer.model, queries, responses, inputs)
    # position i scores token i + 1: all of the first summary, and the second up to its end
    assert masks.tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    # trl's own pass leaves the first token out, which is what the repair is for
    plain = super(type(trainer), trainer).batched_forward_pass(
        trainer.model, queries, responses, inputs)[-1]
    assert plain[:, 0].tolist() == [0, 0] and plain[:, 1:].tolist() == masks[:, 1:].tolist()


def test_one_scoring_pass_over_the_batch_computes_what_trls_chunks_do(trained):
    trainer = trained["ppo_trainer"]                           # batch 4, mini-batch 2
    assert not trainer.scoring_in_one_pass          # a CPU in float32 keeps trl's chunks
    queries = [torch.tensor([5, 6, 7, 1]), torch.tensor([8, 9, 1]), torch.tensor([4, 1]),
               torch.tensor([3, 3, 3, 3, 1])]
    responses = [torch.tensor([0, 11, 12, 13, 1]), torch.tensor([0, 14, 1]),
                 torch.tensor([0, 15, 16, 1]), torch.tensor([0, 17, 1])]
    inputs = trainer.prepare_model_inputs(queries, responses)
    calls, forward = [], trainer.model.forward
    trainer.model.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    try:
        trainer.scoring_in_one_pass = True                     # what a GPU run does
        whole = trainer.batched_forward_pass(trainer.model, queries, responses, inputs,
                                             return_logits=True)
        assert len(calls) == 1                                 # one pass, not two chunks
        chunked = super(type(trainer), trainer).batched_forward_pass(
            trainer.model, queries, responses, inputs, return_logits=True)
        assert len(calls) == 3 and trainer.config.mini_batch_size == 2  # trl's: 2 chunks
    finally:
        trainer.scoring_in_one_pass = False
        trainer.model.forward = forward
    for ours, trls in zip(whole[:3], chunked[:3], strict=True):    # logprobs, logits, values
        assert torch.allclose(ours, trls, atol=1e-5)
    assert whole[3][:, 1:].tolist() == chunked[3][:, 1:].tolist()  # masks, but position 0


def test_a_checkpoint_holds_what_resuming_needs(trained):
    settings = trained["settings"]
    folder = settings.layout.checkpoints()[-1]
    assert folder.name == "step-000002"
    assert (folder / "adapter" / "adapter_model.safetensors").exists()
    state = torch.load(folder / checkpoints.STATE_FILE, weights_only=True)  # data only
    assert {"value_head", "optimizer", "kl_coef", "rng", "history", "settings"} <= set(state)
    assert state["optimizer"]["state"]           # Adam moments, not just hyper-parameters
    assert len(state["history"]) == 2 and state["settings"]["lora_r"] == settings.lora_r
    csv = settings.layout.stats_file.read_text().splitlines()
    assert len(csv) == 1 + 2


def test_resuming_with_another_seed_is_refused_and_changes_nothing(trained):
    settings = trained["settings"]
    before = sorted(p.name for p in settings.layout.checkpoints())
    with pytest.raises(DetoxError, match="seed: 42 then, 7 now"):
        run_notebook_here("04", overrides=dict(SMALL, artifacts_dir=settings.artifacts_dir,
                                               seed=7), max_steps=3, resume=True)
    assert sorted(p.name for p in settings.layout.checkpoints()) == before


def plan(**settings):
    return SimpleNamespace(**dict(dict(seed=3, batch_size=4), **settings))


def test_a_step_takes_its_own_rows_and_a_pass_takes_every_row_once():
    settings = plan()
    steps = [ppo.batch_indices(settings, step, 10) for step in range(4)]
    # 10 rows, 4 a step: two whole steps a pass (the last 2 rows of the pass wait for the next)
    assert [len(rows) for rows in steps] == [4, 4, 4, 4]
    assert len(set(steps[0] + steps[1])) == 8 and set(steps[0] + steps[1]) <= set(range(10))
    assert steps[2] + steps[3] != steps[0] + steps[1]       # the next pass: another shuffle
    assert len(set(steps[2] + steps[3])) == 8
    assert steps == [ppo.batch_indices(settings, step, 10) for step in range(4)]  # seeded
    assert ppo.batch_indices(plan(seed=4), 0, 10) != steps[0]
    # fewer rows than a step: one step a pass, all of them
    assert sorted(ppo.batch_indices(settings, 0, 3)) == [0, 1, 2]
    assert sorted(ppo.batch_indices(settings, 1, 3)) == [0, 1, 2]
    # 20 rows, 4 a step: the five steps of a pass take every row once
    seen = [i for step in range(5) for i in ppo.batch_indices(settings, step, 20)]
    assert sorted(seen) == list(range(20))


def test_processes_split_one_larger_batch_between_them():
    settings = plan(batch_size=2)
    for step in range(3):   # 2 processes x 2 rows = the rows one process takes at 4 a step
        shared = [ppo.batch_indices(settings, step, 12, rank, world=2) for rank in (0, 1)]
        assert shared[0] + shared[1] == ppo.batch_indices(plan(), step, 12)
    assert ppo.batch_indices(plan(batch_size=8), 0, 12, size=2) == ppo.batch_indices(
        settings, 0, 12)   # notebook 06's size: rows a step, whatever batch_size says


def test_the_response_budget_covers_its_range_only():
    settings = plan(output_min_length=3, output_max_length=6)
    budgets = [ppo.response_budget(settings, step) for step in range(200)]
    assert set(budgets) == {3, 4, 5}
    assert budgets == [ppo.response_budget(settings, step) for step in range(200)]
    assert budgets != [ppo.response_budget(plan(seed=4, output_min_length=3,
                                                output_max_length=6), step)
                       for step in range(200)]


def test_the_progress_line_is_the_mean_of_the_last_ten_steps():
    history = [dict(step=step, reward_mean=float(step), toxicity_mean=step / 100, kl=2.0 * step,
                    kl_coef=0.1) for step in range(1, 13)]
    # steps 3 .. 12: reward mean 7.5, toxicity 0.075, KL 15
    assert ppo.progress_line(history) == ("step   12: reward +7.500, toxicity 0.075, KL 15.000, "
                                          "KL coefficient 0.100 (means of the last 10 steps)")


def test_a_reward_functions_source_is_recorded():
    def reward(prompts, summaries):
        return [0.0 for _ in summaries]
    assert ppo.reward_source(None) == ppo.REWARD_MODULE
    assert ppo.reward_source(reward).startswith("    def reward(prompts, summaries):")
    assert ppo.reward_source(len) == repr(len)   # no source to read: its name


@pytest.mark.parametrize("steps, rows, words", [(0, 100, "train at least 1 step"),
                                                 (5, 3, "fewer than batch_size=4")])
def test_a_plan_that_cannot_run_is_a_clear_error(isolated_settings, steps, rows, words):
    with pytest.raises(DetoxError, match=words):
        loop.check_plan(isolated_settings(batch_size=4, mini_batch_size=2), steps, rows)


def test_the_statistics_row_reads_trls_figures_under_our_names():
    trl_stats = {theirs: np.float32(index) for index, theirs in
                 enumerate(ppo.TRL_STATISTICS.values())}
    row = ppo.statistics_row(3, torch.tensor([1.0, 3.0]), [0.2, 0.4], trl_stats,
                             [torch.ones(4), torch.ones(6)], 1.5)
    assert row["step"] == 3 and row["reward_mean"] == 2.0 and row["response_length"] == 5.0
    assert row["seconds"] == 1.5 and list(row) == STAT_COLUMNS
    assert row["toxicity_mean"] == pytest.approx(0.3) and row["reward_std"] == pytest.approx(2**.5)
    assert [row[ours] for ours in ppo.TRL_STATISTICS] == list(range(len(ppo.TRL_STATISTICS)))


def test_a_full_disk_while_checkpointing_is_one_error_and_keeps_the_checkpoint(trained):
    """A file-size limit (as `ulimit -f`) hit while step 2's checkpoint is written again: one
    error naming it, the whole one from before still in place, nothing half-written left."""
    import resource

    settings = trained["settings"]
    folder = settings.layout.checkpoints()[-1]
    saved = (folder / checkpoints.STATE_FILE).read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # the adapter's weights are larger
    try:
        with pytest.raises(DetoxError, match=r"^Could not write the checkpoint .*step-000002"):
            checkpoints.save_checkpoint(trained["ppo_trainer"], trained["history"], settings)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert (folder / checkpoints.STATE_FILE).read_bytes() == saved
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_the_original_labs_way_trains_the_instruct_adapter_against_the_base_model(
        tmp_path_factory, with_data):
    """instruct_adapter_trainable: PPO trains the instruct adapter itself (no fresh LoRA), and
    the reference trl uses, the policy with its adapter off, is the base model (docs/design.md)."""
    from pathlib import Path

    from transformers import AutoModelForSeq2SeqLM

    folder = with_data(tmp_path_factory.mktemp("instruct-trainable"))
    run = run_notebook_here("04", overrides=dict(SMALL, artifacts_dir=str(folder),
                                                 instruct_adapter_trainable=True), max_steps=2)
    settings, policy = run["settings"], run["policy"].eval()
    instruct = load_file(Path(settings.instruct_adapter) / "adapter_model.safetensors")
    trained = load_file(settings.layout.final_adapter / "adapter_model.safetensors")
    assert trained.keys() == instruct.keys()  # the instruct adapter's own weights, trained
    assert any(not torch.equal(trained[k], instruct[k]) for k in instruct if "lora_B" in k)
    base = AutoModelForSeq2SeqLM.from_pretrained(settings.policy_model).eval()
    prompt = torch.tensor([[5, 6, 7, 8, 1]])
    start = torch.tensor([[base.config.decoder_start_token_id]])
    with torch.no_grad():
        with policy.disable_adapter():
            reference = policy(input_ids=prompt, decoder_input_ids=start).logits
        plain = base(input_ids=prompt, decoder_input_ids=start).logits
        adapted = policy(input_ids=prompt, decoder_input_ids=start).logits
    assert torch.allclose(reference, plain, atol=1e-5)  # the reference is the base model
    assert not torch.allclose(adapted, plain, atol=1e-3)  # and the policy is not
    # so the first step's KL is not zero (one batch's estimate may even fall below zero)
    assert abs(run["history"][0]["kl"]) > 1e-3


def test_training_the_instruct_adapter_needs_one(isolated_settings):
    with pytest.raises(DetoxError, match="instruct_adapter_trainable=True needs"):
        isolated_settings(instruct_adapter="", instruct_adapter_trainable=True)
