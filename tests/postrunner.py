"""Execute a Quarto post (`.qmd`) top to bottom in a fresh Jupyter kernel, the way `quarto render`
does, so the test suite can prove every post runs without the Quarto CLI.

What Quarto does, and so what this does:

* The `.qmd` becomes a notebook of markdown and ```` ```{python} ```` code cells (jupytext's
  R Markdown reader), executed in a new `python3` kernel whose working directory is the post's
  folder.
* Cells run in document order. Each inline `` `{python} expr` `` is evaluated *where it stands*:
  after the code cells above it and before the ones below, as a kernel `user_expressions`
  request (Quarto's `cell_execute_inline`). Its text is what Quarto would print: the
  `text/markdown` of the value if it has one, else its `text/plain` (its repr), with the quotes
  of a string stripped. A forward reference therefore fails here as it fails in Quarto.
* Cell options: `eval: false` skips a cell; `error: true` lets it raise; `output: false` and
  `include: false` run it but show nothing (no figure or printed text is kept from it); `echo`
  only affects what is shown of the code.

The executed notebook, every shown figure (PNG, named by the cell's `#| label:`), the inline
values and the run time go to `build/posts/<slug>/`, so a person can look at them.

    python tests/postrunner.py posts/01-rain-sun-hmm/index.qmd [more.qmd ...]
"""

from __future__ import annotations

import base64
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "posts"
# Quarto's own pattern (share/jupyter/notebook.py): not after a backtick, one space or tab.
INLINE = re.compile(r"(?:^|[^`])`\{python\}[ \t]([^`]+)`", re.MULTILINE)
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")
# Reprs a reader should never see in prose: numpy scalars, tensors, arrays.
MACHINE_OUTPUT = re.compile(r"\b(?:np\.\w+\(|numpy\.\w+\(|tensor\(|array\()")


# Run in the kernel before the post: every figure drawn records the size of its smallest text as a
# phone shows it (hmmblog.plotting.smallest_text_px), so a post can be held to legible figures.
WATCH_FIGURES = """
import matplotlib.figure as _figure
from hmmblog.plotting import smallest_text_px as _smallest_text_px
_figure_text_px = []
_draw_figure = _figure.Figure.draw
def _draw_and_measure(self, renderer):
    _draw_figure(self, renderer)
    _figure_text_px.append(_smallest_text_px(self))
_figure.Figure.draw = _draw_and_measure
"""
# The smallest figure text drawn since the last call (inf when none), and forget it.
SMALLEST_TEXT = "(float(min(_figure_text_px, default='inf')), _figure_text_px.clear())[0]"


class PostExecutionError(RuntimeError):
    """A cell or an inline expression of a post raised; the message names both and has the
    kernel's traceback."""


@dataclass
class PostRun:
    post: Path
    out_dir: Path
    seconds: float
    figures: list[Path] = field(default_factory=list)
    inline: dict[str, str] = field(default_factory=dict)
    text_px: dict[str, float] = field(default_factory=dict)  # smallest figure text per shown cell
    printed: list[str] = field(default_factory=list)  # "label: stream: text" a reader would see
    unlabelled: list[str] = field(default_factory=list)  # figure cells without fig-cap / fig-alt


def cell_options(source: str) -> dict[str, str]:
    """The `#| key: value` options at the top of a code cell."""
    options = {}
    for line in source.splitlines():
        match = OPTION.match(line)
        if not match:
            break
        options[match.group(1)] = match.group(2).strip("'\"")
    return options


def inline_expressions(markdown: str) -> list[str]:
    """The `` `{python} expr` `` of one markdown cell, in reading order."""
    return [m.group(1) for m in INLINE.finditer(markdown)]


def as_quarto_text(data: dict[str, str]) -> str:
    """What Quarto writes into the page for one inline value's display data
    (`resolveUserExpressions`: markdown first, else plain text with a string's quotes stripped)."""
    if "text/markdown" in data:
        return data["text/markdown"]
    text = data.get("text/plain", "")
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def read_post(path: Path) -> nbformat.NotebookNode:
    """The post as a notebook of python code cells and markdown cells."""
    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="Rmd")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def _describe(nb: nbformat.NotebookNode, index: int) -> str:
    cell = nb.cells[index]
    label = cell_options(cell.source).get("label")
    first = next((ln for ln in cell.source.splitlines() if not ln.startswith("#|")), "")
    code_number = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    return f"code cell {code_number}" + (f" ({label})" if label else "") + f", starting {first!r}"


def _shows_output(options: dict[str, str]) -> bool:
    return options.get("output", "true") != "false" and options.get("include", "true") != "false"


def _evaluate_inline(client: NotebookClient, expressions: list[str], name: object
                     ) -> dict[str, str]:
    """Evaluate one markdown cell's expressions in the kernel, as Quarto does."""
    msg_id = client.kc.execute("", user_expressions={str(i): e for i, e in enumerate(expressions)})
    content = client.wait_for_reply(msg_id)["content"]
    values = {}
    for i, expr in enumerate(expressions):
        result = content.get("user_expressions", {}).get(str(i), content)
        if result.get("status") != "ok":
            trace = "\n".join(result.get("traceback", []))
            raise PostExecutionError(
                f"{name}: inline expression `{{python}} {expr.strip()}` raised "
                f"{result.get('ename')}: {result.get('evalue')}\n{trace}")
        values[expr.strip()] = as_quarto_text(result["data"])
    return values


def run_post(path: Path | str, out_root: Path = BUILD, timeout: int = 900) -> PostRun:
    """Execute the post at `path` in a fresh kernel, cells and inline expressions in document
    order; raise `PostExecutionError` naming the post and the failing cell or expression."""
    path = Path(path).resolve()
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    out_dir = out_root / path.parent.name
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = read_post(path)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    inline: dict[str, str] = {}
    text_px: dict[str, float] = {}
    start = time.perf_counter()
    try:
        with client.setup_kernel():
            client.wait_for_reply(client.kc.execute(WATCH_FIGURES))
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "markdown":
                    expressions = inline_expressions(cell.source)
                    if expressions:
                        inline.update(_evaluate_inline(client, expressions, name))
                    continue
                if cell.cell_type != "code":
                    continue
                options = cell_options(cell.source)
                if options.get("eval") == "false":
                    continue
                if options.get("error") == "true":
                    cell.metadata.setdefault("tags", []).append("raises-exception")
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as err:
                    raise PostExecutionError(f"{name}: {_describe(nb, index)} raised:\n{err}"
                                             ) from None
                smallest = float(_evaluate_inline(client, [SMALLEST_TEXT], name)[SMALLEST_TEXT])
                if _shows_output(options) and smallest < float("inf"):
                    text_px[options.get("label", f"cell{index:02d}")] = smallest
    finally:
        nbformat.write(nb, out_dir / "executed.ipynb")
    run = PostRun(path, out_dir, time.perf_counter() - start, inline=inline, text_px=text_px)
    for i, cell in enumerate(nb.cells):
        options = cell_options(cell.source) if cell.cell_type == "code" else {}
        if cell.cell_type != "code" or not _shows_output(options):
            continue
        label = options.get("label", f"cell{i:02d}")
        run.printed += [f"{label}: {o['name']}: {o['text'][:300]}" for o in cell.get("outputs", [])
                        if o.get("output_type") == "stream"]
        pngs = [o["data"]["image/png"] for o in cell.get("outputs", [])
                if "image/png" in o.get("data", {})]
        if pngs and not (options.get("fig-cap") and options.get("fig-alt")):
            run.unlabelled.append(label)
        for j, png in enumerate(pngs):
            name = f"{label}.png" if len(pngs) == 1 else f"{label}-{j + 1}.png"
            (out_dir / name).write_bytes(base64.b64decode(png))
            run.figures.append(out_dir / name)
    (out_dir / "inline.txt").write_text(
        "".join(f"{v}\t<- {k}\n" for k, v in run.inline.items()), encoding="utf-8")
    (out_dir / "seconds.txt").write_text(f"{run.seconds:.1f}\n")
    return run


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        result = run_post(arg)
        print(f"{arg}: ok in {result.seconds:.1f} s, {len(result.figures)} figures, "
              f"{len(result.inline)} inline values -> {result.out_dir}")
