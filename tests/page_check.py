"""What a reader's browser shows that it should not: content wider than its box at a given window
width (a display equation or code cut off at the edge, a page that scrolls sideways), copy
buttons over code, maths left untypeset, the site's own files that fail to load, and script
errors. Serves a rendered site on loopback and drives the system Chromium through Playwright;
downloads nothing.

    python tests/page_check.py _site [--width 390] [pages ...]   # a line per problem; exit 1 if any
"""

from __future__ import annotations

import argparse
import functools
import http.server
import shutil
import socketserver
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Every element inside the page's main column that holds more than it shows. KaTeX's MathML copy
# (for screen readers) and Bootstrap's screen-reader-only labels are 1 px boxes by design.
PROBLEMS_JS = """() => {
  const hidden = '.katex-mathml, .katex-mathml *, .screen-reader-only, .visually-hidden';
  const problems = [];
  for (const el of document.querySelectorAll('main *')) {
    if (el.matches(hidden) || el.clientWidth === 0) continue;
    if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible') {
      const what = el.closest('.katex-display') ? 'display equation'
        : el.closest('div.sourceCode') ? 'code' : el.closest('table') ? 'table' : el.tagName;
      problems.push(`${what} ${el.scrollWidth} px wide in a ${el.clientWidth} px box: `
        + (el.innerText || '').replace(/\\s+/g, ' ').slice(0, 50));
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth)
    problems.push(`page ${page.scrollWidth} px wide in a ${window.innerWidth} px window`);
  // A shown copy button (not one in a closed dialog) whose box overlaps the code's text.
  const copy = [...document.querySelectorAll('.code-copy-button')].filter(button => {
    const code = button.parentElement.querySelector('code');
    if (button.offsetParent === null || !code) return false;
    const b = button.getBoundingClientRect(), text = document.createRange();
    text.selectNodeContents(code);
    return [...text.getClientRects()].some(t => t.width > 0 && t.left < b.right
      && t.right > b.left && t.top < b.bottom && t.bottom > b.top);
  }).length;
  if (copy) problems.push(`${copy} copy buttons over code`);
  if (!document.querySelector('.katex') && document.querySelector('.math'))
    problems.push('maths not typeset (KaTeX did not load)');
  return problems;
}"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def served(site: Path) -> Iterator[str]:
    """`site` on a loopback HTTP server for the duration of the block; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = socketserver.TCPServer(("127.0.0.1", 0),
                                    functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _problems(context, base: str, rel: str) -> list[str]:
    """What one page shows that it should not (see PROBLEMS_JS), and the site's own files that
    failed to load. A third-party resource that cannot load (web fonts, on a machine without
    internet) does not count, nor does the console line the browser writes for it."""
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console error: {m.text}")
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    page.on("response", lambda r: errors.append(f"HTTP {r.status}: {r.url}")
            if r.url.startswith(base) and r.status >= 400 else None)
    page.on("requestfailed", lambda r: errors.append(f"failed: {r.url}")
            if r.url.startswith(base) else None)
    page.goto(f"{base}/{rel}", wait_until="networkidle")
    problems = page.evaluate(PROBLEMS_JS) + errors
    page.close()
    return problems


def page_problems(site: Path, pages: list[str], width: int = 390,
                  dark: bool = False) -> dict[str, list[str]]:
    """Problems per page (paths under `site`) in a `width` px window; pages without any are left
    out."""
    from playwright.sync_api import sync_playwright

    found: dict[str, list[str]] = {}
    with served(site) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": width, "height": 900},
                                      color_scheme="dark" if dark else "light",
                                      is_mobile=width < 600, has_touch=width < 600)
        for rel in pages:
            if problems := _problems(context, base, rel):
                found[rel] = problems
        browser.close()
    return found


def site_pages(site: Path) -> list[str]:
    return ["index.html", "about.html"] + sorted(
        str(p.relative_to(site)) for p in site.glob("posts/*/index.html"))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("site", type=Path)
    ap.add_argument("pages", nargs="*")
    ap.add_argument("--width", type=int, default=390)
    ap.add_argument("--dark", action="store_true")
    args = ap.parse_args()
    report = page_problems(args.site.resolve(), args.pages or site_pages(args.site), args.width,
                           args.dark)
    for rel, problems in report.items():
        for problem in problems:
            print(f"{rel}: {problem}")
    sys.exit(1 if report else 0)
