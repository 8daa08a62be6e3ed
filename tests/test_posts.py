"""Every post executes top to bottom in a fresh Jupyter kernel, inline expressions included."""

from pathlib import Path

import pytest
from postrunner import ROOT, run_post

POSTS = sorted((ROOT / "posts").glob("*/index.qmd"))


def test_there_are_posts():
    assert POSTS, "no posts/*/index.qmd found"


@pytest.mark.slow
@pytest.mark.parametrize("post", POSTS, ids=[p.parent.name for p in POSTS])
def test_post_executes(post: Path):
    run = run_post(post)
    print(f"{post.parent.name}: {run.seconds:.1f} s, {len(run.figures)} figures, "
          f"{len(run.inline)} inline values")
    for expr, value in run.inline.items():
        assert value != "", f"{post.parent.name}: inline `{expr}` printed nothing"
