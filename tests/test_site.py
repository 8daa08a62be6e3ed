"""The site as readers get it: every post frozen from its current source, a listing that reads as
a series, and (where the Quarto CLI is on PATH) a render of a clean copy of the repository from
the freeze alone — no Jupyter, nothing executed, no warning."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest
import yaml
from freeze_status import freeze_file, freeze_problem
from postrunner import ROOT

POSTS = sorted((ROOT / "posts").glob("*/index.qmd"))


def front_matter(post: Path) -> dict:
    match = re.match(r"---\r?\n(.*?)\r?\n---", post.read_text(encoding="utf-8"), re.DOTALL)
    assert match, f"{post}: no YAML front matter"
    return yaml.safe_load(match.group(1))


@pytest.mark.parametrize("post", POSTS, ids=[p.parent.name for p in POSTS])
def test_post_freeze_is_current(post: Path):
    problem = freeze_problem(post)
    assert problem is None, (
        f"{post.parent.name}: {problem}. Re-render it with `make render POST={post.parent.name}` "
        "and commit _freeze/.")


def test_freeze_check_notices_an_edit(tmp_path):
    post = tmp_path / "posts" / "x" / "index.qmd"
    post.parent.mkdir(parents=True)
    post.write_text("---\ntitle: x\n---\n\nText.\r\n")
    frozen = freeze_file(post, tmp_path)
    frozen.parent.mkdir(parents=True)
    digest = hashlib.md5(b"---\ntitle: x\n---\n\nText.\n").hexdigest()
    frozen.write_text(json.dumps({"hash": digest, "result": {}}))
    assert freeze_problem(post, tmp_path) is None  # CRLF counts as LF, as in Quarto
    post.write_text("---\ntitle: x\n---\n\nText, edited.\n")
    assert freeze_problem(post, tmp_path) == "source changed after its freeze was written"


def test_posts_read_as_a_series():
    metas = {p.parent.name: front_matter(p) for p in POSTS}
    dates = [date.fromisoformat(str(m["date"])) for m in metas.values()]
    assert dates == sorted(dates) and len(set(dates)) == len(dates), (
        f"posts need distinct dates in series order (slug order), got {dates}")
    categories = {c for m in metas.values() for c in m["categories"]}
    folded = {re.sub(r"[^a-z]", "", c.lower()): c for c in categories}
    assert len(folded) == len(categories), f"categories that differ only in spelling: {categories}"
    initials = {"".join(w[0] for w in c.lower().split()): c for c in categories if " " in c}
    clashes = [(c, initials[c.lower().rstrip("s")]) for c in categories
               if c.lower().rstrip("s") in initials]
    assert not clashes, f"a category and its own initialism both appear: {clashes}"
    for slug, meta in metas.items():
        assert len(meta.get("description", "")) > 60, f"{slug}: description says too little"
        image = meta.get("image", "")
        assert image.startswith("index_files/figure-html/"), (
            f"{slug}: `image:` should be one of the post's own figures, got {image!r}")
        frozen_figure = ROOT / "_freeze" / "posts" / slug / "index" / image.removeprefix(
            "index_files/")
        assert frozen_figure.exists(), f"{slug}: thumbnail {image} is not in the freeze"


def _quarto() -> str | None:
    return shutil.which("quarto")


@pytest.mark.skipif(_quarto() is None, reason="the Quarto CLI is not on PATH")
def test_a_clean_copy_renders_from_the_freeze_alone(tmp_path):
    """`quarto render` on the tracked files, with a Python that has no Jupyter: it must use the
    freeze for every post (executing anything would fail), and print no warning."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    site = tmp_path / "site"
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, site / name)
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    env = {**os.environ, "QUARTO_PYTHON": str(bare / "bin" / "python")}
    env.pop("JUPYTER_PATH", None)
    done = subprocess.run([_quarto(), "render"], cwd=site, env=env, capture_output=True,
                          text=True, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert not re.search(r"WARN|ERROR|Executing|Starting python", log), log[-4000:]
    out = site / "_site"
    for post in POSTS:
        page = out / post.parent.relative_to(ROOT) / "index.html"
        assert page.exists(), f"{page} was not rendered"
        html = page.read_text(encoding="utf-8")
        assert re.search(r'class="[^"]*\bseries-nav\b', html) and "series-pager" in html, (
            f"{post.parent.name}: no series navigation")
        assert "index_files/figure-html/" in html, f"{post.parent.name}: no figures"
    feed = ET.parse(out / "index.xml").getroot()
    items = feed.findall("./channel/item")
    assert len(items) == len(POSTS)
    for item in items:
        assert item.findtext("link", "").startswith("http"), "feed links must be absolute"
