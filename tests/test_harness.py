"""The post harness itself: it must fail loudly, naming the post and the culprit."""

from pathlib import Path

import pytest
from postrunner import PostExecutionError, run_post

GOOD = '''---
title: "tiny"
---

The answer is `{python} f"{answer}"`.

```{python}
#| label: fig-line
#| fig-cap: "A line."
import matplotlib.pyplot as plt
from pathlib import Path
answer = 6 * 7
here = Path.cwd().name
plt.plot([0, 1], [0, 1])
plt.title("a line")
```

```{python}
#| eval: false
raise RuntimeError("never executed: eval is false")
```
'''


def write_post(tmp_path: Path, text: str, slug: str = "tiny") -> Path:
    post = tmp_path / "posts" / slug / "index.qmd"
    post.parent.mkdir(parents=True)
    post.write_text(text)
    return post


def test_good_post_runs_saves_figure_and_inline_values(tmp_path):
    post = write_post(tmp_path, GOOD + "\nRan in `{python} here`.\n")
    run = run_post(post, out_root=tmp_path / "build")
    assert [f.name for f in run.figures] == ["fig-line.png"]
    assert run.figures[0].read_bytes().startswith(b"\x89PNG")
    assert run.inline == {'f"{answer}"': "42", "here": "tiny"}  # cwd is the post's folder
    assert (run.out_dir / "executed.ipynb").exists()


def test_a_raising_cell_fails_and_is_named(tmp_path):
    broken = GOOD.replace("answer = 6 * 7", "answer = 6 * 7\n1 / 0")
    post = write_post(tmp_path, broken)
    with pytest.raises(PostExecutionError) as err:
        run_post(post, out_root=tmp_path / "build")
    message = str(err.value)
    assert "code cell 1 (fig-line)" in message
    assert "ZeroDivisionError" in message


def test_a_raising_inline_expression_fails_and_is_named(tmp_path):
    post = write_post(tmp_path, GOOD + "\nBroken: `{python} undefined_name + 1`.\n")
    with pytest.raises(PostExecutionError) as err:
        run_post(post, out_root=tmp_path / "build")
    message = str(err.value)
    assert "inline expression `{python} undefined_name + 1`" in message
    assert "NameError" in message
