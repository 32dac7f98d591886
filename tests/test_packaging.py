"""The package's declared dependencies against the lock and against what the code imports."""

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def name(text):
    return text.lower().replace("_", "-")


def declared():
    """{distribution: requirement} of the dependencies and every extra."""
    texts = PROJECT["dependencies"] + [text for extra in PROJECT["optional-dependencies"].values()
                                       for text in extra]
    return {name(Requirement(text).name): Requirement(text) for text in texts}


def pins():
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return {name(line.split("==")[0]): line.split("==")[1].strip()
            for line in lines if line.strip() and not line.startswith("#")}


def test_every_pin_of_the_lock_is_declared_and_satisfies_its_range():
    ranges = declared()
    assert set(pins()) - {"entrypoints", "tenacity"} <= set(ranges), \
        set(pins()) - set(ranges)  # papermill's own two, pinned for the lock only
    for package, version in pins().items():
        if package in ranges:
            assert ranges[package].specifier.contains(version, prereleases=True), (
                package, version, str(ranges[package].specifier))


def imported_modules():
    """Top-level modules imported by the packages, the notebooks, the tests and benchmarks."""
    sources = [path.read_text() for folder in ("detox_helpers", "detox_course", "tests",
                                               "benchmarks", "book")
               for path in (REPO / folder).rglob("*.py") if "class_answers" not in path.parts]
    for path in (REPO / "notebooks").glob("*.ipynb"):
        cells = json.loads(path.read_text())["cells"]
        sources += ["\n".join(line for line in "".join(cell["source"]).splitlines()
                              if not line.lstrip().startswith(("%", "!")))
                    for cell in cells if cell["cell_type"] == "code"]
    found = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_every_module_the_code_imports_is_declared():
    ours = {"detox_helpers", "detox_course", "conftest"} | {
        path.stem for folder in ("tests", "benchmarks") for path in (REPO / folder).glob("*.py")}
    providers = importlib.metadata.packages_distributions()
    ranges = declared()
    missing = {}
    for module in imported_modules() - ours - set(sys.stdlib_module_names):
        # declared itself, not reached through another package's dependencies
        distributions = {name(d) for d in providers.get(module, [])}
        if not distributions & set(ranges):
            missing[module] = sorted(distributions)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


# --- the wheel, installed alone (make test-long) ---------------------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The package's wheel, built here offline (setuptools from the lock, no index)."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", str(REPO), "-w", str(folder)], check=True,
                   cwd=folder)
    return next(folder.glob("detox_helpers-*.whl"))


@pytest.mark.long
def test_the_wheel_declares_the_lab_and_carries_the_tiny_world_and_the_measurement(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "Requires-Python: >=3.11" in metadata
    requires = [line.split(": ", 1)[1] for line in metadata.splitlines()
                if line.startswith("Requires-Dist: ")]
    assert {name(Requirement(text).name) for text in requires if "extra ==" not in text} == {
        name(Requirement(text).name) for text in PROJECT["dependencies"]}
    assert {line.split(": ")[1] for line in metadata.splitlines()
            if line.startswith("Provides-Extra")} == {"course", "book", "dev"}
    world = [n for n in names if "/tiny-world/" in n]
    shipped = [p for p in (REPO / "detox_helpers" / "tiny" / "tiny-world").rglob("*")
               if p.is_file()]
    assert len(world) == len(shipped) > 0
    assert "detox_helpers/evaluate-modules/toxicity/toxicity.py" in names
    # the instructor's course kit ships beside the lab's package (pip install ...[course])
    assert {"detox_course/__main__.py", "detox_course/grading.py"} <= set(names)


@pytest.mark.long
def test_a_notebook_copied_alone_runs_on_the_installed_wheel_and_writes_beside_itself(
        wheel, tmp_path):
    """As on a hosted runtime: the wheel installed (its dependencies are this venv's), notebook
    01 copied into an empty folder and run there; its artifacts land under that folder."""
    site, alone = tmp_path / "site", tmp_path / "alone"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(site), str(wheel)], check=True)
    alone.mkdir()
    shutil.copy(REPO / "notebooks" / "01_data.ipynb", alone)
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("DETOX_")} | {"PYTHONPATH": str(site)}
    imported = subprocess.run([sys.executable, "-c", "import detox_helpers; print("
                               "detox_helpers.__file__)"], env=environment, cwd=alone,
                              capture_output=True, text=True, check=True).stdout
    assert Path(imported.strip()).is_relative_to(site)  # the wheel's copy, not the checkout
    subprocess.run([sys.executable, "-m", "papermill", "--no-progress-bar", "01_data.ipynb",
                    "executed.ipynb"], cwd=alone, env=environment, check=True,
                   capture_output=True)
    executed = json.loads((alone / "executed.ipynb").read_text())
    printed = "".join("".join(output.get("text", "")) for cell in executed["cells"]
                      for output in cell.get("outputs", []))
    assert "Installed" not in printed  # the set-up cell found the package
    written = {path.relative_to(alone).parts[0] for path in alone.rglob("*") if path.is_file()}
    assert written == {"01_data.ipynb", "executed.ipynb", "artifacts"}
    assert list((alone / "artifacts").rglob("*.arrow")) or list((alone / "artifacts").rglob(
        "*.json")), "notebook 01 saved no dataset under its folder"
