# hmmblog: two commands on a fresh clone
#   make site   render the Quarto site into _site/ from the committed freeze (executes nothing);
#               SITE_URL=... REPO_URL=... set where it is published
#   make test   set up .venv (with test tools) and run the whole test suite, posts included
# Authors: make render POST=<slug> (execute one post, refresh its freeze), make preview,
# make post SLUG=05-my-topic TITLE="..." (start a new post). Also: make bench, make lint, make posts.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# PyTorch's CPU build is installed first, pinned; a bare `torch` would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

QUARTO ?= quarto
QUARTO_PY := QUARTO_PYTHON="$(CURDIR)/$(PY)"

.PHONY: site render preview post test posts bench lint clean quarto-check

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

quarto-check:
	@command -v $(QUARTO) >/dev/null 2>&1 || { \
	  echo "error: the Quarto CLI is not on PATH. Install it from https://quarto.org/docs/get-started/"; \
	  echo "       (or, with internet access: pip install quarto-cli), then run this again."; \
	  exit 1; }

# Every post is frozen (_freeze/), so the site renders without Python packages or a kernel.
# SITE_URL and REPO_URL (both, or neither) say where the site and its repository are published;
# without them _quarto-local.yml's defaults are used (see README, Publishing).
site: quarto-check
	@python3 tests/freeze_status.py || { \
	  echo "error: the posts above changed since they were executed; re-render them first."; exit 1; }
ifneq ($(SITE_URL)$(REPO_URL),)
	python3 tools/site_urls.py "$(SITE_URL)" "$(REPO_URL)"
	QUARTO_PROFILE=publish $(QUARTO) render
else
	$(QUARTO) render
endif

# Execute one post (rendering a single file always executes it) and rewrite its freeze;
# run after editing a post or after a package change that alters its output, then commit _freeze/.
render: quarto-check $(VENV)/.installed
	@test -n "$(POST)" -a -f "posts/$(POST)/index.qmd" || { \
	  echo "usage: make render POST=<slug>, one of: $$(ls posts | grep -v '^_' | tr '\n' ' ')"; exit 1; }
	$(QUARTO_PY) $(QUARTO) render posts/$(POST)/index.qmd
	$(QUARTO) render

preview: quarto-check $(VENV)/.installed
	$(QUARTO_PY) $(QUARTO) preview --no-browser

# Start a new post from the template: make post SLUG=05-real-appliances TITLE="Real appliances"
post:
	@test -n "$(SLUG)" -a -n "$(TITLE)" || { echo 'usage: make post SLUG=05-my-topic TITLE="My title"'; exit 1; }
	@test ! -e posts/$(SLUG) || { echo "posts/$(SLUG) exists already"; exit 1; }
	mkdir -p posts/$(SLUG)
	sed -e 's/{{TITLE}}/$(TITLE)/' -e "s/{{DATE}}/$$(date +%F)/" templates/post.qmd > posts/$(SLUG)/index.qmd
	@echo "created posts/$(SLUG)/index.qmd; execute it with: make render POST=$(SLUG)"

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
