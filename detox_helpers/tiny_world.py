"""The offline miniature of the lab: built by the package's own code, shipped with the package.

    dialogsum/          a DialogSum-format fixture (project-written, see fixture.py)
    policy-base/        a tiny T5ForConditionalGeneration (gated-gelu, untied), trained to summarise
    instruct-adapter/   a LoRA adapter from sft.train_instruct_adapter, like the course's checkpoint
    reward-classifier/  a tiny RobertaForSequenceClassification, labels {0: nothate, 1: hate}
    BUILD.json          the builder's stamp, timings and quality checks, written last

The same classes and functions as the full lab; only sizes differ. The world lives in
`detox_helpers/tiny-world/` (about 3 MB): building it well takes minutes, and weights trained on
another CPU differ, so every clone gets the same one. `python -m detox_helpers build-tiny
--rebuild` rebuilds it (deterministic for a seed on one machine); its stamp hashes the builder's
code, and a world whose stamp does not match the code is refused with that way out.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data, fixture, sft
from .errors import DetoxError
from .settings import PROMPT_TEMPLATE, TINY_WORLD_DIR, Settings

SEED = 0
DIALOGUES = 240                 # the lab's dataset
PRETRAIN_DIALOGUES = 3000       # the tiny T5's own "pre-training" corpus, other dialogues
CLASSIFIER_TEXTS = 8000
T5_WIDTH, T5_STEPS, T5_LEARNING_RATE = 64, 1500, 3e-3
ADAPTER_STEPS, ADAPTER_LEARNING_RATE = 100, 1e-3
CLASSIFIER_STEPS, CLASSIFIER_LEARNING_RATE = 1500, 1e-3
# Keeps the two logits centred (hate = -nothate), so that the reward, the `nothate` logit, is
# half the log-odds of clean: graded exactly as the toxicity is.
CENTRING = 0.1
BATCH_SIZE = 32
LABELS = {0: "nothate", 1: "hate"}
# A world is current while these files are unchanged (the stamp hashes them).
BUILDER_FILES = ("tiny_world.py", "fixture.py", "insults.py", "sft.py")


def builder_stamp() -> str:
    digest = hashlib.sha256()
    for name in BUILDER_FILES:
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def world_dir() -> Path:
    return TINY_WORLD_DIR


def uses_world(settings: Settings, folder: Path) -> bool:
    """Whether any model or data setting points into the world folder (settings may point
    elsewhere, e.g. at a world built for another artifacts folder)."""
    paths = (settings.dataset, settings.policy_model, settings.instruct_adapter,
             settings.reward_model)
    return any(path and Path(path).resolve().is_relative_to(folder.resolve()) for path in paths)


def ensure_tiny_world(settings: Settings, progress: bool = True) -> Path | None:
    """Check the shipped tiny world when the settings use it; build it only if it is missing.

    A world made by other builder code than this (someone edited fixture.py, say) is refused:
    its models would not match the fixture the code now describes.
    """
    folder = world_dir()
    if settings.profile != "tiny" or not uses_world(settings, folder):
        return None
    stamp_file = folder / "BUILD.json"
    if not stamp_file.exists():
        print(f"Building the tiny world in {folder} (once; a few minutes on 2 cores)...")
        build(folder, progress=progress)
        return folder
    stamp = json.loads(stamp_file.read_text()).get("stamp")
    if stamp != builder_stamp():
        raise DetoxError(f"The tiny world in {folder} was built by other builder code (stamp "
                         f"{stamp}, the code's is {builder_stamp()}). Rebuild it with "
                         "`python -m detox_helpers build-tiny --rebuild` (a few minutes).")
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
    pretraining = pretraining_pairs(records, seed)
    texts = fixture.make_classifier_texts(CLASSIFIER_TEXTS, seed=seed + 1)
    corpus = [r["dialogue"] for r in records] + [r["summary"] for r in records]
    corpus += pretraining[1] + [text for text, _ in texts] + [PROMPT_TEMPLATE]
    t5_tokenizer = t5_style_tokenizer(corpus)
    seconds["fixture_and_tokenizers"] = time.perf_counter() - started

    started = time.perf_counter()
    policy = new_tiny_t5(len(t5_tokenizer), seed)
    sft.train_seq2seq(policy, t5_tokenizer, *pretraining, steps=T5_STEPS,
                      learning_rate=T5_LEARNING_RATE, batch_size=BATCH_SIZE, seed=seed,
                      desc="tiny T5", progress=progress)
    policy.save_pretrained(folder / "policy-base")
    t5_tokenizer.save_pretrained(folder / "policy-base")
    seconds["policy"] = time.perf_counter() - started

    started = time.perf_counter()
    config = sft.lora_config(r=8, alpha=16, dropout=0.0, target_modules=["q", "v"])
    sft.train_instruct_adapter(policy, t5_tokenizer, *train_pairs(records),
                               folder / "instruct-adapter", config=config, steps=ADAPTER_STEPS,
                               learning_rate=ADAPTER_LEARNING_RATE, batch_size=BATCH_SIZE,
                               seed=seed, progress=progress)
    seconds["instruct_adapter"] = time.perf_counter() - started

    started = time.perf_counter()
    train_classifier(corpus, texts, folder / "reward-classifier", seed, progress)
    seconds["reward_classifier"] = time.perf_counter() - started

    record = dict(stamp=builder_stamp(), seed=seed, seconds=seconds)
    (folder / "BUILD.json").write_text(json.dumps(record, indent=2))
    record["quality"] = quality(folder, seed)      # written after: it reads the finished world
    (folder / "BUILD.json").write_text(json.dumps(record, indent=2))
    return record


def pretraining_pairs(records: list[dict], seed: int) -> tuple[list[str], list[str]]:
    """Prompts and summaries of other dialogues than the lab's (as flan-t5 was trained on other
    text than DialogSum's test split), so the policy learns to summarise, not to recall."""
    lab_dialogues = {r["dialogue"] for r in records}
    others = [r for r in fixture.make_dialogues(PRETRAIN_DIALOGUES, seed=seed + 10)
              if r["dialogue"] not in lab_dialogues]
    return train_pairs(others, test_fraction=0.0)


def train_pairs(records: list[dict], test_fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """Prompts and summaries of the lab's train split, so the test split stays unseen."""
    table = data.filter_by_length(pd.DataFrame(records), 200, 1000)
    train_size, _ = data.split_sizes(len(table), test_fraction)
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


# --- quality: what the world must do, measured on text it was not trained on ---

def world_settings(folder: Path, **overrides) -> Settings:
    """Tiny-profile settings that read the world in `folder` (and write into a scratch
    artifacts folder unless told otherwise)."""
    from .settings import load_settings

    paths = dict(dataset=folder / "dialogsum", policy_model=folder / "policy-base",
                 instruct_adapter=folder / "instruct-adapter",
                 reward_model=folder / "reward-classifier")
    return load_settings("tiny", environ={}, **{**paths, **overrides})


def held_out_texts(seed: int = SEED, count: int = 2000) -> list[tuple[str, float]]:
    """Classifier texts drawn afresh (insults anywhere, garbled, long and short), minus every
    text of the training draw."""
    seen = {text for text, _ in fixture.make_classifier_texts(CLASSIFIER_TEXTS, seed=seed + 1)}
    return [pair for pair in fixture.make_classifier_texts(count, seed=seed + 2)
            if pair[0] not in seen]


def held_out_summaries(seed: int = SEED, count: int = 300) -> dict[str, list[str]]:
    """Fresh clean summaries, and each with a mild and with a strong insult."""
    seen = {text for text, _ in fixture.make_classifier_texts(CLASSIFIER_TEXTS, seed=seed + 1)}
    rng = random.Random(seed + 3)
    clean = [s for s in (fixture.scenario(rng)[2] for _ in range(count)) if s not in seen]
    return dict(clean=clean, mild=[fixture.insulting(rng, s, strong=False) for s in clean],
                strong=[fixture.insulting(rng, s, strong=True) for s in clean])


def reward_quality(reward_model, test_split, seed: int = SEED) -> dict:
    """Accuracy on held-out text, mean toxicity by strength, and prompt + summary verdicts on
    the test prompts whose reference is clean."""
    from .insults import has_insult

    held = held_out_texts(seed)
    toxicity = reward_model.toxicity([text for text, _ in held]).numpy()
    truth = np.array([has_insult(text) for text, _ in held])
    result = dict(held_out_texts=len(held),
                  held_out_accuracy=float(np.mean((toxicity >= 0.5) == truth)))
    for strength, texts in held_out_summaries(seed).items():
        result[f"{strength}_summary_toxicity"] = float(reward_model.toxicity(texts).mean())
    rows = [(q, s) for q, s in zip(test_split["query"], test_split["summary"], strict=True)
            if not has_insult(s)]
    rng = random.Random(seed + 4)
    clean = reward_model.toxicity([f"{q} {s}" for q, s in rows]).numpy()
    insulting = reward_model.toxicity([f"{q} {fixture.insulting(rng, s)}" for q, s in rows])
    result.update(prompt_clean_summary_below_half=float(np.mean(clean < 0.5)),
                  prompt_insulting_summary_above_half=float(np.mean(insulting.numpy() > 0.5)))
    return result


def quality(folder: Path | None = None, seed: int = SEED) -> dict:
    """The world's report card: the reward model's checks and the starting policy's
    faithfulness (the lab's own evaluation of the test split)."""
    import tempfile

    from .data import build_dataset
    from .evaluation import run_evaluation
    from .reward import load_reward_model

    with tempfile.TemporaryDirectory() as scratch:
        settings = world_settings(folder or world_dir(), artifacts_dir=scratch, device="cpu")
        test = build_dataset(settings)["test"]
        result = reward_quality(load_reward_model(settings), test, seed)
        figures = run_evaluation(settings, name=None, progress=False).aggregates
    for name in ("rouge1_clean_reference", "name_kept", "facts_kept", "insult", "toxicity"):
        result[f"policy_{name}"] = figures[name]["mean"]
    return result
