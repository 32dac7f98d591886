"""What the data stage shares: notebook 01 makes the dataset (`load_dataset`, `.filter`, `.map`,
`train_test_split`, `save_to_disk`, in view); this module finds a local folder's files, names
DialogSum's columns one way, checks the length window, keys the saved copy and loads it."""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from . import sources
from .errors import DetoxError
from .layout import partial, shown
from .settings import Settings
from .writes import writing

# 3: rows with a blank summary are dropped, and blank references left out (dialogsum_columns).
CACHE_VERSION = 3
# A data file's suffix -> the `load_dataset` builder that reads it.
FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json"}
COLUMNS = ("id", "dialogue", "summary", "topic")
# DialogSum's released test file has three references per dialogue: summary1, summary2, ...
NUMBERED = re.compile(r"(summary|topic)(\d+)")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "spiece.model",
                   "special_tokens_map.json")


def source_files(folder: Path, split: str) -> list[Path]:
    """CSV / JSON Lines files of a folder; those whose name mentions the split if any do."""
    if folder.is_file():
        return [folder]
    files = sorted(p for p in folder.iterdir() if p.suffix in FORMATS)
    if not files:
        raise DetoxError(f"The dataset folder {str(folder)!r} holds no .csv, .jsonl or .json "
                         "file with DialogSum's columns (id or fname, dialogue, summary, topic).")
    of_split = [p for p in files if split in p.stem]
    return of_split or files


def is_blank(path: Path) -> bool:
    """Only white space (and a UTF-8 byte order mark) in the file; a large file is not read."""
    if path.stat().st_size > 65536:
        return False
    return not path.read_bytes().removeprefix(codecs.BOM_UTF8).strip()


def local_files(location: str, split: str) -> tuple[str, list[str]]:
    """The `load_dataset` builder ("csv" or "json") and a local folder's (or file's) files of
    `split`. A UTF-8 byte order mark needs nothing: datasets' and pandas' readers skip it."""
    files = source_files(Path(location), split)
    for path in files:
        if path.suffix not in FORMATS:
            raise DetoxError(f"{str(path)!r} is not a .csv, .jsonl or .json file.")
        if is_blank(path):  # datasets would fail on it with an empty message
            raise DetoxError(f"The data file {str(path)!r} is empty: fill it with DialogSum's "
                             "columns (id or fname, dialogue, summary, topic) or remove it.")
    builders = sorted({FORMATS[path.suffix] for path in files})
    if len(builders) > 1:
        raise DetoxError(f"The dataset folder {location!r} mixes CSV and JSON files for the "
                         f"split {split!r}: keep one format there.")
    return builders[0], [str(path) for path in files]


def local_source(settings: Settings) -> tuple[str, list[str]] | None:
    """local_files of the dataset setting's folder; None for a Hub id."""
    kind, location = sources.resolve(settings.dataset, "dataset", "dataset")
    return local_files(location, settings.dataset_split) if kind == "local" else None


def load_failure(settings: Settings, error: Exception) -> DetoxError:
    """The error for a source `load_dataset` could not read: a Hub id's likely cause and way out."""
    kind, location = sources.resolve(settings.dataset, "dataset", "dataset")
    if kind == "hub":
        return sources.hub_failure(settings.dataset, "dataset", "dataset", error)
    cause = error.__cause__ or error
    return DetoxError(f"Could not read {location!r}: {str(cause) or type(cause).__name__}")


def numbered(columns, stem: str) -> list[str]:
    """`stem`1, `stem`2, ... among the columns, in their number's order."""
    found = [(int(m[2]), m[0]) for m in map(NUMBERED.fullmatch, columns) if m and m[1] == stem]
    return [column for _, column in sorted(found)]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def present(text) -> bool:
    """A summary that is there: not missing (None) and not only white space."""
    return text is not None and bool(str(text).strip())


def dialogsum_columns(dataset, origin: str):
    """DialogSum's columns under one naming, as text, and `references`, every reference summary:
    `fname` becomes `id`; the test file's `summary1`, `summary2`, ... become `references`, the
    first also `summary` (`topic1` the topic); a missing `topic` is empty; other columns go. Blank
    references are left out, a row without one dropped (counted): ROUGE cannot score nothing."""
    from datasets import Features, Sequence, Value

    names = dataset.column_names
    if "id" not in names and "fname" in names:
        dataset = dataset.rename_column("fname", "id")
    summaries = ["summary"] if "summary" in names else numbered(names, "summary")
    topic = "topic" if "topic" in names else (numbered(names, "topic") or [None])[0]
    missing = [c for c in ("id", "dialogue") if c not in dataset.column_names] + (
        [] if summaries else ["summary (or summary1, summary2, ...)"])
    if missing:
        raise DetoxError(f"The dataset {origin!r} lacks the column(s) {', '.join(missing)}; "
                         f"it has {', '.join(names) or 'none'}. DialogSum's columns are "
                         "id (or fname), dialogue, summary (or summary1..3), topic.")

    def named(row):
        references = [row[column] for column in summaries if present(row[column])]
        return dict(summary=references[0] if references else None,
                    topic=row[topic] if topic else "", references=references)

    dataset = dataset.map(named)
    read = dataset.num_rows
    dataset = dataset.filter(lambda row: bool(row["references"]))
    if read > dataset.num_rows:
        print(f"dropped {plural(read - dataset.num_rows, 'row')} with a blank summary")
    left_out = sum(len(summaries) - len(references) for references in dataset["references"])
    if left_out:
        print(f"left out {plural(left_out, 'blank reference')} (their rows keep the others)")
    dataset = dataset.select_columns([*COLUMNS, "references"])
    as_text = Features({column: Value("string") for column in COLUMNS},
                       references=Sequence(Value("string")))
    return dataset if dataset.features == as_text else dataset.cast(as_text)


def check_enough(kept: int, read: int, settings: Settings) -> None:
    """Refuse a length window that leaves too few dialogues for a train and a test split."""
    test = math.ceil(kept * settings.test_fraction)
    if test < 1 or kept - test < 1:
        raise DetoxError(
            f"Only {kept} of {read} dialogues from {settings.dataset!r} have "
            f"{settings.min_dialogue_chars} < length <= {settings.max_dialogue_chars} "
            "characters: too few for a train and a test split. Widen min_dialogue_chars / "
            "max_dialogue_chars or use another source.")


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


@contextmanager
def saving_place(settings: Settings):
    """Where notebook 01 saves its splits (`save_to_disk(folder)` inside the `with`): a scratch
    folder of this process's own, renamed to the settings' key once whole. A full disk is one
    error line and leaves nothing; a copy already there (another process's, say) is kept."""
    from datasets import disable_progress_bars

    folder = settings.layout.data_cache(cache_key(settings))
    unfinished = partial(folder, os.getpid())
    disable_progress_bars()  # a second's "Saving the dataset" bar, left in the saved notebook
    with writing(unfinished, f"the dataset {shown(folder)}"):
        yield str(unfinished)
    try:
        unfinished.rename(folder)
        print(f"saved: {shown(folder)}")
    except OSError:  # a copy is there already
        shutil.rmtree(unfinished)
        print(f"already saved for these settings: {shown(folder)}")


def load_splits(settings: Settings):
    """The train/test DatasetDict notebook 01 saved for these settings (`input_ids` as tensors).
    On the tiny profile, the entry points check the world first (ensure_tiny_world)."""
    from datasets import load_from_disk

    folder = settings.layout.data_cache(cache_key(settings))
    if not folder.exists():
        raise DetoxError(f"No prepared dataset for these settings (looked in {shown(folder)}): "
                         "run notebook 01_data.ipynb or `python -m detox_course data` first.")
    splits = load_from_disk(str(folder))
    splits.set_format(type="torch", columns=["input_ids"], output_all_columns=True)
    return splits
