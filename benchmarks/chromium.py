"""The reference for the letter's render: the same HTML printed to PDF by headless Chromium (Debian's `chromium`).

    python -m benchmarks.chromium [--runs N]

Each print is a new Chromium process with an empty profile, like a cold render of ours; the letter's HTML
(styles inline) is written beside a <base> pointing into the letterhead's folder, so fonts and the logo load
as WeasyPrint loads them. No Chromium installed: None (the suite prints a note instead of a row).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import example_plan, ms, spread
from pipeline.render.letter import letter_html
from pipeline.render.letterhead import load_letterhead

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--no-pdf-header-footer")
CREATED = "2027-01-11T17:02:00+00:00"


def chromium() -> str | None:
    """The Chromium binary, if one is installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def version(binary: str) -> str:
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip() or "chromium"


def print_letter(runs: int) -> dict[str, Any] | None:
    """`runs` prints of the example letter by Chromium: seconds per process, pages and bytes."""
    binary = chromium()
    if binary is None:
        return None
    from pypdf import PdfReader

    plan = example_plan()
    head = load_letterhead(plan.letterhead)
    html = letter_html(plan, version=1, created=CREATED)
    html = html.replace("<head>", f'<head><base href="{head.base_url}">', 1)
    times = []
    with tempfile.TemporaryDirectory(prefix="mp-bench-") as tmp:
        page = Path(tmp) / "letter.html"
        page.write_text(html, encoding="utf-8")
        out = Path(tmp) / "letter.pdf"
        for i in range(runs):
            profile = Path(tmp) / f"profile{i}"
            profile.mkdir()
            out.unlink(missing_ok=True)
            cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={out}", page.as_uri()]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
            times.append(time.perf_counter() - start)
            if done.returncode != 0 or not out.exists():
                raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
        pdf = out.read_bytes()
    return {"process": spread(times), "pages": len(PdfReader(out_bytes(pdf)).pages), "bytes": len(pdf),
            "version": version(binary)}


def out_bytes(pdf: bytes) -> Any:
    import io

    return io.BytesIO(pdf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = print_letter(args.runs)
    if result is None:
        print("chromium is not installed (apt-get install chromium)")
        return
    p = result["process"]
    print(f"{result['version']}: {ms(p['min'])} min, {ms(p['median'])} median per print (a new process each); "
          f"{result['pages']} pages, {result['bytes']:,} bytes")


if __name__ == "__main__":
    main()
