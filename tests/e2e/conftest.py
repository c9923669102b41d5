"""Page tests in a real headless Chromium (the machine's, never a downloaded
build), driven by Playwright against pytest-django's live server."""

import os
import shutil

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls made
# by the tests themselves are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    executable = os.environ.get("PACTUM_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("Chromium is not installed; run the tests with `make test`, which installs it.")
    return {**browser_type_launch_args, "executable_path": executable, "args": CHROMIUM_FLAGS}


@pytest.fixture
def page(page, live_server):
    page.set_default_timeout(15_000)
    return page
