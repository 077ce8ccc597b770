"""One headless Chromium for the whole session, driven through Playwright's sync API
on a thread of its own.

The app under test runs in the test's event loop (the `server` fixture), so the
browser cannot block that loop: every browser call is handed to the browser's
thread and awaited (``await ui(fn, *args)``). Debian's chromium is used
(Playwright's own browser download is not reachable everywhere); where it is
missing the browser tests are skipped, except in CI, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ..conftest import unreachable

CHROMIUM = os.environ.get("IMSERVER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class UI:
    """A browser on one thread; ``await ui(fn, *args)`` runs ``fn(browser, *args)`` there."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="chromium")
        self.seconds = 0.0  # time spent inside browser calls, reported at the end of the session
        self._pool.submit(self._start).result()

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

    async def __call__(self, fn, *args):
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, self.browser, *args)
        finally:
            self.seconds += time.perf_counter() - started

    def close(self) -> None:
        def stop() -> None:
            self.browser.close()
            self._playwright.stop()

        self._pool.submit(stop).result()
        self._pool.shutdown()


@pytest.fixture(scope="session")
def ui(request):
    if not os.access(CHROMIUM, os.X_OK):
        unreachable("chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError as exc:
        unreachable("playwright", str(exc))
    started = time.perf_counter()
    browser = UI()
    launch = time.perf_counter() - started
    yield browser
    browser.close()
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"console browser: launch {launch:.2f}s, {browser.seconds:.2f}s inside browser calls"
        )
