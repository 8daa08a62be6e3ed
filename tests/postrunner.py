"""Execute a Quarto post (`.qmd`) top to bottom in a fresh Jupyter kernel, as `quarto render` does.

Quarto itself cannot be installed on the build machines, so this is how the test suite proves
that every post runs: the `.qmd` becomes a notebook (jupytext's R Markdown reader understands
```` ```{python} ```` cells), nbclient executes it in a new `python3` kernel with the working
directory set to the post's folder, and every inline `` `{python} expr` `` of the prose is then
evaluated in the same kernel. Cells marked `#| eval: false` are skipped, as Quarto skips them.

The executed notebook, every figure (PNG, named by the cell's `#| label:`), the values of the
inline expressions and the run time go to `build/posts/<slug>/`, so a person can look at them.

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
INLINE = re.compile(r"`\{python\}\s+(.+?)`")
OPTION = re.compile(r"^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$")


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


def cell_options(source: str) -> dict[str, str]:
    """The `#| key: value` options at the top of a code cell."""
    options = {}
    for line in source.splitlines():
        match = OPTION.match(line)
        if not match:
            break
        options[match.group(1)] = match.group(2).strip("'\"")
    return options


def inline_expressions(nb: nbformat.NotebookNode) -> list[str]:
    """Every `` `{python} expr` `` in the markdown cells, in reading order."""
    return [m.group(1).strip() for c in nb.cells if c.cell_type == "markdown"
            for m in INLINE.finditer(c.source)]


def read_post(path: Path) -> nbformat.NotebookNode:
    """The post as a notebook of python code cells and markdown cells."""
    nb = jupytext.reads(path.read_text(encoding="utf-8"), fmt="Rmd")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_raw_cell(c.source)
                if c.cell_type == "code" and cell_options(c.source).get("eval") == "false" else c
                for c in nb.cells]
    return nb


def _describe(nb: nbformat.NotebookNode, index: int) -> str:
    cell = nb.cells[index]
    label = cell_options(cell.source).get("label")
    first = next((ln for ln in cell.source.splitlines() if not ln.startswith("#|")), "")
    code_number = sum(c.cell_type == "code" for c in nb.cells[: index + 1])
    return f"code cell {code_number}" + (f" ({label})" if label else "") + f", starting {first!r}"


def run_post(path: Path | str, out_root: Path = BUILD, timeout: int = 900) -> PostRun:
    """Execute the post at `path` in a fresh kernel; raise `PostExecutionError` naming the
    post and the failing cell or inline expression."""
    path = Path(path).resolve()
    out_dir = out_root / path.parent.name
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = read_post(path)
    expressions = inline_expressions(nb)
    n_cells = len(nb.cells)
    for expr in expressions:  # evaluated after the post's own cells, in the same kernel
        nb.cells.append(nbformat.v4.new_code_cell(f"print(str({expr}))"))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        index = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code" and any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), None)
        if index is not None and index >= n_cells:
            where = f"inline expression `{{python}} {expressions[index - n_cells]}`"
        elif index is not None:
            where = _describe(nb, index)
        else:
            where = "a cell"
        raise PostExecutionError(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
                                 f": {where} raised:\n{err}") from None
    finally:
        nbformat.write(nb, out_dir / "executed.ipynb")
    run = PostRun(path, out_dir, time.perf_counter() - start)
    for i, cell in enumerate(nb.cells[:n_cells]):
        if cell.cell_type != "code":
            continue
        label = cell_options(cell.source).get("label", f"cell{i:02d}")
        pngs = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        for j, png in enumerate(pngs):
            name = f"{label}.png" if len(pngs) == 1 else f"{label}-{j + 1}.png"
            (out_dir / name).write_bytes(base64.b64decode(png))
            run.figures.append(out_dir / name)
    for expr, cell in zip(expressions, nb.cells[n_cells:], strict=True):
        run.inline[expr] = "".join(o.get("text", "") for o in cell.outputs).strip()
    (out_dir / "inline.txt").write_text(
        "".join(f"{v}\t<- {k}\n" for k, v in run.inline.items()), encoding="utf-8")
    (out_dir / "seconds.txt").write_text(f"{run.seconds:.1f}\n")
    return run


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        result = run_post(arg)
        print(f"{arg}: ok in {result.seconds:.1f} s, {len(result.figures)} figures, "
              f"{len(result.inline)} inline values -> {result.out_dir}")
