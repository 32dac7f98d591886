"""Who does the work in each notebook: calls into `detox_helpers` against calls of the libraries
the lab teaches, counted over the notebooks' code cells, and each notebook's longest code cell.

    .venv/bin/python benchmarks/notebook_calls.py            # the table
    .venv/bin/python benchmarks/notebook_calls.py --docs     # ... and into docs/architecture.md

The rule, per call (`f(...)`, `x.f(...)`, `a.b.f(...)`) in a code cell's syntax tree (IPython's
`%pip` and `!` lines are read as IPython reads them and not counted):

- **package**: the call's leftmost name was imported from `detox_helpers`
  (`load_settings(...)`, `ppo.batch_indices(...)`, `checkpoints.keep(...)`); or it is a
  method of an object that a cell bound by `name = <package call>`, unless the method is a
  library's: the object's class (the class called, or the function's return annotation) is
  searched, and a method or attribute found on a library class counts for the library
  (`ppo_trainer.step`: `FirstTokenPPOTrainer` is trl's `PPOTrainer` with one method changed);
- **library**: every other call of an imported name (`load_dataset`, `torch.manual_seed`,
  `pd.DataFrame`) or of a method (`raw.filter`, `policy.generate`); IPython's `display` too;
  **standard library** calls (`time.perf_counter`, `math.ceil`) are counted apart and do not
  count for the libraries;
- not counted: Python's builtins (`print`, `len`), functions the notebook defines itself, the
  methods of Python's own types (`str.format`, `list.append`, `dict.items`, ...), and methods
  of a call's result or of an item (`raw.select(...).to_pandas()`, `dataset["train"].select`),
  which the rule cannot tell apart without running the cell.

A notebook passes (`LIBRARY_LEADS`) when its library calls outnumber its package calls and no
code cell is longer than `MAX_CELL_LINES` lines.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs" / "architecture.md"
PACKAGE = "detox_helpers"
MAX_CELL_LINES = 25
BEGIN, END = "<!-- notebook-calls:begin -->", "<!-- notebook-calls:end -->"

# Methods of Python's str, list, dict, set and tuple that notebooks call: not counted.
BUILTIN_METHODS = {name for kind in (str, list, dict, set, tuple) for name in dir(kind)
                   if not name.startswith("_")}
STANDARD_LIBRARY = set(sys.stdlib_module_names)


@dataclass
class Count:
    package: int = 0
    library: int = 0
    standard: int = 0
    longest: int = 0
    cells: int = 0
    calls: dict = field(default_factory=lambda: {"package": [], "library": []})

    @property
    def library_leads(self) -> bool:
        return self.library > self.package

    @property
    def short_cells(self) -> bool:
        return self.longest <= MAX_CELL_LINES


def cell_code(source: str) -> str:
    """A code cell as Python: IPython's magics turned into the calls they stand for."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def chain(node: ast.AST) -> list[str] | None:
    """`a.b.f` as ["a", "b", "f"]; None when the callee is not a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def package_class(target) -> type | None:
    """The class of what calling `target` (a package function or class) returns, if known."""
    if inspect.isclass(target):
        return target
    try:
        returned = inspect.signature(target, eval_str=True).return_annotation
    except Exception:  # a string annotation that does not resolve, a builtin: unknown
        return None
    return returned if inspect.isclass(returned) else None


def attribute_class(cls: type, attribute: str) -> type | None:
    """The class of `cls`'s `attribute` as annotated: a dataclass field's type or a property's
    return annotation; None when not annotated."""
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve
        hints = {}
    found = hints.get(attribute)
    if found is None and isinstance(getattr(cls, attribute, None), property):
        found = package_class(getattr(cls, attribute).fget)
    return found if inspect.isclass(found) else None


def owner(cls: type, attribute: str) -> str:
    """'package' or 'library': who defines `attribute` for instances of `cls` (a package
    class), searched along its method resolution order; an attribute on no class (set in an
    `__init__`) belongs to the library when the class has a library base."""
    for klass in inspect.getmro(cls):
        if attribute in vars(klass):
            return "package" if klass.__module__.startswith(PACKAGE) else (
                "builtin" if klass.__module__ == "builtins" else "library")
    library_bases = [k for k in inspect.getmro(cls)
                     if not k.__module__.startswith(PACKAGE) and k is not object]
    return "library" if library_bases else "package"


class Notebook:
    """The names a notebook has bound so far, across its cells, in order."""

    def __init__(self):
        self.imported: dict[str, str] = {}        # name -> module it came from
        self.package_objects: dict[str, type | None] = {}  # name -> its class, if known
        self.defined: set[str] = set()  # functions, classes and other values the notebook binds

    def bind(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imported[alias.asname or alias.name.split(".")[0]] = alias.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                self.defined.add(node.name)

    def note_assignment(self, node: ast.Assign) -> None:
        """`name = <call>`: a package object when the call is the package's, else not."""
        for target in node.targets:
            if not isinstance(target, ast.Name):
                continue
            callee = chain(node.value.func) if isinstance(node.value, ast.Call) else None
            if isinstance(node.value, (ast.Constant, ast.Lambda)):  # reward_function = None
                self.defined.add(target.id)
            if callee and self.module_of(callee[0], "").startswith(PACKAGE):
                self.package_objects[target.id] = package_class(self.resolve(callee))
            else:
                self.package_objects.pop(target.id, None)

    def module_of(self, name: str, default: str | None = None) -> str | None:
        return self.imported.get(name, default)

    def resolve(self, parts: list[str]):
        """The object a dotted name of imported names stands for (None if it cannot load)."""
        path = self.imported[parts[0]]
        try:
            target = importlib.import_module(path)
        except ImportError:
            module, _, name = path.rpartition(".")
            try:
                target = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                return None
        for part in parts[1:]:
            target = getattr(target, part, None)
        return target

    def kind(self, parts: list[str]) -> str | None:
        """'package', 'library', 'standard' or None (not counted) for a call of `parts`."""
        root, method = parts[0], parts[-1]
        if root == "get_ipython" or root in self.defined:
            return None
        if len(parts) > 2 - (root not in self.imported) and method in BUILTIN_METHODS:
            return None  # NO_ADAPTER.format(...), ppo.TRL_STATISTICS.items(), name.strip()
        if root in self.imported:
            module = self.imported[root]
            if len(parts) > 1 and isinstance(self.resolve(parts[:1]), (str, list, dict, tuple)):
                return None  # a method of the package's constant: NO_ADAPTER.format(...)
            if module.startswith(PACKAGE):
                return "package"
            return "standard" if module.split(".")[0] in STANDARD_LIBRARY else "library"
        if root in self.package_objects:
            return self.package_object_call(self.package_objects[root], parts[1:])
        if len(parts) == 1:
            return None if hasattr(builtins, root) else "library"  # IPython's display
        return "library"


    @staticmethod
    def package_object_call(cls: type | None, attributes: list[str]) -> str | None:
        """Who a call `obj.a.b.f(...)` of a package object of class `cls` calls: the classes
        of the attributes on the way are followed as annotated (`baseline.per_sample` is a
        pandas DataFrame, `settings.layout` the package's Layout)."""
        if cls is None or not attributes:
            return "package"
        for attribute in attributes[:-1]:
            if not cls.__module__.startswith(PACKAGE):
                break
            inner = attribute_class(cls, attribute)
            if inner is None:
                break
            cls = inner
        else:
            attribute = attributes[-1]
        if not cls.__module__.startswith(PACKAGE):
            return None if cls.__module__ == "builtins" else "library"
        who = owner(cls, attribute)
        return None if who == "builtin" else who


def count(path: Path) -> Count:
    """The counts of one notebook (see the module docstring for the rule)."""
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    notebook, counted = Notebook(), Count(cells=len(cells))
    for cell in cells:
        source = "".join(cell["source"])
        counted.longest = max(counted.longest, len(source.splitlines()))
        tree = ast.parse(cell_code(source))
        notebook.bind(tree)
        for node in ast.walk(tree):  # statements in source order: an assignment's call first
            if isinstance(node, ast.Call) and (parts := chain(node.func)):
                kind = notebook.kind(parts)
                if kind:
                    setattr(counted, kind, getattr(counted, kind) + 1)
                    if kind in counted.calls:
                        counted.calls[kind].append(".".join(parts))
            if isinstance(node, ast.Assign):
                notebook.note_assignment(node)
    return counted


def loop_body_lines(path: Path) -> int:
    """Lines of the body of the first `for` or `while` loop that calls `ppo_trainer.step`."""
    for cell in json.loads(path.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "ppo_trainer.step(" not in source:
            continue
        for node in ast.walk(ast.parse(cell_code(source))):
            if isinstance(node, (ast.For, ast.While)) and "ppo_trainer.step(" in \
                    ast.get_source_segment(cell_code(source), node):
                return node.end_lineno - node.body[0].lineno + 1
    raise ValueError(f"{path.name}: no loop calls ppo_trainer.step")


def table(paths: list[Path]) -> str:
    rows = ["| notebook | code cells | longest cell (lines) | calls into `detox_helpers` | "
            "library calls | standard library calls | library calls lead |",
            "|---|---|---|---|---|---|---|"]
    for path in paths:
        c = count(path)
        rows.append(f"| `{path.stem}` | {c.cells} | {c.longest} | {c.package} | {c.library} | "
                    f"{c.standard} | {'yes' if c.library_leads else '**no**'} |")
    return "\n".join(rows)


def write_docs(text: str) -> None:
    page = DOCS.read_text()
    start, end = page.index(BEGIN) + len(BEGIN), page.index(END)
    DOCS.write_text(page[:start] + "\n" + text + "\n" + page[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help="write the table into " + str(DOCS))
    parser.add_argument("--calls", action="store_true", help="list each notebook's calls")
    args = parser.parse_args()
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    text = table(paths)
    print(text)
    if args.calls:
        for path in paths:
            for kind, calls in count(path).calls.items():
                print(f"{path.stem} {kind}: {', '.join(calls)}")
    if args.docs:
        write_docs(text)
        print(f"written into {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
