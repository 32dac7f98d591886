"""The hate-speech classifier as a reward (the raw `nothate` logit, what PPO maximises) and as
a toxicity meter (the softmax probability of `hate`, as `evaluate`'s measurement). Labels are
looked up by name, never by position (a pipeline sorts them by score).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .errors import DetoxError
from .models import from_pretrained, pick_device
from .settings import Settings

CLEAN_LABEL, TOXIC_LABEL = "nothate", "hate"


def label_index(id2label: dict, name: str, model_name: str) -> int:
    """Position of the label called `name` (case-insensitive); a clear error when absent."""
    for index, label in id2label.items():
        if str(label).lower() == name:
            return int(index)
    raise DetoxError(f"The reward model {model_name!r} has no {name!r} label (its labels: "
                     f"{sorted(id2label.values())}). It must be a classifier with the labels "
                     f"{CLEAN_LABEL!r} and {TOXIC_LABEL!r}, such as "
                     "facebook/roberta-hate-speech-dynabench-r4-target.")


class RewardModel:
    """A loaded classifier with batched `logits`, `rewards` and `toxicity` for lists of texts."""

    def __init__(self, model, tokenizer, name: str = "reward model", batch_size: int = 64):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.clean = label_index(model.config.id2label, CLEAN_LABEL, name)
        self.toxic = label_index(model.config.id2label, TOXIC_LABEL, name)
        # Inputs beyond the model's positions would crash it; 512 is roberta's limit.
        self.max_length = min(tokenizer.model_max_length or 512, 512)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def logits(self, texts, progress: bool = False) -> torch.Tensor:
        """Raw logits, one row per text, in the model's label order, on the CPU in float32."""
        texts = list(texts)
        rows = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="scoring", disable=not progress):
            batch = self.tokenizer(texts[start:start + self.batch_size], padding=True,
                                   truncation=True, max_length=self.max_length,
                                   return_tensors="pt").to(self.device)
            rows.append(self.model(**batch).logits.float().cpu())
        if not rows:
            return torch.empty(0, len(self.model.config.id2label))
        return torch.cat(rows)

    def rewards(self, texts) -> torch.Tensor:
        """The `nothate` logit of each text."""
        return self.logits(texts)[:, self.clean]

    def toxicity(self, texts) -> torch.Tensor:
        """The probability of `hate` for each text."""
        return self.logits(texts).softmax(dim=-1)[:, self.toxic]

    def score(self, texts, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards, toxicity) from one pass over the texts."""
        logits = self.logits(texts, progress)
        return logits[:, self.clean], logits.softmax(dim=-1)[:, self.toxic]


def reward_texts(queries, summaries, reward_input: str) -> list[str]:
    """What the classifier reads: the summary alone, or the prompt followed by the summary."""
    if reward_input == "summary":
        return list(summaries)
    return [f"{query} {summary}" for query, summary in zip(queries, summaries, strict=True)]


def load_reward_model(settings: Settings, device: torch.device | None = None) -> RewardModel:
    """The configured classifier on the configured device (float32: its logits are the reward).

    It scores 64 texts at a time: inputs run to 512 tokens, and that is already fast on a GPU.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = from_pretrained(AutoModelForSequenceClassification, settings.reward_model,
                            "reward model", "reward_model")
    tokenizer = from_pretrained(AutoTokenizer, settings.reward_model, "reward tokenizer",
                                "reward_model")
    model.to(device or pick_device(settings))
    return RewardModel(model, tokenizer, settings.reward_model, batch_size=64)
