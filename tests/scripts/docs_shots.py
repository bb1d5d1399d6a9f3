"""Screenshots of the documentation site's main pages, for a person to look at.

    make docs-shots          # builds site/ first; writes site-shots/<page>.png

Runs headless Chromium (``chromium``, ``chromium-browser`` or ``google-chrome`` on the PATH,
or ``CHROMIUM=/path``) on the built pages, opened from the file system as a reader would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["index.html", "api/model.html", "reference-tables.html",
         "guides/coming-from-keras.html", "api/losses.html", "search.html?q=checkpoint"]
SIZE = os.environ.get("SHOT_SIZE", "1366,3000")


def browser() -> str:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    sys.exit("docs-shots needs Chromium: apt-get install chromium (or set CHROMIUM=/path)")


def main() -> None:
    site, out = ROOT / "site", ROOT / "site-shots"
    if not (site / "index.html").exists():
        sys.exit("build the site first: make docs")
    out.mkdir(exist_ok=True)
    exe = browser()
    for page in PAGES:
        name = page.replace("/", "_").replace(".html", "").replace("?q=", "-search-") + ".png"
        url = (site / page.split("?")[0]).as_uri() + ("?" + page.split("?")[1] if "?" in page
                                                      else "")
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={SIZE}", "--virtual-time-budget=3000",
                        f"--screenshot={out / name}", url],
                       check=True, capture_output=True, timeout=120)
        print(out / name)


if __name__ == "__main__":
    main()
