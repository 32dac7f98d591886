"""The tiny world is a plug-in: what only the miniature knows (its exact judge's columns and
figures, its insult vocabulary) lives in detox_helpers/tiny/ and reaches the lab as an argument
(`evaluation.Judge`, handed over by the notebooks); the lab's modules and notebooks name none
of it, read from their code."""

import io
import re
import tokenize
from pathlib import Path

import nbformat

import detox_helpers
from detox_helpers.tiny.insults import MILD_WORDS, STRONG_WORDS
from detox_helpers.tiny.judge import EXACT_METRICS, exact_columns

PACKAGE = Path(detox_helpers.__file__).parent
NOTEBOOKS = PACKAGE.parent / "notebooks"
TINY_KEYS = {metric.key for metric in EXACT_METRICS} | set(exact_columns([], [], []).columns)
VOCABULARY = set(MILD_WORDS + STRONG_WORDS)


def lab_modules() -> dict[str, str]:
    """Every module of the package outside tiny/, by path, with its text."""
    return {str(path.relative_to(PACKAGE)): path.read_text() for path in PACKAGE.rglob("*.py")
            if "tiny" not in path.relative_to(PACKAGE).parts}


def notebook_cells() -> dict[str, str]:
    """Every code cell of the lab's notebooks, its magics (`%pip`) left out."""
    cells = {}
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for number, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if cell.cell_type == "code":
                cells[f"{path.name}:{number}"] = "\n".join(
                    line for line in cell.source.splitlines() if line.lstrip()[:1] not in "%!")
    return cells


def named(source: str) -> set[str]:
    """The names a piece of code uses (identifiers, attributes) and the plain words it quotes
    (a column or a figure's key, `table["name"]`); not its comments, nor prose in strings."""
    found = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            found.add(token.string)
        elif token.type == tokenize.STRING:
            quoted = re.fullmatch(r"""[rbuf]*(['"])([A-Za-z_][A-Za-z0-9_]*)\1""", token.string)
            if quoted:
                found.add(quoted.group(2))
    return found


def test_the_reader_finds_a_key_however_it_is_named():
    assert {"facts_kept", "name_kept", "insult"} <= named(
        'x = table["facts_kept"]\ny = row.name_kept\nz = {"insult": 1}  # missed')
    assert not named('"an insult, in prose"  # facts_kept') & TINY_KEYS


def test_no_module_or_notebook_of_the_lab_names_a_key_of_the_tiny_world():
    sources = {**lab_modules(), **notebook_cells()}
    assert len(sources) > 40
    leaks = {where: sorted(named(source) & TINY_KEYS) for where, source in sources.items()}
    assert not {where: keys for where, keys in leaks.items() if keys}


def test_no_module_of_the_lab_names_a_word_of_the_insult_vocabulary():
    said = {where: sorted(set(re.findall(r"[a-z]+", text.lower())) & VOCABULARY)
            for where, text in lab_modules().items()}
    assert not {where: words for where, words in said.items() if words}
