"""The hate-speech classifier as a reward (the raw `nothate` logit, what PPO maximises) and as a
toxicity meter (the softmax probability of `hate` as `evaluate` measures it, or of the labels
`toxic_labels` names). Labels go by name, never position (a pipeline sorts them by score)."""

from __future__ import annotations

import copy

import torch
from tqdm.auto import tqdm

from .errors import DetoxError
from .models import from_pretrained, pick_device
from .settings import CLEAN_LABEL, Settings, label_names

TOXIC_LABEL = "hate"


def label_index(id2label: dict, name: str, model_name: str) -> int:
    """Position of the label called `name` (case-insensitive); a clear error when absent."""
    for index, label in id2label.items():
        if str(label).lower() == name:
            return int(index)
    raise DetoxError(f"The reward model {model_name!r} has no {name!r} label (its labels: "
                     f"{sorted(id2label.values())}). It must be a classifier with the labels "
                     f"{CLEAN_LABEL!r} and {TOXIC_LABEL!r}, such as "
                     "facebook/roberta-hate-speech-dynabench-r4-target.")


def toxic_indices(id2label: dict, toxic_labels: str, model_name: str) -> list[int]:
    """Positions of the toxic labels; every label must be `nothate` or one of them, so that no
    label silently counts as neither (a third `offensive` label left out of toxicity, say)."""
    names = label_names(toxic_labels)
    labels = sorted(str(label).lower() for label in id2label.values())
    for name in names:
        if name not in labels:
            raise DetoxError(f"The reward model {model_name!r} has no {name!r} label, which "
                             f"toxic_labels={toxic_labels!r} names (its labels: {labels}). Set "
                             "toxic_labels (DETOX_TOXIC_LABELS) to its labels that count as "
                             "toxic, comma-separated.")
    others = [label for label in labels if label != CLEAN_LABEL and label not in names]
    if others:
        every = ",".join(label for label in labels if label != CLEAN_LABEL)
        raise DetoxError(f"The reward model {model_name!r} has the label(s) {others}, neither "
                         f"{CLEAN_LABEL!r} nor named in toxic_labels={toxic_labels!r} (its "
                         f"labels: {labels}). Name every toxic label: toxic_labels={every!r} "
                         f"(DETOX_TOXIC_LABELS={every}), or use a classifier with the labels "
                         f"{CLEAN_LABEL!r} and {TOXIC_LABEL!r} only.")
    return [label_index(id2label, name, model_name) for name in names]


class RewardModel:
    """A loaded classifier with batched `logits`, `rewards` and `toxicity` for lists of texts;
    `toxic_labels`: comma-separated, any case (see toxic_indices)."""

    def __init__(self, model, tokenizer, name: str = "reward model", batch_size: int = 64,
                 toxic_labels: str = TOXIC_LABEL):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.clean = label_index(model.config.id2label, CLEAN_LABEL, name)
        self.toxic_indices = toxic_indices(model.config.id2label, toxic_labels, name)
        # Inputs beyond the model's positions would crash it; 512 is roberta's limit.
        self.max_length = min(tokenizer.model_max_length or 512, 512)

    def toxicity_of(self, logits: torch.Tensor) -> torch.Tensor:
        """The summed softmax probability of the toxic labels, for logits in label order."""
        return logits.softmax(dim=-1)[..., self.toxic_indices].sum(dim=-1)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def logits(self, texts, progress: bool = False) -> torch.Tensor:
        """Raw logits, one row per text, in the model's label order, on the CPU in float32. More
        texts than a batch go longest first (texts run 60 to 512 tokens: a batch of one length
        pads little), rows back in the caller's order. One batch (a PPO step's) keeps its order:
        sorted, its rows would differ in the last bits, which a PPO run amplifies into another."""
        texts = list(texts)
        order = list(range(len(texts)))
        if len(texts) > self.batch_size:
            order.sort(key=lambda i: -len(texts[i]))
        rows = []
        starts = range(0, len(texts), self.batch_size)
        for start in tqdm(starts, desc="scoring", disable=not progress):
            picked = [texts[i] for i in order[start:start + self.batch_size]]
            batch = self.tokenizer(picked, padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            rows.append(self.model(**batch.to(self.device)).logits.float().cpu())
        logits = torch.empty(len(texts), len(self.model.config.id2label))
        if rows:
            logits[order] = torch.cat(rows)
        return logits

    def rewards(self, texts) -> torch.Tensor:
        """The `nothate` logit of each text."""
        return self.logits(texts)[:, self.clean]

    def toxicity(self, texts) -> torch.Tensor:
        """The probability of `hate` (of any toxic label) for each text."""
        return self.toxicity_of(self.logits(texts))

    def score(self, texts, progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(rewards, toxicity) from one pass over the texts."""
        logits = self.logits(texts, progress)
        return logits[:, self.clean], self.toxicity_of(logits)


def labels_reversed(reward_model: RewardModel) -> RewardModel:
    """The classifier with its labels reversed (head rows and names together): a score read by
    label name is unchanged, one read by position is not (notebook 03's graded checks use it)."""
    model = copy.deepcopy(reward_model.model)
    labels = model.config.id2label
    head = [module for module in model.modules() if isinstance(module, torch.nn.Linear)][-1]
    if head.out_features != len(labels):
        raise DetoxError(f"{reward_model.name}: its last linear layer has {head.out_features} "
                         f"outputs for {len(labels)} labels; it is not the classifier's head.")
    with torch.no_grad():
        head.weight.copy_(head.weight.flip(0))
        if head.bias is not None:
            head.bias.copy_(head.bias.flip(0))
    last = len(labels) - 1
    model.config.id2label = {last - int(index): name for index, name in labels.items()}
    model.config.label2id = {name: index for index, name in model.config.id2label.items()}
    toxic = ",".join(labels[index] for index in reward_model.toxic_indices)
    return RewardModel(model, reward_model.tokenizer, reward_model.name,
                       batch_size=reward_model.batch_size, toxic_labels=toxic)


def reward_texts(queries, summaries, reward_input: str) -> list[str]:
    """What the classifier reads: the summary alone, or the prompt followed by the summary."""
    if reward_input == "summary":
        return list(summaries)
    return [f"{query} {summary}" for query, summary in zip(queries, summaries, strict=True)]


def load_reward_model(settings: Settings, device: torch.device | None = None) -> RewardModel:
    """The configured classifier on the configured device (float32: its logits are the reward),
    scoring 64 texts at a time: inputs run to 512 tokens, and that is already fast on a GPU."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        model = from_pretrained(AutoModelForSequenceClassification, settings.reward_model,
                                "reward model", "reward_model")
    except RuntimeError as error:  # transformers' "size mismatch": weights and config disagree
        raise DetoxError(
            f"The reward model {settings.reward_model!r} (setting reward_model) could not be "
            "loaded: its weights do not fit its config.json (a classifier whose id2label / "
            "num_labels name another number of labels than its weights have, say). Restore "
            "the model's own config.json or use another classifier.") from error
    tokenizer = from_pretrained(AutoTokenizer, settings.reward_model, "reward tokenizer",
                                "reward_model")
    model.to(device or pick_device(settings))
    return RewardModel(model, tokenizer, settings.reward_model, batch_size=64,
                       toxic_labels=settings.toxic_labels)
