"""Random-weight models of the real lab's shapes, built locally (no hub), and benchmark prompts.

flan-t5-base: d_model 768, 12+12 layers, 12 heads, d_ff 2048, gated-gelu, vocabulary 32128.
roberta-base classifier: hidden 768, 12 layers, 12 heads, labels {0: nothate, 1: hate}.
Token ids come from tokenizers trained on the prompts themselves (their ids fit both
vocabularies); what is timed is the models' work, which depends on shapes, not on weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import torch
from transformers import (
    RobertaConfig,
    RobertaForSequenceClassification,
    T5Config,
    T5ForConditionalGeneration,
)

from detox_helpers.settings import PROMPT_TEMPLATE
from detox_helpers.tiny import builder as tiny_builder
from detox_helpers.tiny import fixture

# Real dialogues beside the checkout (../shared), or wherever BENCH_DIALOGSUM_DIR points.
SHARED_DIALOGSUM = Path(__file__).resolve().parents[2] / "shared" / "data" / "dialogsum"


def benchmark_dialogues() -> tuple[list[str], str]:
    """Real DialogSum dialogues when they are at hand, else the tiny fixture's."""
    prompts, _, source = benchmark_texts()
    return prompts, source


def benchmark_texts() -> tuple[list[str], list[str], str]:
    """(prompts, their reference summaries, where from): the lab's length window of real
    DialogSum dialogues when they are at hand, else of the tiny fixture's."""
    folder = Path(os.environ.get("BENCH_DIALOGSUM_DIR", SHARED_DIALOGSUM))
    files = sorted(folder.glob("*.jsonl")) if folder.exists() else []
    if files:
        table = pd.concat(pd.read_json(f, lines=True) for f in files)
        source = f"DialogSum sample ({folder})"
    else:
        table = pd.DataFrame(fixture.make_dialogues())
        source = "tiny fixture"
    lengths = table["dialogue"].str.len()
    kept = table[(lengths > 200) & (lengths <= 1000)]  # the lab's length window
    prompts = [PROMPT_TEMPLATE.format(dialogue=d) for d in kept["dialogue"]]
    return prompts, list(kept["summary"]), source


def tokenizers(prompts: list[str]):
    """(T5-style, RoBERTa-style) tokenizers trained on the prompts, in about a second."""
    corpus = prompts + [PROMPT_TEMPLATE]
    return tiny_builder.t5_style_tokenizer(corpus), tiny_builder.roberta_style_tokenizer(corpus)


FLAN_T5_BASE_WIDTH = (768, 2048)  # d_model, d_ff


def flan_t5_base_shape(dtype: torch.dtype, device: torch.device):
    torch.manual_seed(0)
    config = T5Config(vocab_size=32128, d_model=FLAN_T5_BASE_WIDTH[0], d_kv=64,
                      d_ff=FLAN_T5_BASE_WIDTH[1], num_layers=12,
                      num_decoder_layers=12, num_heads=12, feed_forward_proj="gated-gelu",
                      tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0)
    return T5ForConditionalGeneration(config).to(device=device, dtype=dtype).eval()


def roberta_base_classifier_shape(dtype: torch.dtype, device: torch.device):
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=12,
                           num_attention_heads=12, intermediate_size=3072,
                           max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                           eos_token_id=2, id2label=tiny_builder.LABELS,
                           label2id={v: k for k, v in tiny_builder.LABELS.items()})
    return RobertaForSequenceClassification(config).to(device=device, dtype=dtype).eval()


def save_full_shape_models(folder: Path, prompts: list[str]) -> tuple[Path, Path]:
    """Random-weight flan-t5-base and roberta-base classifier folders, with tokenizers, that
    the `full` profile loads like the Hub's (DETOX_POLICY_MODEL, DETOX_REWARD_MODEL)."""
    t5_tokenizer, roberta_tokenizer = tokenizers(prompts)
    saved = []
    for name, model, tokenizer in (
            ("flan-t5-base-shape", flan_t5_base_shape(torch.float32, torch.device("cpu")),
             t5_tokenizer),
            ("roberta-base-shape", roberta_base_classifier_shape(torch.float32,
                                                                 torch.device("cpu")),
             roberta_tokenizer)):
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
        saved.append(folder / name)
    return saved[0], saved[1]
