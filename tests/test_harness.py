"""The post harness itself: faithful to Quarto's order and options, and loud when a post fails."""

from pathlib import Path

import pytest
from postrunner import MACHINE_OUTPUT, PostExecutionError, as_quarto_text, run_post

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


def run(tmp_path: Path, text: str):
    return run_post(write_post(tmp_path, text), out_root=tmp_path / "build")


def failure(tmp_path: Path, text: str) -> str:
    """The message with which the harness refuses the post `text`."""
    with pytest.raises(PostExecutionError) as err:
        run(tmp_path, text)
    return str(err.value)


def test_good_post_runs_saves_figure_and_inline_values(tmp_path):
    text = GOOD.replace("The answer is `{python} f\"{answer}\"`.\n", "") + (
        "\nThe answer is `{python} f\"{answer}\"`; ran in `{python} here`.\n")
    result = run(tmp_path, text)
    assert [f.name for f in result.figures] == ["fig-line.png"]
    assert result.figures[0].read_bytes().startswith(b"\x89PNG")
    assert result.unlabelled == ["fig-line"]  # it has a caption but no alt text
    assert result.inline == {'f"{answer}"': "42", "here": "tiny"}  # cwd is the post's folder
    assert (result.out_dir / "executed.ipynb").exists()


def test_a_forward_reference_fails_as_in_quarto(tmp_path):
    """GOOD uses `answer` in prose *before* the cell that defines it: Quarto evaluates each
    inline expression where it stands, so this post cannot render, and the harness says so."""
    message = failure(tmp_path, GOOD)
    assert "inline expression `{python} f\"{answer}\"`" in message
    assert "NameError" in message


def test_inline_values_are_evaluated_between_the_cells_around_them(tmp_path):
    text = ("```{python}\nx = 1\n```\n\nFirst `{python} x`.\n\n"
            "```{python}\nx = 2\n```\n\nThen `{python} x + 10`.\n")
    assert run(tmp_path, text).inline == {"x": "1", "x + 10": "12"}


def test_inline_text_is_what_quarto_prints(tmp_path):
    text = ("```{python}\nimport numpy as np\n```\n\n"
            "`{python} 'a string'` `{python} np.int64(3)` `{python} 0.5`\n")
    values = run(tmp_path, text).inline
    assert values["'a string'"] == "a string"  # a string's quotes are stripped
    assert values["np.int64(3)"] == "np.int64(3)"  # anything else prints its repr
    assert MACHINE_OUTPUT.search(values["np.int64(3)"])
    assert not MACHINE_OUTPUT.search(values["'a string'"])
    assert values["0.5"] == "0.5"
    assert as_quarto_text({"text/markdown": "**b**", "text/plain": "<M>"}) == "**b**"


def test_cell_options_are_honoured(tmp_path):
    text = '''```{python}
#| error: true
1 / 0
```

```{python}
#| output: false
import matplotlib.pyplot as plt
plt.plot([0, 1])
plt.show()
```

```{python}
#| include: false
plt.plot([1, 0])
plt.show()
```

```{python}
#| label: fig-shown
#| echo: false
plt.plot([0, 0])
plt.show()
```

```{python}
#| output: false
print("hidden")
```

```{python}
#| label: chatty
print("shown")
```
'''
    result = run(tmp_path, text)  # the error: true cell raises without failing the post
    assert [f.name for f in result.figures] == ["fig-shown.png"]
    assert result.printed == ["chatty: stdout: shown\n"]


def test_a_raising_cell_fails_and_is_named(tmp_path):
    broken = GOOD.replace("The answer is `{python} f\"{answer}\"`.\n", "").replace(
        "answer = 6 * 7", "answer = 6 * 7\n1 / 0")
    message = failure(tmp_path, broken)
    assert "code cell 1 (fig-line)" in message
    assert "ZeroDivisionError" in message


def test_a_raising_inline_expression_fails_and_is_named(tmp_path):
    text = GOOD.replace("The answer is `{python} f\"{answer}\"`.\n", "")
    message = failure(tmp_path, text + "\nBroken: `{python} undefined_name + 1`.\n")
    assert "inline expression `{python} undefined_name + 1`" in message
    assert "NameError" in message
