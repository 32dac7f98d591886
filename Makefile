# Two commands for a fresh machine:  make demo  (run the lab, offline tiny profile)  and  make test.
# The first use creates .venv and installs the pinned requirements into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo run test test-long lint clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m detox_helpers demo

run: install
	$(PY) -m detox_helpers run

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

# the long tests (learning on a second seed, RLOO's learning and its Try it items, about 5
# minutes); CI runs them after make test
test-long: install
	$(PY) -m pytest -m long

clean:
	rm -rf artifacts
