"""The package's imports flow one way: no module imports, even inside a function, a module that
imports it back (directly or round a longer circle), subpackages (tiny/) included; and no module
outside the miniature imports it."""

import ast
from pathlib import Path

import detox_helpers

PACKAGE = Path(detox_helpers.__file__).parent


def module_name(path: Path, root: Path) -> str:
    """`tiny.world` for tiny/world.py, `tiny` for tiny/__init__.py, `__init__` for the top."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def imported_modules(path: Path, root: Path) -> set[str]:
    """Every name a file's imports could mean, as package modules (`tiny.world`, `layout`),
    wherever the import statement stands; import_graph keeps those that exist."""
    package = path.relative_to(root).parent.parts           # () at the top, ("tiny",) below
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:                                  # from ..layout import x
                base = package[:len(package) - (node.level - 1)]
            elif node.module and node.module.split(".")[0] == "detox_helpers":
                base = ()                                   # from detox_helpers.tiny import x
            else:
                continue
            module = list(base) + (node.module.split(".") if node.module else [])
            if node.module and not node.level:
                module = module[1:]                         # drop "detox_helpers"
            names.add(".".join(module))
            # `from . import data` and `from .tiny import world` name modules too
            names.update(".".join([*module, alias.name]) for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".", 1)[1] for alias in node.names
                         if alias.name.startswith("detox_helpers."))
    return names


def import_graph(folder: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package, subpackages included, and the package modules it imports."""
    modules = {module_name(path, folder): path for path in folder.rglob("*.py")}
    return {name: imported_modules(path, folder) & set(modules) - {name}
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


def test_the_circle_finder_reads_subpackages(tmp_path):
    # a circle through a subpackage, written each way an import can name it
    (tmp_path / "sub").mkdir()
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / "sub" / "__init__.py").write_text("")
    (tmp_path / "a.py").write_text("from .sub import x\n")
    (tmp_path / "sub" / "x.py").write_text("from . import y\n")
    (tmp_path / "sub" / "y.py").write_text("def late():\n    from ..b import thing\n")
    (tmp_path / "b.py").write_text("from detox_helpers.sub.z import thing\n")
    (tmp_path / "sub" / "z.py").write_text("from .. import a\n")
    assert circles(import_graph(tmp_path)) == [["a", "sub.x", "sub.y", "b", "sub.z", "a"]]


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert {"settings", "layout", "data", "ppo", "report", "tiny.world", "tiny.claims"} <= set(
        graph)
    assert not circles(graph), "import circles: " + "; ".join(
        " -> ".join(circle) for circle in circles(graph))


def test_the_layout_and_settings_import_nothing_above_them():
    graph = import_graph()
    assert graph["layout"] <= {"errors"}
    assert graph["settings"] <= {"errors", "layout"}


def tiny_importers(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Each module outside tiny/ that imports from tiny/, and what it imports there."""
    outside = {module: sorted(target for target in targets if target.split(".")[0] == "tiny")
               for module, targets in graph.items() if module.split(".")[0] != "tiny"}
    return {module: tiny for module, tiny in outside.items() if tiny}


def test_no_module_of_the_package_imports_the_miniature(tmp_path):
    """tiny/ may use the package; no module of the package imports tiny/ (the library runs
    without it, the full lab too): the notebooks and the command line (detox_course) choose
    it and pass it in."""
    assert not tiny_importers(import_graph())
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "world.py").write_text("")
    (tmp_path / "models.py").write_text("from .tiny import world\n")
    (tmp_path / "data.py").write_text("def late():\n    from .tiny.world import thing\n")
    assert tiny_importers(import_graph(tmp_path)) == {"data": ["tiny.world"],
                                                     "models": ["tiny.world"]}


def test_importing_the_package_leaves_torch_s_threads_as_they_were():
    """A benchmark or notebook that imports the package must time torch as torch stands: no
    module may change its thread counts or its parallel back end at import (issue 49's guard).
    Run in a fresh process, where nothing has imported the package yet."""
    import subprocess
    import sys

    probe = (
        "import importlib, pkgutil, torch, detox_helpers\n"
        "def state():\n"
        "    return (torch.get_num_threads(), torch.get_num_interop_threads(),\n"
        "            torch.__config__.parallel_info())\n"
        "before = state()\n"
        "for module in pkgutil.walk_packages(detox_helpers.__path__, 'detox_helpers.'):\n"
        "    if not module.name.endswith('__main__'):  # the command line runs at import\n"
        "        importlib.import_module(module.name)\n"
        "print(before == state(), before[:2], state()[:2])\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True)
    assert done.stdout.startswith("True"), done.stdout + done.stderr


# Issue 47: the package outside the miniature is a small support module (the notebooks teach).
# It asked for at most 2,600 lines; 2,802 -> 2,609 on 2026-12-08 without cramming. This bound
# keeps it from growing again unnoticed: lower it as the package shrinks, raise it only with a
# reason in the commit.
MOST_LINES = 2612


def code_lines(folder: Path) -> int:
    """Non-blank lines that are not comments (docstrings count) in the folder's own modules,
    subpackages such as tiny/ left out."""
    lines = (line.strip() for path in folder.glob("*.py") for line in path.read_text().splitlines())
    return sum(1 for line in lines if line and not line.startswith("#"))


def test_the_support_package_stays_small(tmp_path):
    (tmp_path / "one.py").write_text('"""Doc."""\n\n# why\nx = 1  # one\n')
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "world.py").write_text("y = 2\n")
    assert code_lines(tmp_path) == 2
    assert code_lines(PACKAGE) <= MOST_LINES, (
        f"detox_helpers/ outside tiny/ has {code_lines(PACKAGE)} lines of code; at most "
        f"{MOST_LINES}: what a notebook teaches belongs in the notebook")
