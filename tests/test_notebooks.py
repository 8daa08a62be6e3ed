"""The downloadable notebooks (tools/notebooks.py, a Quarto post-render script): each post's
notebook holds exactly the code cells the post runner executes, in order, so the post tests prove
it runs top to bottom; it is valid nbformat 4.5, and its prose has no Quarto-only syntax left."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from postrunner import ROOT, cell_options, read_post

POSTS = sorted((ROOT / "posts").glob("*/index.qmd"))
IDS = [p.parent.name for p in POSTS]


def _load_tool():
    spec = importlib.util.spec_from_file_location("notebooks", ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


notebooks = _load_tool()


def source(cell: dict) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def cells(nb: dict, kind: str) -> list[str]:
    return [source(c) for c in nb["cells"] if c["cell_type"] == kind]


def build(post: Path) -> dict:
    return notebooks.notebook(post.read_text(encoding="utf-8"), post.parent.name)


def front_matter(post: Path) -> dict:
    match = re.match(r"---\r?\n(.*?)\r?\n---", post.read_text(encoding="utf-8"), re.DOTALL)
    return yaml.safe_load(match.group(1))


def test_there_are_posts():
    assert len(POSTS) >= 6


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_code_cells_are_the_ones_the_post_runner_executes(post: Path):
    executed = [c.source.strip() for c in read_post(post).cells
                if c.cell_type == "code" and cell_options(c.source).get("eval") != "false"]
    assert executed, f"{post.parent.name}: the post runner found no code cells"
    assert [s.strip() for s in cells(build(post), "code")] == executed


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_notebook_is_valid_nbformat(post: Path):
    nb = build(post)
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"]["language_info"]["name"] == "python"
    nbformat.validate(nb)
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids)
    # As written to disk and read back by Jupyter.
    nbformat.validate(nbformat.reads(json.dumps(nb), as_version=4))


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_prose_reads_without_quarto(post: Path):
    nb, meta = build(post), front_matter(post)
    title, provenance, *_ = nb["cells"]
    # The front matter as a heading and the description, as YAML itself reads them.
    assert source(title) == f"# {meta['title']}\n\n{meta['description']}"
    assert f"`posts/{post.parent.name}/index.qmd`" in source(provenance)
    assert "make test" in source(provenance)
    for text in cells(nb, "markdown"):
        assert "{python}" not in text, "an inline expression was left for Quarto"
        assert not text.startswith("---") and not re.search(r"(?m)^(title|date|categories):",
                                                             text), "raw front matter"
        assert text.strip() == text and text, "empty or untrimmed markdown cell"
    for code in cells(nb, "code"):
        assert not code.startswith("```") and not code.rstrip().endswith("```")


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_every_inline_expression_becomes_code(post: Path):
    qmd = post.read_text(encoding="utf-8")
    expressions = [e.strip() for e in notebooks.INLINE.findall(qmd)]
    prose = "\n".join(cells(build(post), "markdown"))
    for expr in expressions:
        assert f"`{expr}`" in prose


SYNTHETIC = '''---
title: "A \\"quoted\\" title: with a colon"
description: 'It''s short.'
date: 2026-01-01
---

Intro with `{python} n + 1` and ``{python} literal`` and plain `code`.

```{python}
#| label: setup
n = 41
```

```{python}
#| label: slow
#| eval: false
raise RuntimeError("never runs")
```
```{python}
#| echo: false
print(n)
```

````markdown
A Quarto cell shown as text, `{python} not_run`:
```{python}
shown_only = True
```
````

~~~
also `{python} text`
~~~

Closing with `{python}\tf"{n:.1f}"`.
'''


def test_synthetic_post():
    nb = notebooks.notebook(SYNTHETIC, "99-synthetic")
    nbformat.validate(nb)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds == ["markdown", "markdown", "markdown", "code", "code", "markdown"]
    title, provenance, intro, setup, shown, rest = map(source, nb["cells"])
    assert title == '# A "quoted" title: with a colon\n\nIt\'s short.'
    assert provenance == (
        "Generated from `posts/99-synthetic/index.qmd` of the hmmblog repository. Run it from "
        "that folder in the repository's environment (`make test` sets up `.venv`).")
    assert intro == "Intro with `n + 1` and ``{python} literal`` and plain `code`."
    # Option lines stay (as comments) so the cell labels survive; eval: false cells go.
    assert setup == "#| label: setup\nn = 41"
    assert shown == "#| echo: false\nprint(n)"
    assert "never runs" not in json.dumps(nb)
    # Fenced blocks shown as text stay markdown, untouched; the last expression is rewritten.
    assert "```{python}\nshown_only = True\n```" in rest
    assert "`{python} not_run`" in rest and "`{python} text`" in rest
    assert rest.endswith('Closing with `f"{n:.1f}"`.')
    assert "date:" not in json.dumps(nb)


def test_front_matter_block_scalars_and_plain_values():
    nb = notebooks.notebook("---\ntitle: Plain title # a comment\ndescription: |-\n  Line one\n"
                            "  line two\nimage: x.png\n---\n\nBody.\n", "x")
    assert source(nb["cells"][0]) == "# Plain title\n\nLine one\nline two"
    no_front_matter = notebooks.notebook("Just prose.\n", "x")
    assert [source(c) for c in no_front_matter["cells"]][1:] == ["Just prose."]


def test_synthetic_matches_the_post_runner(tmp_path):
    qmd = SYNTHETIC.split("````markdown")[0]  # what jupytext and this tool both read as cells
    (tmp_path / "index.qmd").write_text(qmd, encoding="utf-8")
    executed = [c.source.strip() for c in read_post(tmp_path / "index.qmd").cells
                if c.cell_type == "code" and cell_options(c.source).get("eval") != "false"]
    assert cells(notebooks.notebook(qmd, "x"), "code") == executed


def test_main_writes_one_notebook_per_post(tmp_path, monkeypatch):
    monkeypatch.delenv("QUARTO_PROJECT_OUTPUT_DIR", raising=False)
    assert notebooks.main([str(tmp_path)]) == 0
    written = sorted(tmp_path.glob("posts/*/index.ipynb"))
    assert [p.parent.name for p in written] == IDS
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n") and text.startswith('{\n "cells": [\n')
        post = ROOT / "posts" / path.parent.name / "index.qmd"
        assert json.loads(text) == build(post)
        nbformat.validate(nbformat.read(path, as_version=4))


def test_post_render_script_runs_on_the_standard_library_alone(tmp_path):
    """As Quarto runs it: from the project root, output dir in the environment, no arguments;
    `-S` leaves out site-packages, so the script cannot lean on anything installed."""
    env = {**os.environ, "QUARTO_PROJECT_OUTPUT_DIR": str(tmp_path / "_site"),
           "QUARTO_PROJECT_RENDER_ALL": "1"}
    result = subprocess.run([sys.executable, "-S", "tools/notebooks.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.parent.name for p in (tmp_path / "_site").glob("posts/*/index.ipynb")) == IDS
    assert f"wrote {len(POSTS)} notebooks" in result.stdout
