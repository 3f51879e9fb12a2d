# The commands the README names. Everything runs inside .venv (created on first use),
# because modern Debian/Ubuntu refuse global pip installs.
SHELL   := /bin/bash
VENV    ?= .venv
PY      := $(VENV)/bin/python
# torch is installed first, on its own, so that a machine can choose its build (pre-install it
# in .venv, or e.g. `make test TORCH="torch==2.13.0"`). The default is pyproject.toml's range,
# which pip resolves to its newest release; TORCH_OLDEST is the range's lower bound, on which
# `make unit-oldest` runs the unit tests and `make runtime-check` the runtime-only check.
# (tests/test_project.py keeps both equal to pyproject.toml.)
TORCH        ?= torch>=2.13,<2.16
TORCH_OLDEST ?= torch==2.13.0
VENV_OLDEST  ?= $(VENV)/torch-oldest
RUNTIME_NB   ?= book/01_ngrams.ipynb
NB      ?= $(wildcard book/*.ipynb)
# Development layout: the corpora in ../shared/data beside the checkout. Readers elsewhere
# need nothing: the package downloads the corpora into ~/.cache/textbook_lm on first use.
ifeq ($(origin TEXTBOOK_LM_DATA), undefined)
  ifneq ($(wildcard ../shared/data),)
    export TEXTBOOK_LM_DATA := $(abspath ../shared/data)
  endif
endif

.PHONY: help setup setup-book book serve lab test unit unit-oldest runtime-check nbval site browser-test execute stamp appendices \
        leaderboard clean

help:
	@echo "make book        build the static site into _build/html (from the notebooks' stored outputs)"
	@echo "make serve       serve the built site on http://127.0.0.1:8000 (search shows excerpts)"
	@echo "make lab         open JupyterLab on book/"
	@echo "make test        unit tests + runtime-only check + nbval over every notebook + warning-free site build"
	@echo "                 + the site in a real browser, offline (browser-test)"
	@echo "make unit-oldest unit tests on the oldest torch the range allows (in $(VENV_OLDEST))"
	@echo "make execute     re-execute notebooks in place in a fresh kernel (NB=book/01_ngrams.ipynb for one)"
	@echo "make stamp       rewrite the shared setup cell at the top of every notebook"
	@echo "make appendices  regenerate Appendices B (glossary) and C (fact checks) from book/*.yml"
	@echo "make leaderboard recompute every stored leaderboard entry (writes the package's copy)"

# One recipe, two installs: `make book` and `make lab` need the `book` extra, everything else
# (`make test` builds the site too) the `book` and `test` extras.
define install
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[$(1)]"
	touch $@
endef
BOOK_EXTRAS := book
TEST_EXTRAS := book,test

$(VENV)/.installed-book: pyproject.toml
	$(call install,$(BOOK_EXTRAS))

$(VENV)/.installed: pyproject.toml
	$(call install,$(TEST_EXTRAS))

setup-book: $(VENV)/.installed-book

setup: $(VENV)/.installed

book: setup-book
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "The book is in _build/html/index.html"

# The site as a web server serves it. Opened from disk (file://) the pages, math and search
# work, but the browser refuses to fetch the excerpts shown under each search hit.
PORT ?= 8000
serve:
	@test -f _build/html/index.html || $(MAKE) book
	@echo "http://127.0.0.1:$(PORT)/ (Ctrl-C stops it)"
	$(VENV)/bin/python -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

lab: setup-book
	$(VENV)/bin/jupyter lab book/

test: setup unit runtime-check nbval site browser-test

unit: setup
	$(PY) -m pytest tests

# The unit tests again, on the oldest torch the range allows, in a venv of their own.
unit-oldest:
	test -x $(VENV_OLDEST)/bin/python || python3 -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install -q "$(TORCH_OLDEST)"
	$(VENV_OLDEST)/bin/python -m pip install -q -e ".[$(TEST_EXTRAS)]"
	$(VENV_OLDEST)/bin/python -c "import torch; print('unit tests on torch', torch.__version__)"
	$(VENV_OLDEST)/bin/python -m pytest tests

# A fresh venv with only the runtime dependencies (torch, then `pip install .`, no extras) imports
# every module and runs the first cells of a chapter (.ci/runtime_check.py). The package is built
# from a clean copy of its sources: a stale build/ or *.egg-info of the checkout would put files
# into the wheel that the package-data patterns miss. The venv is thrown away after (so no .pyc).
runtime-check:
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && t0=$$SECONDS && \
	mkdir "$$tmp/src" && cp -r pyproject.toml README.md textbook_lm "$$tmp/src/" && \
	python3 -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install -q --no-compile "$(TORCH_OLDEST)" "$$tmp/src" && \
	echo "runtime-only venv installed in $$((SECONDS - t0)) s" && \
	"$$tmp/venv/bin/python" .ci/runtime_check.py --source . $(RUNTIME_NB)

nbval: setup
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider book

site: setup
	$(VENV)/bin/jupyter-book build . --all --warningiserror --keep-going

# The built site in headless Chromium with the network cut off (tests/test_site.py); screenshots
# of every page at 1280 and 390 px go to _build/screenshots. Needs Debian's chromium.
browser-test: setup
	TEXTBOOK_LM_SITE=_build/html $(PY) -m pytest -q -p no:cacheprovider tests/test_site.py

execute: setup
	for nb in $(NB); do \
	  echo "executing $$nb"; \
	  t0=$$SECONDS; $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	  echo "$$nb ran in $$((SECONDS - t0)) s"; \
	done

stamp: setup
	$(PY) -m textbook_lm.book stamp

appendices: setup-book
	$(PY) -m textbook_lm.book appendices

leaderboard: setup
	$(PY) -m textbook_lm.experiments.leaderboard reproduce --into-package

clean:
	rm -rf _build .pytest_cache

print-%:
	@echo '$($*)'
