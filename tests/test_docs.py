"""docs/architecture.md describes today's code: one line for every module of the package, of
the tiny world and of the course kit, and no line for a module that is gone."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"detox_helpers": "The lab's support", "detox_helpers/tiny": "The offline miniature",
            "detox_course": "The command line and the course kit"}


def modules(folder: Path) -> set[str]:
    return {path.stem for path in folder.glob("*.py") if not path.stem.startswith("__")}


def described(text: str, heading: str) -> set[str]:
    """The modules a list names, one a line (`- `name`: ...`), in the paragraph that opens
    with `heading` and the list that follows it."""
    block = text[text.index(heading):].split("\n\n", 2)[1]
    return set(re.findall(r"^- `(\w+)`:", block, flags=re.MULTILINE))


def test_the_architecture_page_lists_every_module_and_no_other():
    text = (ROOT / "docs" / "architecture.md").read_text()
    for folder, heading in PACKAGES.items():
        assert described(text, heading) == modules(ROOT / folder), folder


def test_the_reader_sees_a_missing_module(tmp_path):
    (tmp_path / "kept.py").write_text("")
    (tmp_path / "new.py").write_text("")
    page = "The lab's support, here:\n\n- `kept`: a module.\n- `gone`: another.\n\nmore"
    assert described(page, "The lab's support") == {"kept", "gone"} != modules(tmp_path)


def test_the_design_pages_tree_holds_every_place_a_run_writes(tmp_path):
    from detox_helpers.layout import Layout

    text = (ROOT / "docs" / "design.md").read_text()
    tree = text[text.index("```\nartifacts/\n"):].split("```")[1]
    layout = Layout(tmp_path)
    places = [value.relative_to(tmp_path) for value in vars(layout).values()
              if isinstance(value, Path) and value != tmp_path]
    places += [Path("ppo-previous"), Path("executed"), Path("data")]  # the rest by their folder
    missing = [str(place) for place in places if any(part not in tree for part in place.parts)]
    assert not missing, f"not in docs/design.md's tree: {missing}"
    assert "runs/<name>/" in tree


def test_the_docs_name_only_test_files_and_modules_that_exist():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    tests = {path.name for path in (ROOT / "tests").glob("test_*.py")}
    named = {(page.name, name) for page in pages
             for name in re.findall(r"\b(test_\w+\.py)\b", page.read_text())}
    assert not sorted((page, name) for page, name in named if name not in tests)


def test_the_readmes_seed_table_is_the_one_its_kept_figures_make():
    import json

    import tiny_seeds

    readme = (ROOT / "README.md").read_text()
    shown = readme.split(tiny_seeds.BEGIN)[1].split(tiny_seeds.END)[0].strip()
    assert shown == tiny_seeds.table(json.loads(tiny_seeds.PER_SEED.read_text()))
