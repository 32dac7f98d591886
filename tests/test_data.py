import json

import pandas as pd
import pytest

from detox_helpers import data
from detox_helpers.errors import DetoxError
from detox_helpers.models import load_tokenizer
from detox_helpers.settings import load_settings


def dialogue_of_length(n: int, index: int) -> str:
    text = f"#Person1#: Hello number {index}.\n"
    return (text + "#Person2#: That sounds fine to me.\n" * (n // 20 + 1))[:n]


def write_source(folder, lengths, fmt="jsonl", id_column="fname"):
    records = [{id_column: f"d{i}", "dialogue": dialogue_of_length(n, i),
                "summary": f"summary {i}", "topic": "t"} for i, n in enumerate(lengths)]
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(records)
    if fmt == "csv":
        table.to_csv(folder / "dialogsum.train.csv", index=False)
    else:
        table.to_json(folder / "dialogsum.train.jsonl", orient="records", lines=True)
    return folder


@pytest.fixture
def local_settings(tiny_settings, tmp_path):
    """Settings reading a hand-made folder, with the tiny world's tokenizer."""
    def make(lengths, fmt="jsonl", id_column="fname", **overrides):
        folder = write_source(tmp_path / "source", lengths, fmt, id_column)
        return load_settings("full", environ={}, artifacts_dir=tmp_path / "artifacts",
                             dataset=str(folder), policy_model=tiny_settings.policy_model,
                             **overrides)
    return make


LENGTHS = [150, 200, 201, 450, 999, 1000, 1001, 1500, 300, 600, 700, 800]
KEPT = [2, 3, 4, 5, 8, 9, 10, 11]  # indices with 200 < length <= 1000


def test_filter_prompt_tokenize_and_split_without_shuffling(local_settings):
    settings = local_settings(LENGTHS)
    splits = data.build_dataset(settings)
    ids = list(splits["train"]["id"]) + list(splits["test"]["id"])
    assert ids == [f"d{i}" for i in KEPT]
    assert (splits["train"].num_rows, splits["test"].num_rows) == (6, 2)  # ceil(0.2 * 8) = 2
    row = splits["test"][0]
    # the decoded prompt (T5-style tokenizers may give back a leading space)
    prompt = data.make_prompt(settings.prompt_template, row["dialogue"])
    assert row["query"].strip() == prompt.strip()
    assert row["query"].strip().endswith("Summary:")
    tokenizer = load_tokenizer(settings)
    assert row["input_ids"].tolist() == tokenizer(row["query"])["input_ids"]


def test_csv_with_id_column_gives_the_same_dataset_as_jsonl_with_fname(local_settings, tmp_path):
    from_jsonl = data.build_dataset(local_settings(LENGTHS))
    (tmp_path / "source" / "dialogsum.train.jsonl").unlink()
    from_csv = data.build_dataset(local_settings(LENGTHS, fmt="csv", id_column="id"))
    for split in ("train", "test"):
        assert list(from_csv[split]["query"]) == list(from_jsonl[split]["query"])
        assert list(from_csv[split]["id"]) == list(from_jsonl[split]["id"])


def test_the_processed_dataset_is_cached_and_the_key_follows_the_settings(
        local_settings, monkeypatch):
    settings = local_settings(LENGTHS)
    first = data.build_dataset(settings)
    def refuse(_settings):
        raise RuntimeError("the source was read again")

    monkeypatch.setattr(data, "read_dialogues", refuse)
    again = data.build_dataset(settings)
    assert list(again["train"]["query"]) == list(first["train"]["query"])
    narrower = local_settings(LENGTHS, max_dialogue_chars=900)
    assert data.cache_key(narrower) != data.cache_key(settings)
    with pytest.raises(RuntimeError, match="read again"):  # a new key: not served from cache
        data.build_dataset(narrower)


def test_the_split_name_picks_files_when_a_folder_holds_several(tmp_path):
    for name in ("dialogsum.train.jsonl", "dialogsum.test.jsonl", "notes.txt"):
        (tmp_path / name).write_text("")
    assert [p.name for p in data.source_files(tmp_path, "train")] == ["dialogsum.train.jsonl"]
    assert len(data.source_files(tmp_path, "validation")) == 2  # none named so: all data files


def test_a_missing_folder_is_named(tiny_settings, tmp_path):
    missing = tmp_path / "nowhere"
    settings = load_settings("full", environ={}, dataset=str(missing),
                             artifacts_dir=tmp_path, policy_model=tiny_settings.policy_model)
    with pytest.raises(DetoxError, match="does not exist") as error:
        data.build_dataset(settings)
    assert str(missing) in str(error.value)


def test_a_folder_without_data_files_is_an_error(tiny_settings, tmp_path):
    (tmp_path / "empty").mkdir()
    settings = load_settings("full", environ={}, dataset=str(tmp_path / "empty"),
                             artifacts_dir=tmp_path, policy_model=tiny_settings.policy_model)
    with pytest.raises(DetoxError, match="holds no .csv, .jsonl or .json"):
        data.build_dataset(settings)


def test_missing_columns_are_named(tiny_settings, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps({"id": "x", "text": "hello"}) + "\n")
    settings = load_settings("full", environ={}, dataset=str(folder), artifacts_dir=tmp_path,
                             policy_model=tiny_settings.policy_model)
    with pytest.raises(DetoxError, match="lacks the column.*dialogue, summary"):
        data.build_dataset(settings)


def test_nothing_left_after_filtering_is_an_error(local_settings):
    settings = local_settings([100, 150, 1500])
    with pytest.raises(DetoxError, match=r"Only 0 of 3 dialogues .* 200 < length <= 1000"):
        data.build_dataset(settings)


def test_an_unreachable_hub_dataset_says_why_and_the_way_out(tiny_settings, tmp_path):
    settings = load_settings("full", environ={}, artifacts_dir=tmp_path,
                             dataset="someone/no-such-dialogues",
                             policy_model=tiny_settings.policy_model)
    with pytest.raises(DetoxError) as error:
        data.build_dataset(settings)
    message = str(error.value)
    for words in ("someone/no-such-dialogues", "no network", "DETOX_PROFILE=tiny",
                  "DETOX_DATASET"):
        assert words in message


def test_full_profile_offline_fails_clearly_and_never_falls_back_to_tiny(tmp_path):
    settings = load_settings("full", environ={}, artifacts_dir=tmp_path)
    with pytest.raises(DetoxError, match="knkarthick/dialogsum.*no network"):
        data.build_dataset(settings)
    with pytest.raises(DetoxError, match="google/flan-t5-base.*DETOX_POLICY_MODEL"):
        load_tokenizer(settings)
    assert not (tmp_path / "tiny-world").exists()
