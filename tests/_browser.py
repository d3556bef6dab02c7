"""The one headless browser of the tests: Debian's chromium driven by chromedriver.

Use the ``browser`` fixture (tests/conftest.py, one browser per module) or, for a fresh
browser, ``with chromium() as driver:``. Timeouts are bounded, so a page that never loads
fails the test instead of hanging it, and the browser always quits, so no process is left
behind. Tests skip when selenium, chromium or chromedriver is missing.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: seconds a page load or an asynchronous script may take before the test fails
TIMEOUT_S = 120


@contextlib.contextmanager
def chromium(
    *, window: tuple[int, int] = (1400, 1000), timeout: float = TIMEOUT_S
) -> Iterator[Any]:
    """A headless chromium WebDriver with the console log kept (``driver.get_log("browser")``)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    binary = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not (Path(CHROMEDRIVER).exists() and binary):
        pytest.skip("needs Debian's chromium and chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--enable-unsafe-swiftshader",
        f"--window-size={window[0]},{window[1]}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(timeout)
        driver.set_script_timeout(timeout)
        yield driver
    finally:
        driver.quit()
