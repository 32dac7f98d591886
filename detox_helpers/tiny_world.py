"""The offline miniature of the lab, built by the package itself under `artifacts/tiny-world/`.

    dialogsum/          a DialogSum-format fixture (project-written, see fixture.py)
    policy-base/        a tiny T5ForConditionalGeneration (gated-gelu, untied), trained to summarise
    instruct-adapter/   a LoRA adapter from sft.train_instruct_adapter, like the course's checkpoint
    reward-classifier/  a tiny RobertaForSequenceClassification, labels {0: nothate, 1: hate}
    BUILD.json          the builder's stamp and timings, written last

The same classes and functions as the full lab; only sizes differ. A build is deterministic for
a seed, is reused while the stamp matches, and is redone when the builder's code or the
libraries change (the stamp hashes them).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from . import data, fixture, sft
from .settings import PROMPT_TEMPLATE, Settings

SEED = 0
DIALOGUES = 240
CLASSIFIER_SENTENCES = 2400
T5_STEPS, T5_LEARNING_RATE = 200, 4e-3
ADAPTER_STEPS, ADAPTER_LEARNING_RATE = 100, 2e-3
CLASSIFIER_STEPS, CLASSIFIER_LEARNING_RATE = 250, 1e-3
BATCH_SIZE = 16
LABELS = {0: "nothate", 1: "hate"}
# Changing any of these files, or these libraries' versions, rebuilds the world.
BUILDER_FILES = ("tiny_world.py", "fixture.py", "sft.py", "data.py")
LIBRARIES = ("torch", "transformers", "tokenizers", "peft")


def builder_stamp() -> str:
    from importlib.metadata import version

    digest = hashlib.sha256()
    for name in BUILDER_FILES:
        digest.update((Path(__file__).parent / name).read_bytes())
    for library in LIBRARIES:
        digest.update(f"{library}=={version(library)}".encode())
    return digest.hexdigest()[:16]


def world_dir(settings: Settings) -> Path:
    return settings.artifacts / "tiny-world"


def uses_world(settings: Settings, folder: Path) -> bool:
    """Whether any model or data setting points into the world folder (settings may point
    elsewhere, e.g. at a world built for another artifacts folder)."""
    paths = (settings.dataset, settings.policy_model, settings.instruct_adapter,
             settings.reward_model)
    return any(path and Path(path).resolve().is_relative_to(folder.resolve()) for path in paths)


def ensure_tiny_world(settings: Settings, progress: bool = True) -> Path | None:
    """Build the tiny world if the settings use it and it is missing or stale."""
    folder = world_dir(settings)
    if settings.profile != "tiny" or not uses_world(settings, folder):
        return None
    stamp_file = folder / "BUILD.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()).get("stamp") == builder_stamp():
        return folder
    print(f"Building the tiny world in {folder} (once; about a minute on 2 cores)...")
    build(folder, progress=progress)
    return folder


def build(folder: Path, seed: int = SEED, progress: bool = True) -> dict:
    """Write the whole tiny world into `folder` (replacing it); returns the build record."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    seconds = {}
    started = time.perf_counter()

    records = fixture.make_dialogues(DIALOGUES, seed=seed)
    (folder / "dialogsum").mkdir()
    pd.DataFrame(records).to_json(folder / "dialogsum" / "dialogsum.train.jsonl",
                                  orient="records", lines=True)
    sentences = fixture.make_sentences(CLASSIFIER_SENTENCES, seed=seed + 1)
    corpus = [r["dialogue"] for r in records] + [r["summary"] for r in records]
    corpus += [text for text, _ in sentences] + [PROMPT_TEMPLATE]
    t5_tokenizer = t5_style_tokenizer(corpus)
    seconds["fixture_and_tokenizers"] = time.perf_counter() - started

    prompts, summaries = train_pairs(records)
    started = time.perf_counter()
    policy = new_tiny_t5(len(t5_tokenizer), seed)
    sft.train_seq2seq(policy, t5_tokenizer, prompts, summaries, steps=T5_STEPS,
                      learning_rate=T5_LEARNING_RATE, batch_size=BATCH_SIZE, seed=seed,
                      desc="tiny T5", progress=progress)
    policy.save_pretrained(folder / "policy-base")
    t5_tokenizer.save_pretrained(folder / "policy-base")
    seconds["policy"] = time.perf_counter() - started

    started = time.perf_counter()
    config = sft.lora_config(r=8, alpha=16, dropout=0.0, target_modules=["q", "v"])
    sft.train_instruct_adapter(policy, t5_tokenizer, prompts, summaries,
                               folder / "instruct-adapter", config=config, steps=ADAPTER_STEPS,
                               learning_rate=ADAPTER_LEARNING_RATE, batch_size=BATCH_SIZE,
                               seed=seed, progress=progress)
    seconds["instruct_adapter"] = time.perf_counter() - started

    started = time.perf_counter()
    train_classifier(corpus, sentences, folder / "reward-classifier", seed, progress)
    seconds["reward_classifier"] = time.perf_counter() - started

    record = dict(stamp=builder_stamp(), seed=seed, seconds=seconds)
    (folder / "BUILD.json").write_text(json.dumps(record, indent=2))
    return record


def train_pairs(records: list[dict]) -> tuple[list[str], list[str]]:
    """Prompts and summaries of the lab's train split, so the test split stays unseen."""
    table = data.filter_by_length(pd.DataFrame(records), 200, 1000)
    train_size, _ = data.split_sizes(len(table), 0.2)
    table = table.iloc[:train_size]
    return [data.make_prompt(PROMPT_TEMPLATE, d) for d in table["dialogue"]], list(table["summary"])


def _byte_level_bpe(corpus: list[str], specials: list[str], vocab_size: int):
    """A byte-level BPE tokenizer: BPE training is deterministic here (Unigram's ids were not)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
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

    tokenizer = _byte_level_bpe(corpus, ["<pad>", "</s>", "<unk>"], vocab_size=1000)
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
    config = T5Config(vocab_size=vocab_size, d_model=64, d_kv=16, d_ff=128, num_layers=2,
                      num_decoder_layers=2, num_heads=4, feed_forward_proj="gated-gelu",
                      tie_word_embeddings=False, dropout_rate=0.0, pad_token_id=0,
                      eos_token_id=1, decoder_start_token_id=0)
    model = T5ForConditionalGeneration(config)
    # transformers 5 ties T5's output layer to the input embeddings when it builds one; flan-t5's
    # checkpoints keep the two apart, so the tiny model gets an output layer of its own.
    model.lm_head.weight = torch.nn.Parameter(torch.randn(vocab_size, 64) * 64 ** -0.5)
    model.all_tied_weights_keys.pop("lm_head.weight", None)
    return model


def train_classifier(corpus, sentences, output_dir: Path, seed: int, progress: bool):
    """A tiny RoBERTa that tells insulting sentences (`hate`) from clean ones (`nothate`)."""
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
    texts = [text for text, _ in sentences]
    labels = torch.tensor([label for _, label in sentences])
    optimizer = torch.optim.AdamW(model.parameters(), lr=CLASSIFIER_LEARNING_RATE)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    from tqdm.auto import tqdm

    for _ in tqdm(range(CLASSIFIER_STEPS), desc="reward classifier", disable=not progress):
        picked = torch.randint(len(texts), (32,), generator=generator)
        batch = tokenizer([texts[i] for i in picked], padding=True, truncation=True,
                          return_tensors="pt")
        loss = model(**batch, labels=labels[picked]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def held_out_sentences(per_label: int = 150, seed: int = SEED) -> list[tuple[str, int]]:
    """Sentences the classifier never saw, `per_label` of each label.

    A fresh draw minus every training text; clean sentences repeat more often (they have fewer
    combinations), so the draw is larger than needed and then balanced.
    """
    seen = {text for text, _ in fixture.make_sentences(CLASSIFIER_SENTENCES, seed=seed + 1)}
    drawn = fixture.make_sentences(8 * per_label, seed=seed + 2)
    unseen = [pair for pair in dict.fromkeys(drawn) if pair[0] not in seen]
    clean = [pair for pair in unseen if pair[1] == 0][:per_label]
    insulting = [pair for pair in unseen if pair[1] == 1][:per_label]
    return clean + insulting
