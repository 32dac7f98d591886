"""Notebook 01 makes the dataset: each case runs its code cells in this process."""

import codecs
import json

import pandas as pd
import pytest

from detox_helpers import data
from detox_helpers.errors import DetoxError
from detox_helpers.models import load_tokenizer
from detox_helpers.settings import load_settings
from detox_helpers.unattended import run_notebook_here


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


def overrides(tiny_settings, folder, artifacts, **more):
    """The `full` lab's settings reading `folder`, with the tiny world's tokenizer."""
    return dict(dataset=str(folder), artifacts_dir=str(artifacts),
                policy_model=tiny_settings.policy_model, **more)


LENGTHS = [150, 200, 201, 450, 999, 1000, 1001, 1500, 300, 600, 700, 800]
KEPT = [2, 3, 4, 5, 8, 9, 10, 11]  # indices with 200 < length <= 1000


@pytest.fixture(scope="module")
def from_jsonl(tiny_settings, tmp_path_factory):
    """Notebook 01's variables, run on a JSON Lines folder with `fname` ids."""
    root = tmp_path_factory.mktemp("jsonl")
    folder = write_source(root / "source", LENGTHS)
    return run_notebook_here("01", profile="full",
                             overrides=overrides(tiny_settings, folder, root / "artifacts"))


def test_filter_prompt_tokenize_and_split_from_the_end_without_shuffling(from_jsonl):
    settings, dataset = from_jsonl["settings"], from_jsonl["dataset"]
    ids = list(dataset["train"]["id"]) + list(dataset["test"]["id"])
    assert ids == [f"d{i}" for i in KEPT]
    assert (dataset["train"].num_rows, dataset["test"].num_rows) == (6, 2)  # ceil(0.2 * 8)
    assert list(dataset["test"]["id"]) == ["d10", "d11"]
    row = dataset["test"][0]
    # the decoded prompt (T5-style tokenizers may give back a leading space)
    prompt = settings.prompt_template.format(dialogue=row["dialogue"])
    assert row["query"].strip() == prompt.strip() and prompt.strip().endswith("Summary:")
    tokenizer = load_tokenizer(settings)
    assert row["input_ids"] == tokenizer(row["query"])["input_ids"]
    saved = data.load_splits(settings)  # what the later notebooks load: the same, as tensors
    assert list(saved["test"]["id"]) == ["d10", "d11"]
    assert saved["test"][0]["input_ids"].tolist() == row["input_ids"]


def test_csv_with_id_column_gives_the_same_splits_as_jsonl_with_fname(
        from_jsonl, tiny_settings, run_notebook, tmp_path):
    folder = write_source(tmp_path / "source", LENGTHS, fmt="csv", id_column="id")
    from_csv = run_notebook("01", profile="full",
                            overrides=overrides(tiny_settings, folder, tmp_path / "artifacts"))
    for split in ("train", "test"):
        for column in ("id", "dialogue", "summary", "topic", "input_ids", "query"):
            assert (list(from_csv["dataset"][split][column])
                    == list(from_jsonl["dataset"][split][column]))


def test_dialogsums_released_test_file_gives_every_reference(tiny_settings, run_notebook,
                                                             tmp_path):
    folder = tmp_path / "source"
    folder.mkdir()
    records = [{"fname": f"test_{i}_1", "dialogue": dialogue_of_length(n, i),
                **{f"summary{j}": f"reference {j} of {i}" for j in (1, 2, 3)},
                **{f"topic{j}": f"topic {j}" for j in (1, 2, 3)}} for i, n in enumerate(LENGTHS)]
    pd.DataFrame(records).to_json(folder / "dialogsum.test.jsonl", orient="records", lines=True)
    made = run_notebook("01", profile="full", overrides=overrides(
        tiny_settings, folder, tmp_path / "artifacts", dataset_split="test"))
    row = data.load_splits(made["settings"])["test"][0]
    assert row["id"] == "test_10_1" and row["topic"] == "topic 1"
    assert row["summary"] == "reference 1 of 10"
    assert row["references"] == [f"reference {j} of 10" for j in (1, 2, 3)]


def test_rows_with_a_blank_summary_are_dropped_with_a_count(tiny_settings, run_notebook,
                                                           tmp_path, capsys):
    folder = write_source(tmp_path / "source", LENGTHS, fmt="csv", id_column="id")
    table = pd.read_csv(folder / "dialogsum.train.csv")
    blank = [0, 1, 3, 6, 7]  # 3 is in the length window: it would reach ROUGE
    table["summary"] = table["summary"].astype(object)
    table.loc[blank, "summary"] = ["", "   ", None, "", "\t"]
    table.to_csv(folder / "dialogsum.train.csv", index=False)
    made = run_notebook("01", profile="full",
                        overrides=overrides(tiny_settings, folder, tmp_path / "artifacts"))
    assert "dropped 5 rows with a blank summary" in capsys.readouterr().out
    splits = made["dataset"]
    ids = list(splits["train"]["id"]) + list(splits["test"]["id"])
    assert ids == [f"d{i}" for i in KEPT if i not in blank]
    assert all(row["references"] == [row["summary"]] for row in splits["test"])


def test_blank_references_are_left_out_and_a_row_without_any_is_dropped(capsys):
    from datasets import Dataset

    rows = Dataset.from_list([
        {"fname": "a", "dialogue": "x", "summary1": "first", "summary2": " ", "summary3": "third"},
        {"fname": "b", "dialogue": "y", "summary1": None, "summary2": "", "summary3": None},
        {"fname": "c", "dialogue": "z", "summary1": "", "summary2": "second", "summary3": None},
    ])
    named = data.dialogsum_columns(rows, "test file")
    assert list(named["id"]) == ["a", "c"]
    assert list(named["references"]) == [["first", "third"], ["second"]]
    assert list(named["summary"]) == ["first", "second"]  # the first reference left
    out = capsys.readouterr().out
    assert "dropped 1 row with a blank summary" in out and "left out 3 blank references" in out


def test_odd_files_an_empty_one_is_refused_one_with_a_byte_order_mark_is_read(tmp_path):
    (tmp_path / "dialogsum.train.jsonl").write_text("\n")
    with pytest.raises(DetoxError, match=r"The data file .*dialogsum\.train\.jsonl' is empty"):
        data.local_files(str(tmp_path), "train")
    from datasets import load_dataset

    for fmt in ("jsonl", "csv"):  # a BOM before the first column's name would hide `fname`
        folder = write_source(tmp_path / fmt, [300, 400], fmt=fmt)
        path = next(folder.iterdir())
        path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
        builder, files = data.local_files(str(folder), "train")
        raw = load_dataset(builder, data_files=files, split="train",
                           cache_dir=str(tmp_path / "cache"))
        assert list(data.dialogsum_columns(raw, str(folder))["id"]) == ["d0", "d1"]


def test_a_saved_copy_is_kept_and_other_shaping_settings_need_their_own(
        from_jsonl, run_notebook, capsys):
    settings = from_jsonl["settings"]
    folder = settings.layout.data_cache(data.cache_key(settings))  # where notebook 01 saved
    (folder / "marker").write_text("the first run's copy")
    run_notebook("01", profile="full", overrides=from_jsonl["overrides"])
    assert (folder / "marker").exists() and "already saved" in capsys.readouterr().out
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # nothing half-written
    narrower = load_settings("full", environ={}, **{**from_jsonl["overrides"],
                                                      "max_dialogue_chars": 900})
    assert data.cache_key(narrower) != data.cache_key(settings)
    with pytest.raises(DetoxError, match=r"No prepared dataset .*run notebook 01_data\.ipynb"
                                         r" or `python -m detox_course data` first"):
        data.load_splits(narrower)


def test_the_split_name_picks_files_when_a_folder_holds_several(tmp_path):
    for name in ("dialogsum.train.jsonl", "dialogsum.test.jsonl", "notes.txt"):
        (tmp_path / name).write_text("{}\n")
    assert [p.name for p in data.source_files(tmp_path, "train")] == ["dialogsum.train.jsonl"]
    assert len(data.source_files(tmp_path, "validation")) == 2  # none named so: all data files
    assert data.local_files(str(tmp_path), "train") == (
        "json", [str(tmp_path / "dialogsum.train.jsonl")])
    (tmp_path / "dialogsum.test.csv").write_text("id\n")
    with pytest.raises(DetoxError, match="mixes CSV and JSON"):
        data.local_files(str(tmp_path), "test")


def no_data_files(folder):
    folder.mkdir()


def missing_columns(folder):
    folder.mkdir()
    (folder / "train.jsonl").write_text(json.dumps({"id": "x", "text": "hello"}) + "\n")


def broken_json(folder):
    folder.mkdir()
    (folder / "train.jsonl").write_text("{not json\n")


def empty_file(folder):
    folder.mkdir()
    (folder / "train.jsonl").write_text("")


@pytest.mark.parametrize("make, match", [
    (None, "The dataset folder .*nowhere.* does not exist"),
    (no_data_files, "holds no .csv, .jsonl or .json"),
    (missing_columns, r"lacks the column.*dialogue, summary \(or summary1.*; it has id, text"),
    (broken_json, "Could not read .*nowhere"),
    (empty_file, r"The data file .*nowhere/train\.jsonl' is empty: fill it"),
    (lambda folder: write_source(folder, [100, 300, 1500]),
     r"Only 1 of 3 dialogues .* 200 < length <= 1000 characters: too few for a train and a "
     "test split"),
], ids=["missing-folder", "no-data-files", "missing-columns", "broken-file", "empty-file",
        "too-few"])
def test_a_source_the_lab_cannot_use_is_a_clear_error(make, match, tiny_settings, run_notebook,
                                                      tmp_path):
    folder = tmp_path / "nowhere"
    if make:
        make(folder)
    with pytest.raises(DetoxError, match=match):
        run_notebook("01", profile="full",
                     overrides=overrides(tiny_settings, folder, tmp_path / "artifacts"))
    assert not (tmp_path / "artifacts" / "data").exists()


def test_full_profile_offline_fails_clearly_and_never_falls_back_to_tiny(run_notebook,
                                                                          tmp_path):
    with pytest.raises(DetoxError) as error:
        run_notebook("01", profile="full", overrides={"artifacts_dir": str(tmp_path)})
    for words in ("'knkarthick/dialogsum' from the Hugging Face Hub", "no network",
                  "DETOX_PROFILE=tiny", "DETOX_DATASET"):
        assert words in str(error.value)
    settings = load_settings("full", environ={}, artifacts_dir=tmp_path)
    with pytest.raises(DetoxError, match="google/flan-t5-base.*DETOX_POLICY_MODEL"):
        load_tokenizer(settings)
    assert not any(tmp_path.iterdir())  # no tiny world, no dataset


@pytest.mark.parametrize("number", ["02", "03", "04"])
def test_a_later_notebook_run_before_notebook_01_says_to_run_it_first(number, tiny_settings,
                                                                     tmp_path):
    with pytest.raises(DetoxError, match=r"run notebook 01_data\.ipynb or `python -m "
                                         r"detox_course data` first"):
        run_notebook_here(number, overrides={"artifacts_dir": str(tmp_path)})
