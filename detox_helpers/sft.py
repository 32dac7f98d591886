"""Supervised fine-tuning of a seq2seq model on prompt -> summary pairs.

`train_instruct_adapter` is how the lab's starting adapter is made: the tiny world calls it on
its tiny T5, and a user without the course's checkpoint runs it on flan-t5-base
(`python -m detox_helpers make-adapter`). `train_seq2seq` is the plain loop underneath, also
used to pre-train the tiny T5 with all its weights.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import torch
from peft import LoraConfig, TaskType, get_peft_model
from tqdm.auto import tqdm

from .generation import time_estimate


def encode_pairs(tokenizer, prompts, targets, max_source_tokens=512, max_target_tokens=128):
    """Right-padded encoder inputs and labels, with padding in the labels masked out (-100)."""
    batch = tokenizer(list(prompts), padding=True, truncation=True,
                      max_length=max_source_tokens, return_tensors="pt")
    labels = tokenizer(text_target=list(targets), padding=True, truncation=True,
                       max_length=max_target_tokens, return_tensors="pt")["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    batch["labels"] = labels
    return batch


def train_seq2seq(model, tokenizer, prompts, targets, *, steps, learning_rate, batch_size,
                  seed=0, desc="fine-tuning", progress=True) -> list[float]:
    """Adam, its step size falling linearly to zero, on the cross-entropy of `targets` given
    `prompts`; returns the loss of each step.

    Batches are drawn by a seeded shuffle of the pairs, epoch after epoch, so a rerun with the
    same seed sees the same batches.
    """
    if not prompts or len(prompts) != len(targets):
        raise ValueError("need as many targets as prompts, and at least one pair")
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=0.0)
    # The step size falls linearly to zero: the last steps settle rather than wander.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    order_rng = random.Random(seed)
    order: list[int] = []
    losses = []
    model.train()
    bar = tqdm(range(steps), desc=desc, disable=not progress)
    started = time.perf_counter()
    for step in bar:
        if len(order) < batch_size:
            fresh = list(range(len(prompts)))
            order_rng.shuffle(fresh)
            order += fresh
        picked, order = order[:batch_size], order[batch_size:]
        batch = encode_pairs(tokenizer, [prompts[i] for i in picked], [targets[i] for i in picked])
        loss = model(**batch.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if step == 0 and progress and steps > 1:
            bar.write(time_estimate(f"{desc} steps", time.perf_counter() - started, 1, steps))
    model.eval()
    return losses


def lora_config(r: int, alpha: int, dropout: float, target_modules: list[str]) -> LoraConfig:
    """The LoRA shape used by the lab, for a T5-style encoder-decoder."""
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                      bias="none", task_type=TaskType.SEQ_2_SEQ_LM)


def train_instruct_adapter(base_model, tokenizer, prompts, summaries, output_dir, *,
                           config: LoraConfig, steps, learning_rate, batch_size, seed=0,
                           progress=True) -> list[float]:
    """Fine-tune a fresh LoRA adapter on (prompt, summary) pairs and save it to `output_dir`.

    The base model's own weights stay untouched (PEFT wraps it and is unloaded at the end); the
    saved folder is an ordinary PEFT adapter that `PeftModel.from_pretrained` reads.
    """
    torch.manual_seed(seed)
    peft_model = get_peft_model(base_model, config)
    losses = train_seq2seq(peft_model, tokenizer, prompts, summaries, steps=steps,
                           learning_rate=learning_rate, batch_size=batch_size, seed=seed,
                           desc="instruct adapter", progress=progress)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(output_dir))
    peft_model.unload()  # leave the caller's model without the LoRA layers
    return losses
