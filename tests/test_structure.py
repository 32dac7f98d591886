"""The package's imports flow one way: no module imports, even inside a function, a module that
imports it back (directly or round a longer circle)."""

import ast
from pathlib import Path

import detox_helpers

PACKAGE = Path(detox_helpers.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """The package modules one file imports, wherever the import statement stands."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:             # from .data import x
                names.add(node.module.split(".")[0])
            elif node.level == 1:                           # from . import data, plots
                names.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("detox_helpers."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("detox_helpers."))
    return names


def import_graph(folder: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {path.stem: path for path in folder.glob("*.py")}
    return {name: imported_modules(path) & set(modules) - {name}
            for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each once, as the list of modules round it."""
    found, seen = [], set()

    def walk(module, path):
        for target in sorted(graph[module]):
            if target in path:
                circle = path[path.index(target):]
                key = frozenset(circle)
                if key not in seen:
                    seen.add(key)
                    found.append(circle + [target])
            else:
                walk(target, path + [target])

    for module in sorted(graph):
        walk(module, [module])
    return found


def test_the_circle_finder_finds_a_circle_hidden_in_a_function(tmp_path):
    (tmp_path / "a.py").write_text("from .b import thing\n")
    (tmp_path / "b.py").write_text("def late():\n    from . import c\n")
    (tmp_path / "c.py").write_text("import detox_helpers.a\n")
    (tmp_path / "d.py").write_text("from .a import thing\n")
    assert circles(import_graph(tmp_path)) == [["a", "b", "c", "a"]]


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert {"settings", "layout", "data", "ppo", "report"} <= set(graph)
    assert not circles(graph), "import circles: " + "; ".join(
        " -> ".join(circle) for circle in circles(graph))


def test_the_layout_and_settings_import_nothing_above_them():
    graph = import_graph()
    assert graph["layout"] <= {"errors"}
    assert graph["settings"] <= {"errors", "layout"}
