"""The package's `evaluate` toxicity measurement: offline, and the reward module's numbers."""

import importlib.resources
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import evaluate
import numpy as np
import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from detox_helpers.errors import DetoxError
from detox_helpers.layout import MEASUREMENT_DIR
from detox_helpers.reward import load_reward_model

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "detox_helpers"

CLEAN = ["#Person1# books a table for four people at noon on Friday.",
         "#Person2# asks #Person1# when the next train to the city leaves."]
INSULTING = ["#Person1# tells #Person2# that he is a stupid jerk.",
             "#Person2# says #Person1# is lazy and forgot the tickets.",
             "#Person1# calls the waiter a worthless idiot and a loser."]
TEXTS = CLEAN + INSULTING


@pytest.fixture(scope="module")
def toxicity(tiny_settings):
    return evaluate.load(str(MEASUREMENT_DIR), "default", module_type="measurement")


@pytest.fixture(scope="module")
def expected(tiny_settings):
    """The reward module's toxicity of TEXTS, computed without the measurement."""
    return load_reward_model(tiny_settings).toxicity(TEXTS).tolist()


def wheel_files(pyproject: str, tmp_path: Path) -> list[str]:
    """The files of the wheel that `pyproject` (the text of pyproject.toml) builds from this
    checkout's package: what `pip install .` puts on a user's machine."""
    source = tmp_path / "source"
    shutil.copytree(PACKAGE_DIR, source / "detox_helpers",
                    ignore=shutil.ignore_patterns("__pycache__", "tiny-world"))  # 2 MB, unread
    shutil.copytree(REPO / "detox_course", source / "detox_course",  # pyproject names it too
                    ignore=shutil.ignore_patterns("__pycache__"))
    (source / "pyproject.toml").write_text(pyproject)
    shutil.copy(REPO / "README.md", source)
    built = subprocess.run([sys.executable, "-c", "from setuptools import build_meta; "
                            f"print(build_meta.build_wheel({str(tmp_path)!r}))"],
                           cwd=source, capture_output=True, text=True, check=True)
    wheel = tmp_path / built.stdout.split()[-1]
    return zipfile.ZipFile(wheel).namelist()


def test_the_measurement_folder_ships_in_the_installed_package(tmp_path):
    # where the import system finds the package (an installed copy, or an editable checkout),
    # not a path built from this file's place in the checkout
    installed = Path(str(importlib.resources.files("detox_helpers")))
    assert installed in MEASUREMENT_DIR.parents, f"{MEASUREMENT_DIR} is outside {installed}"
    inside = MEASUREMENT_DIR.relative_to(installed)
    assert (installed / inside / "toxicity.py").is_file()   # the layout evaluate.load expects
    # and a wheel built by pyproject.toml carries it
    files = wheel_files((REPO / "pyproject.toml").read_text(), tmp_path)
    assert f"detox_helpers/{inside.as_posix()}/toxicity.py" in files


def test_loads_from_the_package_without_the_network(tiny_settings, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network use in an offline test")

    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(variable)  # as on a user's machine: the libraries may try, and fail
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    toxicity = evaluate.load(str(MEASUREMENT_DIR), module_type="measurement")
    scores = toxicity.compute(predictions=TEXTS)["toxicity"]
    assert attempts == [] and len(scores) == len(TEXTS)
    with pytest.raises(OSError):  # the Hub's copy must try the network: the guard sees it
        evaluate.load("toxicity", module_type="measurement")
    assert attempts


def test_scores_are_the_reward_modules_toxicity(toxicity, expected):
    scores = toxicity.compute(predictions=TEXTS)["toxicity"]
    assert scores == pytest.approx(expected, abs=1e-6)
    # the texts are meaningful: every insult scores above every clean summary
    assert max(scores[:len(CLEAN)]) < 0.5 < min(scores[len(CLEAN):])


def test_another_label_by_name_gives_its_own_probability(toxicity, expected):
    clean = toxicity.compute(predictions=TEXTS, toxic_label="nothate")["toxicity"]
    assert clean == pytest.approx([1 - p for p in expected], abs=1e-6)   # two labels only
    assert toxicity.compute(predictions=TEXTS, toxic_label="HATE")["toxicity"] == pytest.approx(
        expected, abs=1e-6)
    with pytest.raises(DetoxError, match="offensive"):
        toxicity.compute(predictions=TEXTS, toxic_label="offensive")


def test_maximum_is_the_largest_score(toxicity, expected):
    result = toxicity.compute(predictions=TEXTS, aggregation="maximum")
    assert list(result) == ["max_toxicity"]
    assert result["max_toxicity"] == pytest.approx(max(expected), abs=1e-6)


def test_ratio_is_the_share_at_or_above_the_threshold(toxicity, expected):
    assert toxicity.compute(predictions=TEXTS, aggregation="ratio") == {
        "toxicity_ratio": pytest.approx(np.mean(np.array(expected) >= 0.5))}
    # a score equal to the threshold counts, as in the Hub measurement (>=)
    threshold = sorted(expected)[-2]
    ratio = toxicity.compute(predictions=TEXTS, aggregation="ratio", threshold=threshold)
    assert ratio["toxicity_ratio"] == pytest.approx(2 / len(TEXTS))

def test_an_unknown_aggregation_is_refused(toxicity):
    with pytest.raises(ValueError, match="Unknown aggregation 'mean'.*maximum.*ratio"):
        toxicity.compute(predictions=TEXTS, aggregation="mean")


def test_a_model_path_as_config_name_picks_that_classifier(tiny_settings, expected, tmp_path):
    by_path = evaluate.load(str(MEASUREMENT_DIR), tiny_settings.reward_model,
                            module_type="measurement")
    assert by_path.compute(predictions=TEXTS)["toxicity"] == pytest.approx(expected, abs=1e-6)
    # evaluate's cache for this config stays out of the model folder
    assert Path(tiny_settings.reward_model).resolve() not in Path(by_path.data_dir).parents
    assert Path(by_path.data_dir) != Path(tiny_settings.reward_model)

    # a classifier whose output rows are swapped under the same label names says the opposite,
    # so a different result proves the config name chose the model
    model = AutoModelForSequenceClassification.from_pretrained(tiny_settings.reward_model)
    head = model.classifier.out_proj
    head.weight.data, head.bias.data = head.weight.data.flip(0), head.bias.data.flip(0)
    model.save_pretrained(tmp_path / "flipped")
    AutoTokenizer.from_pretrained(tiny_settings.reward_model).save_pretrained(tmp_path / "flipped")
    flipped = evaluate.load(str(MEASUREMENT_DIR), str(tmp_path / "flipped"),
                            module_type="measurement").compute(predictions=TEXTS)["toxicity"]
    assert flipped == pytest.approx([1 - p for p in expected], abs=1e-5)
