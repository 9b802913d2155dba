"""Headless Chromium for the browser tests: Debian's build, started the way this machine allows."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

#: Without the background-networking switches Chromium keeps calling Google's hosts, which this
#: machine's closed network refuses; --no-sandbox because the tests run as root in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Debian's Chromium where there is one (or $PHOTOCHECK_CHROMIUM); otherwise Playwright's own."""
    configured = os.environ.get("PHOTOCHECK_CHROMIUM")
    if configured:
        return configured
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_path(name: str, fallback: Path) -> Path:
    """Where a test's screenshot goes: ``docs/NAME`` when PHOTOCHECK_UPDATE_DOCS=1 (to refresh the
    pictures the README shows), else ``fallback``, so that a test run leaves the checkout as it was."""
    if os.environ.get("PHOTOCHECK_UPDATE_DOCS") == "1":
        path = Path(__file__).resolve().parents[1] / "docs" / name
    else:
        path = fallback / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
