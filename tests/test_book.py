"""`make book`: the lab as a web book, built offline from a demo run's executed notebooks."""

import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def book(monkeypatch, tmp_path):
    """book/build.py as a module, reading and writing the artifacts folder `tmp_path`."""
    spec = importlib.util.spec_from_file_location("book_build", REPO / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ARTIFACTS", tmp_path)
    return module


def test_without_a_demo_run_the_book_says_to_run_make_demo_first(book, tmp_path, capsys):
    assert book.main() == 2
    assert "run `make demo` first" in capsys.readouterr().err
    assert not (tmp_path / "book").exists()


def test_the_books_table_of_contents_lists_every_notebook(book):
    listed = re.findall(r"^notebooks/(\S+)$", (REPO / "book" / "index.md").read_text(),
                        flags=re.MULTILINE)
    assert listed == [name.removesuffix(".ipynb") for name in book.NOTEBOOKS]


@pytest.mark.long
def test_the_book_builds_offline_from_the_demo_with_every_notebook_and_its_plots(
        book, tmp_path, monkeypatch):
    environment = dict(os.environ, DETOX_ARTIFACTS_DIR=str(tmp_path))  # 12 PPO steps (conftest)
    subprocess.run([sys.executable, "-m", "detox_course", "demo"], env=environment, check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL)

    def refuse(*args, **kwargs):
        raise OSError("the book must build without a network")
    for name in ("create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert book.main() == 0

    site = tmp_path / "book"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "A course lab you can run" in index  # the README's introduction
    for name in book.NOTEBOOKS:
        assert f'href="notebooks/{name.removesuffix(".ipynb")}.html"' in index, name
    page = site / "notebooks" / "02_reward_model.html"
    plots = re.findall(r'<img[^>]*src="([^"]+\.png)"', page.read_text(encoding="utf-8"))
    assert plots and all((page.parent / plot).is_file() for plot in plots)  # the bar chart
    assert (site / "report" / "report.html").exists() and (site / "docs" / "course.html").exists()
