"""Every post executes top to bottom in a fresh Jupyter kernel, cells and inline expressions in
document order as Quarto runs them; its prose shows no machine output and its cells print
nothing (no logs, warnings or dumps: figures, tables and prose carry the results)."""

import re
from pathlib import Path

import pytest
from postrunner import MACHINE_OUTPUT, ROOT, run_post

POSTS = sorted((ROOT / "posts").glob("*/index.qmd"))
MIN_TEXT_PX = 9  # the smallest figure text a reader can read on a phone


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
    small = {label: round(px, 1) for label, px in run.text_px.items() if px < MIN_TEXT_PX}
    assert not small, (
        f"{post.parent.name}: figure text below {MIN_TEXT_PX} px on a phone (px by cell): {small}")
    assert not run.printed, f"{post.parent.name}: printed output a reader would skip: {run.printed}"
    for expr, value in run.inline.items():
        assert value != "", f"{post.parent.name}: inline `{expr}` printed nothing"
        assert not MACHINE_OUTPUT.search(value), (
            f"{post.parent.name}: inline `{expr}` prints {value!r}, a repr, not a number")


@pytest.mark.parametrize("post", POSTS, ids=[p.parent.name for p in POSTS])
def test_no_two_inline_expressions_touch(post: Path):
    """`{python} a``{python} b` is not two inline expressions to Quarto's Markdown reader: the
    double backtick opens a code span, and the reader sees the second one as literal code."""
    text = post.read_text(encoding="utf-8")
    touching = re.search(r"[^`\n]``\{python\}", text)  # not a ```{python} fence
    assert not touching, f"{post.parent.name}: two inline expressions touch: {touching}"


def test_the_touching_check_can_fail(tmp_path: Path):
    bad = tmp_path / "index.qmd"
    bad.write_text("σ = `{python} a``{python} b`\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="touch"):
        test_no_two_inline_expressions_touch(bad)
