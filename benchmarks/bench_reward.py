"""Reward scoring: texts in the order given against longest first, in one process.

The reward module scores texts in batches of 64. Padded to the longest of each batch, a batch of
prompt + summary texts (about 110 to 470 tokens) does much work on padding; scored longest first,
each batch holds texts of about one length. Same classifier (random weights, roberta-base
shape), same texts (DialogSum prompts with their reference summaries, the evaluation's
`toxicity_with_prompt` input), the same logits (checked). Prints seconds per text and the ratio.

    python benchmarks/bench_reward.py
"""

from __future__ import annotations

import argparse
import time

import torch
from shapes import benchmark_texts, roberta_base_classifier_shape, tokenizers

from detox_helpers.reward import RewardModel


class GivenOrder(RewardModel):
    """The reward module as it was: batches cut from the texts in the order given."""

    @torch.no_grad()
    def logits(self, texts, progress: bool = False) -> torch.Tensor:
        rows = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start:start + self.batch_size], padding=True,
                                   truncation=True, max_length=self.max_length,
                                   return_tensors="pt")
            rows.append(self.model(**batch.to(self.device)).logits.float().cpu())
        return torch.cat(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--texts", type=int, default=128, help="two batches or more")
    args = parser.parse_args()

    device = torch.device(args.device)
    prompts, summaries, source = benchmark_texts()
    texts = [f"{p} {s}" for p, s in zip(prompts, summaries, strict=True)][:args.texts]
    _, roberta_tok = tokenizers(prompts)
    classifier = roberta_base_classifier_shape(torch.float32, device)
    ways = {"in the order given": GivenOrder(classifier, roberta_tok),
            "longest first (the package's)": RewardModel(classifier, roberta_tok)}
    lengths = sorted(len(roberta_tok(t).input_ids) for t in texts)
    print(f"device: {device}; {len(texts)} prompt + summary texts from {source}, "
          f"{lengths[0]} to {lengths[-1]} tokens (median {lengths[len(lengths) // 2]}); "
          "batches of 64")
    ways["longest first (the package's)"].logits(texts[:8])  # warm-up
    seconds, logits = {}, {}
    for label, reward_model in ways.items():
        started = time.perf_counter()
        logits[label] = reward_model.logits(texts)
        seconds[label] = (time.perf_counter() - started) / len(texts)
    same = torch.allclose(*logits.values(), atol=1e-4)
    for label, spent in seconds.items():
        print(f"{label}: {spent:.4f} s per text")
    given, sorted_ = seconds.values()
    print(f"longest first: {given / sorted_:.2f}x faster; the same logits: {same}")


if __name__ == "__main__":
    main()
