# The commands the README names. Everything runs inside .venv (created on first use),
# because modern Debian/Ubuntu refuse global pip installs.
SHELL   := /bin/bash
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
# torch is installed first, on its own, so that a machine can choose its build
# (CI installs the CPU build: `make test TORCH="torch==2.13.0"` or pre-installs it).
TORCH   ?= torch>=2.2,<3
NB      ?= $(wildcard book/*.ipynb)
# Development layout: the corpora in ../shared/data beside the checkout. Readers elsewhere
# need nothing: the package downloads the corpora into ~/.cache/textbook_lm on first use.
ifeq ($(origin TEXTBOOK_LM_DATA), undefined)
  ifneq ($(wildcard ../shared/data),)
    export TEXTBOOK_LM_DATA := $(abspath ../shared/data)
  endif
endif

.PHONY: help setup book lab test unit nbval site execute stamp leaderboard clean

help:
	@echo "make book        build the static site into _build/html (from the notebooks' stored outputs)"
	@echo "make lab         open JupyterLab on book/"
	@echo "make test        unit tests + nbval over every notebook + warning-free site build"
	@echo "make execute     re-execute notebooks in place in a fresh kernel (NB=book/01_ngrams.ipynb for one)"
	@echo "make stamp       rewrite the shared setup cell at the top of every notebook"
	@echo "make leaderboard recompute every stored leaderboard entry"

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

book: setup
	$(VENV)/bin/jupyter-book build . --warningiserror --keep-going
	@echo "The book is in _build/html/index.html"

lab: setup
	$(VENV)/bin/jupyter lab book/

test: setup unit nbval site

unit: setup
	$(PY) -m pytest tests

nbval: setup
	$(PY) -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider book

site: setup
	$(VENV)/bin/jupyter-book build . --all --warningiserror --keep-going

execute: setup
	for nb in $(NB); do \
	  echo "executing $$nb"; \
	  t0=$$SECONDS; $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	  echo "$$nb ran in $$((SECONDS - t0)) s"; \
	done

stamp: setup
	$(PY) -m textbook_lm.book stamp

leaderboard: setup
	$(PY) -m textbook_lm.leaderboard reproduce

clean:
	rm -rf _build .pytest_cache
