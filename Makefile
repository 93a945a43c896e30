# target-spotify-conversions: developer tasks.
#
# Quick start on a machine with Python 3.11, pip, git and make:
#   make run     # build .venv, install the Meltano plugins, dry-run the sample into output/
#   make test    # the whole test suite
#
# Meltano shares .venv with the project (`pip check` finds no conflict between meltano 4.4.x
# and singer-sdk 0.54.9). Meltano installs its plugins in their own venvs under .meltano/
# (tap-jsonl 0.3.1 needs singer-sdk 0.53, so it could not share .venv anyway).
# Stamp files make a second `make run` fast; editing pyproject.toml or meltano.yml re-installs.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MELTANO := $(VENV)/bin/meltano
MELTANO_SPEC := meltano~=4.4.1

VENV_STAMP := $(VENV)/.stamp-install
MELTANO_STAMP := .meltano/.stamp-install

OUTPUT := output
RUN_LOG := $(OUTPUT)/run.log
# Lines of output/run.log shown after `make run`: an extended regular expression matched
# against the log's lines (Meltano's plain format: the plugins' messages as they are). When
# it is empty or matches nothing, the last RUN_TAIL lines of the log are shown instead.
SUMMARY_PATTERN ?= ^summary:
RUN_TAIL ?= 30
# The dev demo reads the whole sample on every run. (tap-jsonl 0.3.1 does so anyway: it
# stores a bookmark, the file's modification time, but never reads it back.)
RUN_FLAGS ?= --full-refresh
PYTEST_ARGS ?= -q

.PHONY: help install run test test-fast test-versions test-compiled lint bench readme clean distclean

help:
	@echo "make run        build the environment, dry-run sample/events.jsonl through Meltano into $(OUTPUT)/"
	@echo "make test       run the test suite"
	@echo "make test-fast  the tests that start no process (under a minute), for the edit loop"
	@echo "make test-versions  the fast tier on Python 3.10 to 3.13 (nox; interpreters from PATH or pyenv)"
	@echo "make test-compiled  the fast tier against a plain install, compiled by mypyc (nox)"
	@echo "make lint       ruff check and mypy"
	@echo "make bench      run benchmarks/run.py --scenarios (BENCH_ARGS=... for the others)"
	@echo "make readme     refresh what is written from --about: docs/settings.md, the plugin definition, meltano.yml's settings"
	@echo "make install    only build .venv and install the Meltano plugins"
	@echo "make clean      remove $(OUTPUT)/ and caches; make distclean also removes .venv and .meltano"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]' '$(MELTANO_SPEC)'
	$(PY) -m pip check
	touch $@


# --clean: the target is installed from this directory (`pip_url: -e .`), whose pip_url does
# not change when pyproject.toml does, so Meltano would otherwise keep the old dependencies.
# Its plugin venv runs the same Python and the same source files (an editable install).
$(MELTANO_STAMP): meltano.yml pyproject.toml $(VENV_STAMP)
	$(MELTANO) install --clean
	touch $@

install: $(MELTANO_STAMP)

run: $(MELTANO_STAMP)
	mkdir -p $(OUTPUT)
	rm -f $(OUTPUT)/dry-run.jsonl $(OUTPUT)/rejects.jsonl $(RUN_LOG)
	@echo "meltano --environment=dev run $(RUN_FLAGS) tap-jsonl target-spotify-conversions (log: $(RUN_LOG))"
	@if ! $(MELTANO) --log-format=plain --environment=dev run $(RUN_FLAGS) \
	    tap-jsonl target-spotify-conversions > $(RUN_LOG) 2>&1; then \
	  echo "meltano run failed; the end of $(RUN_LOG):"; tail -n 40 $(RUN_LOG); exit 1; \
	fi
	@echo "---- run summary ----"
	@if [ -z '$(SUMMARY_PATTERN)' ] || ! grep -E -- '$(SUMMARY_PATTERN)' $(RUN_LOG); then \
	  tail -n $(RUN_TAIL) $(RUN_LOG); fi
	@echo "---- files in $(OUTPUT)/ ----"
	@ls -l $(OUTPUT)/

test: $(MELTANO_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast:
	$(PY) -m pytest $(PYTEST_ARGS) -m "not slow"

test-versions: $(VENV_STAMP)
	$(VENV)/bin/nox -s fast-3.10 fast-3.12 fast-3.13

test-compiled: $(VENV_STAMP)
	$(VENV)/bin/nox -s compiled

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy target_spotify_conversions

# The target against a realistic API (0, 50, 250 ms answers; a 10,000 events/s limit).
BENCH_ARGS ?= --scenarios
bench:
	$(PY) benchmarks/run.py $(BENCH_ARGS)

readme: $(VENV_STAMP)
	$(PY) scripts/update_readme.py
	$(PY) scripts/plugin_definition.py

clean:
	rm -rf $(OUTPUT) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	rm -f target_spotify_conversions/*.so
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -not -path './.meltano/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) .meltano *.egg-info
