"""Every post executes top to bottom in a fresh Jupyter kernel, cells and inline expressions in
document order as Quarto runs them; its prose shows no machine output and its cells print
nothing (no logs, warnings or dumps: figures, tables and prose carry the results)."""

from pathlib import Path

import pytest
from postrunner import MACHINE_OUTPUT, ROOT, run_post

POSTS = sorted((ROOT / "posts").glob("*/index.qmd"))


def test_there_are_posts():
    assert POSTS, "no posts/*/index.qmd found"


@pytest.mark.slow
@pytest.mark.parametrize("post", POSTS, ids=[p.parent.name for p in POSTS])
def test_post_executes(post: Path):
    run = run_post(post)
    print(f"{post.parent.name}: {run.seconds:.1f} s, {len(run.figures)} figures, "
          f"{len(run.inline)} inline values")
    assert not run.unlabelled, (
        f"{post.parent.name}: figures without fig-cap and fig-alt: {run.unlabelled}")
    assert not run.printed, f"{post.parent.name}: printed output a reader would skip: {run.printed}"
    for expr, value in run.inline.items():
        assert value != "", f"{post.parent.name}: inline `{expr}` printed nothing"
        assert not MACHINE_OUTPUT.search(value), (
            f"{post.parent.name}: inline `{expr}` prints {value!r}, a repr, not a number")
