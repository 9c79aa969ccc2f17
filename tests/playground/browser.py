"""Headless Chromium for the playground tests: Debian's `chromium` driven by Playwright by path
(`playwright install` is never used; scripts/test installs the package: ensure_chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Bounded waits for the page (a loaded machine is slow, never wrong).
WAIT_MS = 60_000


@contextmanager
def chromium() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: scripts/test installs it (ensure_chromium)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def run_pattern(page: Page, pattern: str, terminal: str) -> None:
    """Pick `pattern`, run it, and wait until the stream ends in `terminal` (result, done, error)."""
    page.select_option("#pattern", pattern)
    page.click("#run")
    page.wait_for_selector(f"#output[data-terminal={terminal}]", timeout=WAIT_MS)
