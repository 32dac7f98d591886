"""Sphinx configuration of the lab as a book (`make book`, see build.py): the executed notebooks
of `make demo` rendered as they ran (myst-nb, never executed again), the report, the course
guide and the design notes, with sphinx-book-theme. Everything it needs is installed: nothing
is fetched at build time."""

project = "Detoxifying FLAN-T5 summaries with PPO and LoRA"
author = "the lab's authors"
copyright = "the lab's authors, Apache-2.0; DialogSum CC BY-NC-SA 4.0"

extensions = ["myst_nb"]
nb_execution_mode = "off"  # the notebooks as make demo executed them, outputs included
nb_merge_streams = True  # a cell's printed lines read as one block
myst_heading_anchors = 3  # links to a section of another page ([..](page.md#a-heading))
exclude_patterns = ["_*", "**.ipynb_checkpoints"]
# Progress bars are widgets in the executed notebooks; their scripts come from a CDN, so the
# book shows their text instead and reads offline.
nb_ipywidgets_js = {}

html_theme = "sphinx_book_theme"
html_title = "Detoxifying FLAN-T5 with PPO and LoRA"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,  # the downloads are of the executed copies, not the lab's
}
html_show_sourcelink = False
