"""Build the lab as a book: `make book` (or `python book/build.py`) -> artifacts/book/index.html.

Sphinx reads one source folder, so the pages are gathered first into artifacts/book-source/, laid
out as in the repository (notebooks/, docs/, report/) so that the links between them hold in
both places: this folder's conf.py and index.md, the README's introduction, the notebooks as
`make demo` executed them (artifacts/executed/tiny/, not run again), the report beside them
(artifacts/report/) and docs/. Any warning (a broken link, a page in no table of contents, a
missing page) fails the build.
"""

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("DETOX_ARTIFACTS_DIR") or REPO / "artifacts").resolve()
NOTEBOOKS = sorted(path.name for path in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
REPORT_PAGES = ("report.md", "beyond_ppo.md")


def missing_pieces() -> list[Path]:
    """The demo's outputs the book needs and does not find."""
    wanted = [ARTIFACTS / "executed" / "tiny" / name for name in NOTEBOOKS]
    wanted += [ARTIFACTS / "report" / name for name in REPORT_PAGES]
    return [path for path in wanted if not path.exists()]


def gather(source: Path) -> None:
    """Copy every page into `source`, a fresh folder."""
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(REPO / "book", source, ignore=shutil.ignore_patterns("build.py", "__*"))
    shutil.copy(REPO / "README.md", source / "_readme.md")  # included by index.md, not a page
    shutil.copytree(REPO / "docs", source / "docs")
    (source / "notebooks").mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ARTIFACTS / "executed" / "tiny" / name, source / "notebooks" / name)
    shutil.copytree(ARTIFACTS / "report", source / "report")


def main() -> int:
    missing = missing_pieces()
    if missing:
        print(f"error: the book is made of a demo run's outputs, and {missing[0]} is missing "
              f"({len(missing)} missing in all): run `make demo` first.", file=sys.stderr)
        return 2
    from sphinx.cmd.build import build_main

    source, output = ARTIFACTS / "book-source", ARTIFACTS / "book"
    gather(source)
    shutil.rmtree(output, ignore_errors=True)
    status = build_main(["-W", "--keep-going", "-n", "-q", "-E", "-b", "html",
                         "-d", str(ARTIFACTS / "book-doctrees"), str(source), str(output)])
    if status == 0:
        print(f"the book: {output / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
