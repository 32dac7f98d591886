"""The package's arithmetic on inputs whose answers are known by hand: the tests that kill the
mutants `make mutate` makes of stats, evaluation, reward, ppo, logprobs and generation's trimming
(docs/tests.md lists what survives and why). Models made by hand (a classifier that counts a
word, a decoder that reads one token) keep each test to milliseconds."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset
from transformers import BatchEncoding
from trl import PPOTrainer

from detox_helpers import evaluation, generation, logprobs, ppo, reward, stats, trl_patch
from detox_helpers.errors import DetoxError


class CountingStatistic:
    """A statistic that ignores its sample and returns 0, 1, 2, ...: the bootstrap's draws are
    then known exactly, and so are their percentiles."""

    def __init__(self):
        self.calls = 0

    def __call__(self, sample):
        self.calls += 1
        return float(self.calls - 1)


def test_the_interval_is_the_2_5th_and_97_5th_percentile_of_the_draws():
    estimate, low, high = stats.bootstrap(np.zeros(3), CountingStatistic(), n_boot=2001)
    # draws 0 .. 2000, then the estimate on the whole sample: 2001; numpy's linear percentile
    # of 0 .. 2000 at 2.5% is 0.025 * 2000 = 50, at 97.5% it is 1950
    assert (estimate, low, high) == pytest.approx((2001, 50, 1950))


def test_the_bootstrap_is_repeatable_and_its_seed_matters():
    sample = np.arange(20.0)
    assert stats.bootstrap(sample, np.mean) == stats.bootstrap(sample, np.mean)
    assert stats.bootstrap(sample, np.mean, seed=1) != stats.bootstrap(sample, np.mean)


@pytest.mark.parametrize("differences, excludes", [([0.0, 0.1], False), ([-0.1, 0.0], False),
                                                   ([0.1, 0.2], True), ([-0.2, -0.1], True)])
def test_an_interval_that_touches_zero_does_not_exclude_it(differences, excludes):
    result = stats.paired_difference(np.zeros(2), np.array(differences))
    assert (result["low"], result["high"]) == pytest.approx((min(differences), max(differences)))
    assert result["excludes_zero"] is excludes


class TextReward:
    """A stand-in for the reward module: toxicity is the share of the words "rude" among a
    text's words, the reward is minus the number of them, so each number names its text."""

    def toxicity(self, texts):
        return torch.tensor([text.split().count("rude") / len(text.split()) for text in texts])

    def score(self, texts, progress=False):
        return (torch.tensor([-float(text.split().count("rude")) for text in texts]),
                self.toxicity(texts))


def test_each_summary_is_scored_with_its_own_prompt():
    # 2 prompts x k=2, laid out prompt by prompt: np.repeat pairs (A, A, B, B); np.tile would
    # pair (A, B, A, B) and score two summaries with another prompt
    rows = Dataset.from_dict(dict(id=["a", "b"], query=["rude rude", "calm"],
                                  summary=["ref a", "ref b"],
                                  references=[["ref a"], ["ref b", "rude b"]]))
    summaries = ["rude", "kind", "kind", "rude"]
    table = evaluation.score_summaries(rows, summaries, [1, 1, 1, 1], TextReward(), k=2,
                                       progress=False)
    assert list(table["id"]) == ["a", "a", "b", "b"]
    assert list(table["prompt"]) == [0, 0, 1, 1] and list(table["sample"]) == [0, 1, 0, 1]
    assert list(table["reference"]) == ["ref a", "ref a", "ref b", "ref b"]
    # "rude rude rude": 3 of 3; "rude rude kind": 2 of 3; "calm kind": 0; "calm rude": 1 of 2
    assert list(table["toxicity_with_prompt"]) == pytest.approx([1, 2 / 3, 0, 1 / 2])
    assert list(table["toxicity"]) == [1, 0, 0, 1] and list(table["reward"]) == [-1, 0, 0, -1]
    # ROUGE against each prompt's own references (the best of b's two)
    assert list(table["rouge1"]) == pytest.approx([0, 0, 0, 2 * (1 / 1) * (1 / 2) / 1.5])


def test_a_summary_is_cut_after_its_first_end_token():
    eos = 1
    assert generation.trim(torch.tensor([0, 5, 6, 1, 7, 1, 0]), eos).tolist() == [0, 5, 6, 1]
    assert generation.trim(torch.tensor([0, 1, 0, 0]), eos).tolist() == [0, 1]
    assert generation.trim(torch.tensor([0, 5, 6]), eos).tolist() == [0, 5, 6]  # never ended


def test_a_length_is_rounded_up_to_its_bucket_and_never_cut():
    assert [generation.bucketed(n) for n in (1, 63, 64, 65, 128, 129)] == [64, 64, 64, 128,
                                                                          128, 192]
    assert [generation.bucketed(n, bucket=10) for n in (9, 10, 11)] == [10, 10, 20]


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


class WordTokenizer:
    """Reads a text as two numbers: its count of "rude" and its length; records max_length."""
    model_max_length = 512

    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        self.max_length = max_length
        return BatchEncoding(dict(input_ids=torch.tensor(
            [[text.split().count("rude"), len(text)] for text in texts], dtype=torch.float)))


class WordClassifier(torch.nn.Module):
    """Logits by hand, labels in the order `id2label` gives: hate = the count of "rude",
    nothate = 0.5 - that count, a third label (if any) = the text's length / 100."""

    def __init__(self, id2label):
        super().__init__()
        self.config = SimpleNamespace(id2label=id2label)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.batches = []

    def forward(self, input_ids):
        self.batches.append(len(input_ids))
        rude, length = input_ids[:, 0] * self.scale, input_ids[:, 1]
        by_name = dict(hate=rude, nothate=0.5 - rude, offensive=length / 100)
        return SimpleNamespace(logits=torch.stack(
            [by_name[self.config.id2label[i].lower()] for i in range(len(self.config.id2label))],
            -1))


@pytest.mark.parametrize("id2label", [{0: "hate", 1: "nothate"}, {0: "NotHate", 1: "HATE"}])
def test_reward_and_toxicity_by_hand(id2label):
    model = reward.RewardModel(WordClassifier(id2label), WordTokenizer())
    texts = ["calm", "rude", "rude rude words"]
    rewards, toxicity = model.score(texts)
    # reward: the nothate logit 0.5 - n; toxicity: softmax's hate share 1 / (1 + e^(0.5 - 2n))
    assert rewards.tolist() == pytest.approx([0.5, -0.5, -1.5])
    assert toxicity.tolist() == pytest.approx([1 / (1 + np.exp(0.5 - 2 * n)) for n in (0, 1, 2)])
    assert torch.equal(model.rewards(texts), rewards)
    assert torch.equal(model.toxicity(texts), toxicity)


def test_several_toxic_labels_add_up_and_the_reward_stays_nothates():
    model = reward.RewardModel(WordClassifier({0: "offensive", 1: "nothate", 2: "hate"}),
                               WordTokenizer(), toxic_labels="hate,offensive")
    rewards, toxicity = model.score(["rude"])        # logits: offensive 0.04, nothate -0.5,
    logits = np.array([0.04, -0.5, 1.0])              # hate 1
    shares = np.exp(logits) / np.exp(logits).sum()
    assert rewards.item() == pytest.approx(-0.5)
    assert toxicity.item() == pytest.approx(shares[0] + shares[2])


def test_texts_are_scored_longest_first_in_batches_and_returned_in_order():
    classifier = WordClassifier({0: "hate", 1: "nothate"})
    model = reward.RewardModel(classifier, WordTokenizer(), batch_size=2)
    texts = ["rude", "a much longer calm text", "rude rude and long", "calm", "rude x"]
    assert model.rewards(texts).tolist() == pytest.approx([-0.5, 0.5, -1.5, 0.5, -0.5])
    assert classifier.batches == [2, 2, 1]
    # one batch keeps its order (see RewardModel.logits); no texts, no rows
    assert model.logits(texts[:2]).shape == (2, 2) and model.logits([]).shape == (0, 2)


@pytest.mark.parametrize("limit, used", [(128, 128), (512, 512), (10**30, 512), (None, 512)])
def test_the_classifier_reads_at_most_512_tokens(limit, used):
    tokenizer = WordTokenizer()
    tokenizer.model_max_length = limit
    model = reward.RewardModel(WordClassifier({0: "hate", 1: "nothate"}), tokenizer)
    model.rewards(["calm"])
    assert model.max_length == tokenizer.max_length == used


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


def per_sample_table():
    """2 prompts x 2 samples with the columns a subset figure reads, and one it must not."""
    return pd.DataFrame(dict(prompt=[1, 1, 0, 0], sample=[1, 0, 1, 0],   # rows out of order
                             toxicity=[0.9, 0.7, 0.1, 0.2], rouge1=[0.5, 0.3, 0.8, 0.6],
                             reference_clean=[False, False, True, True],
                             summary=["d", "c", "b", "a"]))


def test_figures_read_their_column_prompt_by_prompt_and_their_subset():
    table = per_sample_table()
    assert evaluation.per_prompt(table, "toxicity").tolist() == [[0.2, 0.1], [0.7, 0.9]]
    metrics = {metric.key: metric for metric in evaluation.METRICS}
    # the subset figure: ROUGE-1 of the prompts with a clean reference (prompt 0) only
    assert evaluation.figure_values(table, metrics["rouge1_clean_reference"]).tolist() == [0.7]
    assert evaluation.figure_values(table, metrics["rouge1"]).tolist() == [0.7, 0.4]
    assert evaluation.figure_values(table.drop(columns="reference_clean"),
                                    metrics["rouge1_clean_reference"]) is None
    assert evaluation.figure_values(table, metrics["judge"]) is None      # no such column
    none_clean = table.assign(reference_clean=False)
    assert evaluation.figure_values(none_clean, metrics["rouge1_clean_reference"]) is None


def test_aggregates_by_hand_with_their_seeded_intervals():
    table = per_sample_table()
    figures = evaluation.aggregate(table, seed=5)
    assert set(figures) == {"toxicity", "toxic_share", "toxicity_probability",
                            "expected_max_toxicity", "rouge1", "rouge1_clean_reference"}
    assert figures["expected_max_toxicity"] == dict(
        label="expected maximum toxicity (k=2)", mean=pytest.approx(0.55), k=2, n=2,
        low=pytest.approx(0.2), high=pytest.approx(0.9))
    per_prompt_share = np.array([0.0, 1.0])     # prompt 0: none >= 0.5, prompt 1: both
    assert figures["toxic_share"]["mean"] == 0.5
    assert (figures["toxic_share"]["low"], figures["toxic_share"]["high"]) == stats.bootstrap(
        per_prompt_share, np.mean, seed=5)[1:]
    assert figures["rouge1_clean_reference"]["n"] == 1
    assert evaluation.aggregate(table, seed=5) == figures                 # repeatable
    toxicity = evaluation.per_prompt(table, "toxicity").mean(axis=1)
    assert figures["toxicity"]["low"] == stats.bootstrap(toxicity, np.mean, seed=5)[1]


def test_the_paired_difference_passes_its_seed_on():
    before, after = np.random.default_rng(0).uniform(size=(2, 10))   # no grid: seeds differ
    for seed in (0, 7):
        paired = stats.paired_difference(before, after, seed=seed)
        assert (paired["low"], paired["high"]) == stats.bootstrap(after - before, np.mean,
                                                                  seed=seed)[1:]


def test_a_label_names_its_k():
    metrics = {metric.key: metric for metric in evaluation.METRICS}
    assert evaluation.label(metrics["toxicity_probability"], 25) == (
        "toxicity probability (RealToxicityPrompts, >= 1 of k=25 toxic)")


def test_rouge_stems_its_words():
    scores = evaluation.rouge_scores(["Anna booked tables"], [["Anna books a table"]])
    # stemmed: anna, book, tabl against anna, book, a, tabl: P 3/3, R 3/4
    assert scores.loc[0, "rouge1"] == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert scores.loc[0, "rougeL"] == pytest.approx(2 * 1 * 0.75 / 1.75)
    assert scores.loc[0, "rouge2"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))


def test_every_label_must_be_nothate_or_named_toxic():
    labels = {0: "nothate", 1: "hate", 2: "Offensive"}
    assert reward.toxic_indices(labels, "offensive,HATE", "m") == [2, 1]
    with pytest.raises(DetoxError, match=r"\['offensive'\], neither 'nothate' nor named in "
                                         r"toxic_labels='hate'.*toxic_labels='hate,offensive'"):
        reward.toxic_indices(labels, "hate", "m")
    with pytest.raises(DetoxError, match="'m' has no 'insult' label"):
        reward.toxic_indices(labels, "hate,offensive,insult", "m")


def test_rouge_pairs_every_summary_with_references_and_keeps_its_columns_when_empty():
    with pytest.raises(ValueError):     # a summary without its references is not scored
        evaluation.rouge_scores(["a", "b"], [["a"]])
    assert list(evaluation.rouge_scores([], []).columns) == ["rouge1", "rouge2", "rougeL"]


def test_the_table_keeps_summaries_lengths_judges_and_the_exact_judges_inputs():
    from profanity_check import predict_prob

    rows = Dataset.from_dict(dict(id=["a"], query=["calm"], summary=["ref a"],
                                  references=[["ref a"]]))
    seen = []

    def exact(summaries, references, toxicity):
        seen.append((list(summaries), list(references), list(toxicity)))
        return pd.DataFrame(dict(insult=[0, 1]))
    table = evaluation.score_summaries(rows, ["you idiot", "kind"], [3, 1], TextReward(), k=2,
                                       progress=False, exact=exact)
    assert list(table["summary"]) == ["you idiot", "kind"]
    assert list(table["length_tokens"]) == [3, 1] and list(table["insult"]) == [0, 1]
    assert list(table["judge"]) == pytest.approx(predict_prob(["you idiot", "kind"]))
    assert seen == [(["you idiot", "kind"], ["ref a", "ref a"], [0.0, 0.0])]
    empty = evaluation.score_summaries(rows.select([]), [], [], TextReward(), k=2,
                                       progress=False)
    assert len(empty) == 0 and "judge" in empty


def test_aggregate_passes_its_seed_to_the_bootstrap():
    table = pd.DataFrame(dict(prompt=np.arange(30), sample=0, toxicity=np.linspace(0, 1, 30)))
    for seed in (0, 5):
        figure = evaluation.aggregate(table, seed=seed)["toxicity"]
        assert (figure["low"], figure["high"]) == stats.bootstrap(
            np.linspace(0, 1, 30), np.mean, seed=seed)[1:]


def test_prompt_and_summary_texts_pair_strictly():
    with pytest.raises(ValueError):
        reward.reward_texts(["P1"], ["s1", "s2"], "prompt+summary")
