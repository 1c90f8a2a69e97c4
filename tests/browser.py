"""Headless Chromium for the page tests: Debian's ``chromium`` driven by playwright (MEASURED.md: never
``playwright install``; these flags keep it off the closed network).

    with chromium() as browser, checked_page(browser) as page:
        page.goto(url)            # the test fails if the page throws a JavaScript error
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
WHY_NOT = f"{CHROMIUM} is not installed (apt-get install chromium)"


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def checked_page(browser: Any, width: int = 1400, height: int = 900, timeout_ms: int = 5000) -> Iterator[Any]:
    """A page in a fresh context; on leaving, asserts the page threw no JavaScript error."""
    ctx = browser.new_context(viewport={"width": width, "height": height})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.set_default_timeout(timeout_ms)
    try:
        yield page
    finally:
        ctx.close()
    assert errors == [], f"JavaScript errors: {errors}"
