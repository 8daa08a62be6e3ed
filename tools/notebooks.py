"""Each post as a Jupyter notebook readers can download: a Quarto post-render script.

`notebook(qmd, slug)` turns a post's Quarto source into an nbformat-4 notebook: the title and
description become a first markdown cell, every executed ```` ```{python} ```` block a code cell
(its `#|` option lines kept as comments; `eval: false` blocks left out), the prose between them
markdown cells, with each inline `` `{python} expr` `` shown as the code `` `expr` ``.

Quarto runs this after a render (`project: post-render:` in `_quarto.yml`) from the project root
with `QUARTO_PROJECT_OUTPUT_DIR` set; it writes `<outdir>/posts/<slug>/index.ipynb` for every
post. By hand: `python3 tools/notebooks.py [OUTDIR]` (default `_site`). Standard library only:
the site renders with whatever `python3` Quarto finds, without the package or Jupyter.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
CODE_START = re.compile(r"^(`{3,})[ \t]*\{python\b[^}]*\}[ \t]*$")
# Any other fenced block (pandoc: a backtick fence's info string has no backtick).
OTHER_FENCE = re.compile(r"^[ \t]{0,3}(?:(`{3,})[^`]*|(~{3,}).*)$")
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
# Quarto's own pattern for an inline expression: not after a backtick, one space or tab.
INLINE = re.compile(r"(?<!`)`\{python\}[ \t]([^`]+)`")

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
PROVENANCE = ("Generated from `posts/{slug}/index.qmd` of the hmmblog repository. Run it from "
              "that folder in the repository's environment (`make test` sets up `.venv`).")


def _yaml_value(front_matter: str, key: str) -> str | None:
    """The string value of a top-level `key:` of the front matter: plain, quoted, or a block
    scalar (`>-`, `|` ...) with its indented lines; None if the key is absent."""
    lines = front_matter.splitlines()
    for i, line in enumerate(lines):
        match = re.match(rf"^{re.escape(key)}:(?:[ \t]+(.*?))?[ \t]*$", line)
        if not match:
            continue
        first = match.group(1) or ""
        more = []
        for following in lines[i + 1:]:
            if following.strip() and not following[:1].isspace():
                break
            more.append(following.strip())
        while more and not more[-1]:
            more.pop()
        if re.fullmatch(r"[|>][+-]?\d?", first):  # block scalar: literal | or folded >
            return ("\n" if first[0] == "|" else " ").join(more).strip()
        value = " ".join([first, *more]).strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:  # YAML's double-quoted escapes are, for titles, JSON's
                return json.loads(value)
            except ValueError:
                return value[1:-1]
        if len(value) >= 2 and value[0] == value[-1] == "'":
            return value[1:-1].replace("''", "'")
        return re.sub(r"\s+#.*$", "", value)
    return None


def _options(code: list[str]) -> dict[str, str]:
    """The `#| key: value` options at the top of a code block (quotes stripped)."""
    options = {}
    for line in code:
        match = OPTION.match(line)
        if not match:
            break
        options[match.group(1)] = match.group(2).strip("'\"")
    return options


def _trim(lines: list[str]) -> list[str]:
    """The lines without blank lines at either end."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _cell(kind: str, text: str, number: int) -> dict:
    cell = {"cell_type": kind, "id": f"cell-{number:03d}", "metadata": {},
            "source": text.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _fence(line: str) -> str | None:
    """The fence (```` ``` ```` or `~~~`, any length) that `line` opens, if it opens one."""
    match = OTHER_FENCE.match(line)
    return (match.group(1) or match.group(2)) if match else None


def _closes(line: str, fence: str) -> bool:
    """Whether `line` closes a block opened by `fence`: as many of its character or more."""
    closing = rf"^[ \t]{{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$"
    return re.match(closing, line) is not None


def _split(body: str) -> list[tuple[str, list[str]]]:
    """The body as ("markdown" | "code", lines) chunks in document order; `{python}` blocks
    are code, everything else (other fenced blocks included) is markdown."""
    chunks: list[tuple[str, list[str]]] = []
    prose: list[str] = []
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        start = CODE_START.match(line)
        if start:
            close = re.compile(rf"^{start.group(1)}`*[ \t]*$")
            end = i + 1
            while end < len(lines) and not close.match(lines[end]):
                end += 1
            chunks += [("markdown", prose), ("code", lines[i + 1:end])]
            prose = []
            i = end + 1
            continue
        fence = _fence(line)
        if fence:  # a fenced block shown as text: copy it whole, nothing inside is a cell
            end = i + 1
            while end < len(lines) and not _closes(lines[end], fence):
                end += 1
            prose += lines[i:end + 1]
            i = end + 1
            continue
        prose.append(line)
        i += 1
    chunks.append(("markdown", prose))
    return chunks


def _rewrite_inline(markdown: str) -> str:
    """Each `` `{python} expr` `` outside fenced blocks as the code `` `expr` ``."""
    out, fence = [], None
    for line in markdown.splitlines(keepends=True):
        if fence is None and _fence(line):
            fence = _fence(line)
        elif fence is not None and _closes(line, fence):
            fence = None
        elif fence is None:
            line = INLINE.sub(lambda m: f"`{m.group(1).strip()}`", line)
        out.append(line)
    return "".join(out)


def notebook(qmd: str, slug: str) -> dict:
    """The Quarto source `qmd` of post `posts/<slug>/index.qmd` as an nbformat-4.5 notebook."""
    match = FRONT_MATTER.match(qmd)
    header, body = (match.group(1), qmd[match.end():]) if match else ("", qmd)
    title = _yaml_value(header, "title")
    description = _yaml_value(header, "description")
    intro = "\n\n".join(part for part in (f"# {title}" if title else "", description) if part)

    texts: list[tuple[str, str]] = []
    if intro:
        texts.append(("markdown", intro))
    texts.append(("markdown", PROVENANCE.format(slug=slug)))
    for kind, lines in _split(body):
        lines = _trim(lines)
        if kind == "code":
            if str(_options(lines).get("eval", "")).lower() == "false":
                continue
            texts.append(("code", "\n".join(lines)))
        elif lines:
            texts.append(("markdown", _rewrite_inline("\n".join(lines))))
    return {
        "cells": [_cell(kind, text, n) for n, (kind, text) in enumerate(texts)],
        "metadata": {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _is_draft(qmd: str) -> bool:
    match = FRONT_MATTER.match(qmd)
    return bool(match) and (_yaml_value(match.group(1), "draft") or "").lower() == "true"


def write_notebooks(out_dir: Path, root: Path = ROOT) -> list[Path]:
    """Write `<out_dir>/posts/<slug>/index.ipynb` for every post (drafts, which Quarto leaves
    out of the site, excepted); return the files written."""
    written = []
    for post in sorted(root.glob("posts/*/index.qmd")):
        qmd = post.read_text(encoding="utf-8")
        if _is_draft(qmd):
            continue
        slug = post.parent.name
        target = out_dir / "posts" / slug / "index.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(notebook(qmd, slug), indent=1, ensure_ascii=False, sort_keys=True)
        target.write_text(text + "\n", encoding="utf-8")
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) > 1 or (args and args[0] in ("-h", "--help")):
        print("usage: python3 tools/notebooks.py [OUTDIR]   (default: $QUARTO_PROJECT_OUTPUT_DIR,"
              " else _site)", file=sys.stderr)
        return 2
    if args:
        out_dir = Path(args[0])
    elif os.environ.get("QUARTO_PROJECT_OUTPUT_DIR"):
        out_dir = Path(os.environ["QUARTO_PROJECT_OUTPUT_DIR"])
    else:
        out_dir = ROOT / "_site"
    written = write_notebooks(out_dir)
    if os.environ.get("QUARTO_PROJECT_SCRIPT_QUIET") != "1":
        print(f"notebooks.py: wrote {len(written)} notebooks to {out_dir}/posts/*/index.ipynb")
    return 0


if __name__ == "__main__":
    sys.exit(main())
