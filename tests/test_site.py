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
from page_check import chromium, page_problems, site_pages
from PIL import Image
from postrunner import ROOT

from hmmblog.plotting import CARD_SIZE

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
        assert meta.get("image") == "card.png", (
            f"{slug}: `image:` should be the card the post writes (save_card), got "
            f"{meta.get('image')!r}")
        assert len(meta.get("image-alt", "")) > 40, f"{slug}: the card needs `image-alt`"
        card = Image.open(ROOT / "posts" / slug / "card.png")
        assert card.size == CARD_SIZE and card.mode == "RGB", (
            f"{slug}: card.png is {card.size} {card.mode}, not a landscape opaque {CARD_SIZE}")
        assert "save_card(" in (ROOT / "posts" / slug / "index.qmd").read_text(), (
            f"{slug}: card.png is not written by the post's own code")


def _quarto() -> str | None:
    return shutil.which("quarto")


# Where the clean copy says it is published (make site SITE_URL=... REPO_URL=...).
SITE_URL, REPO_URL = "https://blog.example.test/hmm", "https://git.example.test/someone/hmmblog"


@pytest.fixture(scope="module")
def clean_site(tmp_path_factory) -> Path:
    """`make site` on a copy of the tracked files, with a Python that has no Jupyter, published
    at SITE_URL: it must use the freeze for every post (executing anything would fail) and print
    no warning. Returns the rendered site."""
    if _quarto() is None:
        pytest.skip("the Quarto CLI is not on PATH")
    tmp_path = tmp_path_factory.mktemp("clean")
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    site = tmp_path / "site"
    for name in filter(None, (f.decode() for f in files)):
        if (ROOT / name).is_file():
            (site / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, site / name)
    bare = tmp_path / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    env = {**os.environ, "QUARTO_PYTHON": str(bare / "bin" / "python"),
           "SITE_URL": SITE_URL, "REPO_URL": REPO_URL}
    env.pop("JUPYTER_PATH", None)
    env.pop("QUARTO_PROFILE", None)
    done = subprocess.run(["make", "site", f"QUARTO={_quarto()}"], cwd=site, env=env,
                          capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    assert not re.search(r"WARN|ERROR|Executing|Starting python", log), log[-4000:]
    return site / "_site"


def test_a_clean_copy_renders_from_the_freeze_alone(clean_site: Path):
    out = clean_site
    for post in POSTS:
        slug = post.parent.name
        page = out / post.parent.relative_to(ROOT) / "index.html"
        assert page.exists(), f"{page} was not rendered"
        html = page.read_text(encoding="utf-8")
        assert re.search(r'class="[^"]*\bseries-nav\b', html) and "series-pager" in html, (
            f"{slug}: no series navigation")
        assert "index_files/figure-html/" in html, f"{slug}: no figures"
        notebook = page.parent / "index.ipynb"
        assert notebook.exists() and re.search(r'href="[^"]*\bindex\.ipynb"', html), (
            f"{slug}: no notebook link")
        assert f'content="{SITE_URL}/posts/{slug}/card.png"' in html, (
            f"{slug}: the social card is not its own card.png at the published URL")
        assert 'name="citation_title"' in html and "quarto-appendix-cite" in html, (
            f"{slug}: no Google Scholar metadata or citation appendix")
        assert "cdn.jsdelivr.net/npm/katex" not in html, f"{slug}: KaTeX from a CDN"
    index = (out / "index.html").read_text(encoding="utf-8")
    assert 'rel="icon"' in index and "favicon.svg" in index, "no favicon"
    assert f'href="{REPO_URL}"' in index, "the GitHub link does not follow REPO_URL"
    assert "hmmblog.example.org" not in index and "github.com/hmmblog" not in index
    feed = ET.parse(out / "index.xml").getroot()
    items = feed.findall("./channel/item")
    assert len(items) == len(POSTS)
    for item in items:
        assert item.findtext("link", "").startswith(SITE_URL + "/"), (
            "feed links must be absolute, under SITE_URL")


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH")
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_pages_fit_a_phone(clean_site: Path, dark: bool):
    """At 390 px no equation, code line or table is cut off at its box's edge, the page does not
    scroll sideways, maths is typeset, no copy button covers code and every file loads."""
    pytest.importorskip("playwright")
    problems = page_problems(clean_site, site_pages(clean_site), width=390, dark=dark)
    assert not problems, "\n".join(f"{page}: {p}" for page, ps in problems.items() for p in ps)


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH")
def test_the_page_check_can_fail(tmp_path: Path):
    pytest.importorskip("playwright")
    (tmp_path / "wide.html").write_text(
        '<html><body><main><div style="width:200px;overflow-x:auto">'
        '<pre style="width:600px">a line of code far too long for a phone</pre></div>'
        '<pre style="position:relative"><button class="code-copy-button" '
        'style="position:absolute;top:0;left:0">copy</button><code>x = 1</code></pre>'
        '<img src="missing.png"></main></body></html>')
    problems = page_problems(tmp_path, ["wide.html"], width=390)["wide.html"]
    assert any("600 px wide in a 200 px box" in p for p in problems), problems
    assert any("copy button" in p for p in problems), problems
    assert any("HTTP 404" in p and "missing.png" in p for p in problems), problems


def test_site_urls_profile(tmp_path: Path):
    """The profile make site writes for SITE_URL / REPO_URL overrides the same keys as the
    default profile, and refuses a URL that is not one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("site_urls", ROOT / "tools" / "site_urls.py")
    site_urls = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(site_urls)
    written = yaml.safe_load(site_urls.profile(SITE_URL + "/", REPO_URL))["website"]
    default = yaml.safe_load((ROOT / "_quarto-local.yml").read_text())["website"]
    assert written.keys() == default.keys()
    assert written["site-url"] == SITE_URL and written["repo-url"] == REPO_URL
    assert written["navbar"]["right"][0]["href"] == REPO_URL
    with pytest.raises(ValueError, match="SITE_URL: expected an absolute http"):
        site_urls.profile("blog.example.test", REPO_URL)
