"""A screenshot of a report's HTML page in headless Chromium (``make reference``).

    .venv/bin/python bench/screenshot.py results/reference/report.md results/reference/report.png

REPORT is a ``report.html`` (``initsuite report DIR --html``) or a ``report.md``: a stored
Markdown report (the committed reference holds no tables to redraw from) is first made a page
by :func:`initsuite.report.html.markdown_html`, its figures inlined from ``figures/``. The
page is drawn at 1280 × 2000 pixels (``--size``) and saved as PNG. Without ``chromium`` (or
``chromium-browser``, ``google-chrome``) it says so and exits 0, so ``make reference`` goes on.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from initsuite.report.html import markdown_html
from initsuite.results import store

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def screenshot(page: Path, out: Path, size: str = "1280,2000") -> bool:
    """Draw ``page`` (an HTML file) into ``out`` (PNG); False when no browser is installed."""
    browser = next((p for name in BROWSERS if (p := shutil.which(name))), None)
    if browser is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "shot.png"
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--virtual-time-budget=10000", f"--window-size={size}",
               f"--screenshot={shot}", page.resolve().as_uri()]  # fmt: skip
        subprocess.run(cmd, capture_output=True, timeout=180, check=True)
        store.atomic_write_bytes(out, shot.read_bytes())
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="report.html or report.md")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--size", default="1280,2000", help="window WIDTH,HEIGHT in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = args.report
        if page.suffix == ".md":
            page = Path(tmp) / "report.html"
            text = args.report.read_text(encoding="utf-8")
            page.write_text(markdown_html(text, args.report.parent / "figures"), "utf-8")
        if not screenshot(page, args.out, args.size):
            print(f"no headless browser ({', '.join(BROWSERS)}): {args.out} not drawn")
            return 0
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
