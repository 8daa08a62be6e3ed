"""Which posts' frozen results `quarto render` would not use (standard library only).

Quarto stores md5(source text with LF line endings) as `hash` in each post's
`_freeze/posts/<slug>/index/execute-results/html.json` (`freezeInputHash` in its render code) and
re-executes a post whose source no longer matches. `make site` runs this first, so a stale post
is reported with the command that re-renders it instead of failing inside a Jupyter kernel.

    python3 tests/freeze_status.py        # exit 1 and a list when any post is stale
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def freeze_file(post: Path, root: Path = ROOT) -> Path:
    """Where Quarto keeps the executed results of `post` (posts/<slug>/index.qmd)."""
    folder = root / "_freeze" / post.parent.relative_to(root) / "index"
    return folder / "execute-results" / "html.json"


def freeze_problem(post: Path, root: Path = ROOT) -> str | None:
    """Why the post's freeze would not be used by `quarto render` (None: it would be)."""
    frozen = freeze_file(post, root)
    if not frozen.exists():
        return f"no freeze at {frozen.relative_to(root)}"
    text = post.read_text(encoding="utf-8").replace("\r\n", "\n")
    if json.loads(frozen.read_text())["hash"] != hashlib.md5(text.encode()).hexdigest():
        return "source changed after its freeze was written"
    return None


if __name__ == "__main__":
    stale = {p: why for p in sorted((ROOT / "posts").glob("*/index.qmd"))
             if (why := freeze_problem(p))}
    for post, why in stale.items():
        print(f"{post.parent.name}: {why}; re-render it: make render POST={post.parent.name}")
    sys.exit(1 if stale else 0)
