"""Builds the tiny world (see world.py): fixture, tokenizers, policy, adapter, classifier.

Deterministic for a seed on one machine. The policy is pre-trained on other dialogues than the
lab's, so it summarises rather than recalls; the classifier learns graded toxicity
(insults.target_toxicity) on every shape of text PPO may write.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from .. import sft
from ..layout import WORLD_DATA_FILE, build_record, world_paths
from ..settings import Settings
from . import fixture
from .world import builder_stamp, world_settings

SEED = 0
DIALOGUES = 480                 # the lab's dataset: 88 test prompts, 33 name someone
PRETRAIN_DIALOGUES = 3000       # the tiny T5's own "pre-training" corpus, other dialogues
CLASSIFIER_TEXTS = 8000
T5_WIDTH, T5_STEPS, T5_LEARNING_RATE = 64, 2000, 3e-3
ADAPTER_STEPS, ADAPTER_LEARNING_RATE = 100, 1e-3
CLASSIFIER_STEPS, CLASSIFIER_LEARNING_RATE = 1500, 1e-3
# Keeps the two logits centred (hate = -nothate), so that the reward, the `nothate` logit, is
# half the log-odds of clean: graded exactly as the toxicity is.
CENTRING = 0.1
BATCH_SIZE = 32
LABELS = {0: "nothate", 1: "hate"}


def build(folder: Path, seed: int = SEED, progress: bool = True) -> dict:
    """Write the whole tiny world into `folder` (replacing it); returns the build record.
    `checks.build_and_check` adds the quality checks to it."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    parts, settings = world_paths(folder), world_settings(folder)
    seconds = {}
    started = time.perf_counter()

    records = fixture.make_dialogues(DIALOGUES, seed=seed)
    parts["dataset"].mkdir()
    pd.DataFrame(records).to_json(parts["dataset"] / WORLD_DATA_FILE, orient="records",
                                  lines=True)
    pretraining = pretraining_pairs(records, settings, seed)
    texts = fixture.make_classifier_texts(CLASSIFIER_TEXTS, seed=seed + 1)
    corpus = [r["dialogue"] for r in records] + [r["summary"] for r in records]
    corpus += pretraining[1] + [text for text, _ in texts] + [settings.prompt_template]
    t5_tokenizer = t5_style_tokenizer(corpus)
    seconds["fixture_and_tokenizers"] = time.perf_counter() - started

    started = time.perf_counter()
    policy = new_tiny_t5(len(t5_tokenizer), seed)
    sft.train_seq2seq(policy, t5_tokenizer, *pretraining, steps=T5_STEPS,
                      learning_rate=T5_LEARNING_RATE, batch_size=BATCH_SIZE, seed=seed,
                      desc="tiny T5", progress=progress)
    policy.save_pretrained(parts["policy_model"])
    t5_tokenizer.save_pretrained(parts["policy_model"])
    seconds["policy"] = time.perf_counter() - started

    started = time.perf_counter()
    config = sft.lora_config(r=8, alpha=16, dropout=0.0, target_modules=["q", "v"])
    sft.train_instruct_adapter(policy, t5_tokenizer, *train_pairs(records, settings),
                               parts["instruct_adapter"], config=config, steps=ADAPTER_STEPS,
                               learning_rate=ADAPTER_LEARNING_RATE, batch_size=BATCH_SIZE,
                               seed=seed, progress=progress)
    seconds["instruct_adapter"] = time.perf_counter() - started

    started = time.perf_counter()
    train_classifier(corpus, texts, parts["reward_model"], seed, progress)
    seconds["reward_classifier"] = time.perf_counter() - started

    record = dict(stamp=builder_stamp(), seed=seed, seconds=seconds)
    build_record(folder).write_text(json.dumps(record, indent=2))
    return record


def pretraining_pairs(records: list[dict], settings: Settings,
                      seed: int) -> tuple[list[str], list[str]]:
    """Prompts and summaries of other dialogues than the lab's (as flan-t5 was trained on other
    text than DialogSum's test split), so the policy learns to summarise, not to recall."""
    lab_dialogues = {r["dialogue"] for r in records}
    others = [r for r in fixture.make_dialogues(PRETRAIN_DIALOGUES, seed=seed + 10)
              if r["dialogue"] not in lab_dialogues]
    return train_pairs(others, settings, test_fraction=0.0)


def train_pairs(records: list[dict], settings: Settings,
                test_fraction: float | None = None) -> tuple[list[str], list[str]]:
    """Prompts and summaries of the records' train split, after the settings' length filter
    and split (the lab's own test split stays unseen; `test_fraction=0` takes them all)."""
    lengths = pd.DataFrame(records)["dialogue"].str.len()
    table = pd.DataFrame(records)[(lengths > settings.min_dialogue_chars)
                                  & (lengths <= settings.max_dialogue_chars)]
    if test_fraction is None:
        test_fraction = settings.test_fraction
    table = table.iloc[:len(table) - math.ceil(len(table) * test_fraction)]
    prompts = [settings.prompt_template.format(dialogue=d) for d in table["dialogue"]]
    return prompts, list(table["summary"])


def _byte_level_bpe(corpus: list[str], specials: list[str], vocab_size: int,
                    prefix_space: bool = False):
    """A byte-level BPE tokenizer: BPE training is deterministic here (Unigram's ids were not)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=prefix_space)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    return tokenizer


def t5_style_tokenizer(corpus: list[str]):
    """Pad 0, end-of-sequence 1, unknown 2, and `</s>` appended to every text, as T5's."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    # Every word gets its leading space, the first one too (as T5's sentencepiece does): a name
    # that opens the summary is then the same token as the name in the dialogue, easy to copy.
    tokenizer = _byte_level_bpe(corpus, ["<pad>", "</s>", "<unk>"], vocab_size=1000,
                                prefix_space=True)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>",
                                   eos_token="</s>", unk_token="<unk>", model_max_length=512)


def roberta_style_tokenizer(corpus: list[str]):
    """`<s> text </s>` with RoBERTa's special-token ids (<s>=0, <pad>=1, </s>=2)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = _byte_level_bpe(corpus, specials, vocab_size=1000)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", cls_token="<s>",
                                   eos_token="</s>", sep_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>", model_max_length=512)


def new_tiny_t5(vocab_size: int, seed: int):
    """A randomly initialised T5 of flan-t5's kind (gated-gelu, untied embeddings), tiny."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    width = T5_WIDTH
    config = T5Config(vocab_size=vocab_size, d_model=width, d_kv=width // 4, d_ff=2 * width,
                      num_layers=2, num_decoder_layers=2, num_heads=4,
                      feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                      dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(config)
    # transformers 5 ties T5's output layer to the input embeddings when it builds one; flan-t5's
    # checkpoints keep the two apart, so the tiny model gets an output layer of its own.
    model.lm_head.weight = torch.nn.Parameter(torch.randn(vocab_size, width) * width ** -0.5)
    model.all_tied_weights_keys.pop("lm_head.weight", None)
    return model


def soft_label_loss(logits: torch.Tensor, toxicity: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against graded targets [1 - t, t], plus a pull that keeps the two logits
    centred, so that neither saturates and the reward follows the toxicity smoothly."""
    targets = torch.stack([1 - toxicity, toxicity], dim=-1)
    cross_entropy = -(targets * logits.log_softmax(dim=-1)).sum(dim=-1).mean()
    return cross_entropy + CENTRING * logits.sum(dim=-1).pow(2).mean()


def train_classifier(corpus, texts, output_dir: Path, seed: int, progress: bool):
    """A tiny RoBERTa that grades texts from clean (`nothate`) to insulting (`hate`)."""
    from tqdm.auto import tqdm
    from transformers import RobertaConfig, RobertaForSequenceClassification

    tokenizer = roberta_style_tokenizer(corpus)
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=64, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=128,
                           max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                           bos_token_id=0, eos_token_id=2, hidden_dropout_prob=0.0,
                           attention_probs_dropout_prob=0.0, id2label=LABELS,
                           label2id={v: k for k, v in LABELS.items()})
    model = RobertaForSequenceClassification(config)
    encoded = [tokenizer(text, truncation=True)["input_ids"] for text, _ in texts]
    toxicity = torch.tensor([target for _, target in texts])
    optimizer = torch.optim.AdamW(model.parameters(), lr=CLASSIFIER_LEARNING_RATE)
    batches = length_batches([len(ids) for ids in encoded], BATCH_SIZE, CLASSIFIER_STEPS, seed)
    model.train()
    for picked in tqdm(batches, desc="reward classifier", disable=not progress):
        batch = tokenizer.pad({"input_ids": [encoded[i] for i in picked]}, return_tensors="pt")
        loss = soft_label_loss(model(**batch).logits, toxicity[picked])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def length_batches(lengths: list[int], batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """`steps` batches of similar lengths (short summaries and whole prompts apart, so little
    compute goes to padding), in a seeded random order, every text once per pass."""
    generator = torch.Generator().manual_seed(seed)
    batches: list[list[int]] = []
    while len(batches) < steps:
        order = torch.randperm(len(lengths), generator=generator).tolist()
        order.sort(key=lambda i: lengths[i] // 16)      # stable: random within a length band
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        shuffle = torch.randperm(len(chunks), generator=generator).tolist()
        batches += [chunks[i] for i in shuffle]
    return batches[:steps]


