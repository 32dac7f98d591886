"""The package's declared dependencies against the lock and against what the code imports."""

import ast
import importlib.metadata
import json
import sys
import tomllib
from pathlib import Path

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
    """Top-level modules imported by the package, the notebooks, the tests and benchmarks."""
    sources = [path.read_text() for folder in ("detox_helpers", "tests", "benchmarks", "book")
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
    ours = {"detox_helpers", "conftest"} | {path.stem for folder in ("tests", "benchmarks")
                                            for path in (REPO / folder).glob("*.py")}
    providers = importlib.metadata.packages_distributions()
    ranges = declared()
    missing = {}
    for module in imported_modules() - ours - set(sys.stdlib_module_names):
        # declared itself, not reached through another package's dependencies
        distributions = {name(d) for d in providers.get(module, [])}
        if not distributions & set(ranges):
            missing[module] = sorted(distributions)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
