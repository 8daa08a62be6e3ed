# hmmblog: two commands on a fresh clone
#   make site   set up .venv and render the Quarto site into _site/
#   make test   set up .venv (with test tools) and run the whole test suite, posts included
# Other targets: make bench (speed benchmarks), make lint, make posts (execute posts only).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# PyTorch's CPU build is installed first, pinned; a bare `torch` would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: site test posts bench lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

site: $(VENV)/.installed
	@command -v quarto >/dev/null 2>&1 || { \
	  echo "error: the Quarto CLI is not on PATH. Install it from https://quarto.org/docs/get-started/"; \
	  echo "       (or, with internet access: $(PY) -m pip install quarto-cli), then run 'make site' again."; \
	  exit 1; }
	QUARTO_PYTHON="$(CURDIR)/$(PY)" quarto render

test: $(VENV)/.installed
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest

posts: $(VENV)/.installed
	$(PY) -m pytest tests/test_posts.py

bench: $(VENV)/.installed
	for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

lint: $(VENV)/.installed
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf _site build .pytest_cache .ruff_cache
