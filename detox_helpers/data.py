"""The lab's dataset: DialogSum dialogues of a useful length, wrapped in the summarisation prompt.

One code path for every source: a hub id or a local folder is read into a table with the
columns `id`, `dialogue`, `summary`, `topic`; then filter, prompt, tokenize, split 80/20 without
shuffling. The result is cached in the artifacts folder (layout.py), keyed by everything that
shapes it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pandas as pd

from . import sources
from .errors import DetoxError
from .layout import partial
from .settings import Settings

CACHE_VERSION = 1
READERS = {".csv": pd.read_csv, ".jsonl": lambda path: pd.read_json(path, lines=True),
           ".json": pd.read_json}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model",
                   "special_tokens_map.json")


def source_files(folder: Path, split: str) -> list[Path]:
    """CSV / JSON Lines files of a folder; those whose name mentions the split if any do."""
    if folder.is_file():
        return [folder]
    files = sorted(p for p in folder.iterdir() if p.suffix in READERS)
    if not files:
        raise DetoxError(f"The dataset folder {str(folder)!r} holds no .csv, .jsonl or .json "
                         "file with DialogSum's columns (id or fname, dialogue, summary, topic).")
    of_split = [p for p in files if split in p.stem]
    return of_split or files


def read_local(folder: Path, split: str) -> pd.DataFrame:
    frames = []
    for path in source_files(folder, split):
        if path.suffix not in READERS:
            raise DetoxError(f"{str(path)!r} is not a .csv, .jsonl or .json file.")
        try:
            frames.append(READERS[path.suffix](path))
        except ValueError as error:
            raise DetoxError(f"Could not read {str(path)!r}: {error}") from error
    return pd.concat(frames, ignore_index=True)


def read_hub(name: str, split: str) -> pd.DataFrame:
    import datasets

    try:
        return datasets.load_dataset(name, split=split).to_pandas()
    except Exception as error:  # the hub client raises many types for "unreachable"
        raise sources.hub_failure(name, "dataset", "dataset", error) from error


def normalise_columns(table: pd.DataFrame, origin: str) -> pd.DataFrame:
    """DialogSum's columns under one naming: `fname` (the authors' files) becomes `id`."""
    if "id" not in table.columns and "fname" in table.columns:
        table = table.rename(columns={"fname": "id"})
    missing = [c for c in ("id", "dialogue", "summary") if c not in table.columns]
    if missing:
        raise DetoxError(f"The dataset {origin!r} lacks the column(s) {', '.join(missing)}; "
                         f"it has {', '.join(map(str, table.columns))}. DialogSum's columns are "
                         "id (or fname), dialogue, summary, topic.")
    if "topic" not in table.columns:
        table = table.assign(topic="")
    table = table[["id", "dialogue", "summary", "topic"]].astype(str)
    return table.reset_index(drop=True)


def read_dialogues(settings: Settings) -> pd.DataFrame:
    """The raw dialogues of the configured source and split, in DialogSum's columns."""
    kind, location = sources.resolve(settings.dataset, "dataset", "dataset")
    table = (read_local(Path(location), settings.dataset_split) if kind == "local"
             else read_hub(location, settings.dataset_split))
    return normalise_columns(table, settings.dataset)


def filter_by_length(table: pd.DataFrame, min_chars: int, max_chars: int) -> pd.DataFrame:
    """Keep dialogues with min_chars < len(dialogue) <= max_chars (the lab's rule)."""
    lengths = table["dialogue"].str.len()
    return table[(lengths > min_chars) & (lengths <= max_chars)].reset_index(drop=True)


def make_prompt(template: str, dialogue: str) -> str:
    return template.format(dialogue=dialogue)


def split_sizes(count: int, test_fraction: float) -> tuple[int, int]:
    """(train, test) sizes: the test split takes ceil(count * fraction) from the end."""
    test = math.ceil(count * test_fraction)
    return count - test, test


def _hash_files(paths) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(settings: Settings) -> str:
    """A digest of everything that shapes the processed dataset."""
    kind, location = sources.resolve(settings.dataset, "dataset", "dataset")
    source = (_hash_files(source_files(Path(location), settings.dataset_split))
              if kind == "local" else location)
    tokenizer_kind, tokenizer_at = sources.resolve(settings.policy_model, "policy tokenizer",
                                                   "policy_model")
    tokenizer = (_hash_files(p for p in Path(tokenizer_at).iterdir() if p.name in TOKENIZER_FILES)
                 if tokenizer_kind == "local" else tokenizer_at)
    shaping = dict(version=CACHE_VERSION, source=source, split=settings.dataset_split,
                   min=settings.min_dialogue_chars, max=settings.max_dialogue_chars,
                   template=settings.prompt_template, test=settings.test_fraction,
                   tokenizer=tokenizer)
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def process(table: pd.DataFrame, settings: Settings, tokenizer):
    """Filter, prompt, tokenize and split: a DatasetDict with `train` and `test`."""
    from datasets import Dataset, DatasetDict

    kept = filter_by_length(table, settings.min_dialogue_chars, settings.max_dialogue_chars)
    train_size, test_size = split_sizes(len(kept), settings.test_fraction)
    if train_size < 1 or test_size < 1:
        raise DetoxError(
            f"Only {len(kept)} of {len(table)} dialogues from {settings.dataset!r} have "
            f"{settings.min_dialogue_chars} < length <= {settings.max_dialogue_chars} "
            "characters: too few for a train and a test split. Widen min_dialogue_chars / "
            "max_dialogue_chars or use another source.")
    prompts = [make_prompt(settings.prompt_template, d) for d in kept["dialogue"]]
    input_ids = tokenizer(prompts)["input_ids"]
    # `query` is the decoded prompt, the text trl and the reward model see next to the ids.
    queries = tokenizer.batch_decode(input_ids, skip_special_tokens=True)
    full = Dataset.from_pandas(kept.assign(input_ids=input_ids, query=queries),
                               preserve_index=False)
    return DatasetDict(train=full.select(range(train_size)),
                       test=full.select(range(train_size, len(kept))))


def build_dataset(settings: Settings, tokenizer=None, refresh: bool = False):
    """The lab's train/test DatasetDict, from the cache when nothing that shapes it changed.

    On the tiny profile, check the world first (tiny_world.ensure_tiny_world, at the entry
    points: notebook set-up cells, the CLI). Rows hold `id`, `dialogue`, `summary`, `topic`,
    `input_ids` (a tensor) and `query`.
    """
    from datasets import load_from_disk

    folder = settings.layout.data_cache(cache_key(settings))
    if folder.exists() and not refresh:
        splits = load_from_disk(str(folder))
    else:
        table = read_dialogues(settings)
        if tokenizer is None:
            from .models import load_tokenizer

            tokenizer = load_tokenizer(settings)
        splits = process(table, settings, tokenizer)
        unfinished = partial(folder)  # a stopped write leaves no cache
        shutil.rmtree(unfinished, ignore_errors=True)
        splits.save_to_disk(str(unfinished))
        shutil.rmtree(folder, ignore_errors=True)
        unfinished.rename(folder)
    splits.set_format(type="torch", columns=["input_ids"], output_all_columns=True)
    return splits
