# Two commands for a fresh machine:  make demo  (run the lab, offline tiny profile)  and  make test.
# The first use creates .venv and installs the pinned requirements into it.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: install demo run test test-long lint clean student grade book mutate

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m detox_course demo

run: install
	$(PY) -m detox_course run

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest

# the long tests (learning on a second seed, RLOO's learning and its Try it items, a class
# graded by nbgrader, the wheel installed alone, notebook 07 on two seeds; about 35 minutes);
# CI runs them after make test
test-long: install
	$(PY) -m pytest -m long

# the course kit (the detox_course package, docs/course.md), on nbgrader: student copies of
# the notebooks in student/; a class graded in one command (a folder of learners' folders;
# TIMEOUT: seconds one cell may run), its grades in artifacts/grades/grades.csv and feedback
# pages beside it; or one learner's own notebook
# (make grade NOTEBOOK=student/02_reward_model.ipynb); the lab as a web book in artifacts/book/
# from the executed notebooks of make demo
TIMEOUT ?= 300
student: install
	$(PY) -m detox_course student

grade: install
	@test -n "$(SUBMISSIONS)$(NOTEBOOK)" || { echo "usage: make grade SUBMISSIONS=<folder of \
	learners' folders> [TIMEOUT=<seconds a cell may run>], or make grade NOTEBOOK=<path>"; exit 2; }
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m detox_course grade \
		"$(or $(SUBMISSIONS),$(NOTEBOOK))" --timeout $(TIMEOUT)

book: install
	$(PY) book/build.py

# mutation testing (docs/tests.md, [tool.mutmut] in pyproject.toml): mutants of the lab's
# arithmetic and words against the fast tests that reach them (23 minutes on an idle 2-core
# machine; one module: make mutate MUTANTS='detox_helpers.words.*'); prints each mutant no
# test kills, with its change (mutmut's log: artifacts/mutate.log)
MUTANTS := 'detox_helpers.stats.*' 'detox_helpers.evaluation.*' 'detox_helpers.reward.*' \
	'detox_helpers.ppo.*' 'detox_helpers.logprobs.*' 'detox_helpers.generation.x_trim__*' \
	'detox_helpers.generation.x_bucketed__*' 'detox_helpers.compare.*' 'detox_helpers.verdicts.*' \
	'detox_helpers.words.*'
mutate: install
	rm -rf mutants && mkdir -p artifacts
	$(VENV)/bin/mutmut run $(MUTANTS) > artifacts/mutate.log 2>&1 || { tail -c 3000 artifacts/mutate.log; exit 1; }
	@$(VENV)/bin/mutmut results | grep -v "not checked" > artifacts/mutate-results.txt || true
	@grep -v "no tests" artifacts/mutate-results.txt | while IFS=: read -r name status; do \
		echo "$$name:$$status"; $(VENV)/bin/mutmut show $$name | grep '^[-+][^-+]'; done
	@echo "functions no fast test reaches (mutants each; docs/tests.md says which tests do):"
	@grep "no tests" artifacts/mutate-results.txt | sed 's/__mutmut_.*//' | sort | uniq -c

clean:
	rm -rf artifacts
