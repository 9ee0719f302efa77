"""Fixtures for the website test: build the book, serve it, drive headless Chromium.

* ``site_html`` builds the book once per session with ``tools/build_book.py`` in the active
  profile (``GSBOOK_PROFILE``, ci unless set: what ``./run.sh test`` runs, so the chapters
  nbval has just executed are reused from the execution cache, not run again) into a
  temporary folder (or uses ``GSBOOK_SITE_DIR``, an already built ``_build/html``).
* ``browser`` launches Debian's Chromium through Playwright (``executable_path``; Playwright
  never downloads a browser here). When Chromium is missing and we are root, it is installed
  with apt-get, with a CJK font so that the Chinese screenshots are legible.
* Every request that is not to the local server is blocked and recorded: the site must work
  with no network, and ``external_requests`` lets a test say so.
* ``webgl_browser`` is Chromium with WebGL 2 drawn in software (SwiftShader), for the 3D
  viewer's test (``test_splat_viewer.py``), which needs no book build; it skips, with the
  reason, where Chromium is missing and cannot be installed.
* Screenshots go to ``artifacts/site/`` (git-ignored), kept as CI artifacts.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "site"
CHROMIUM_CANDIDATES = ["/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser"]
APT_PACKAGES = ["chromium", "fonts-wqy-microhei"]


def find_chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def ensure_chromium(required: bool = True) -> str | None:
    """Debian's Chromium (installed with apt-get when missing and we are root); when it cannot be
    had, fail the test (``required``) or return ``None``."""
    path = find_chromium()
    have_font = Path("/usr/share/fonts/truetype/wqy").exists() or bool(list(Path("/usr/share/fonts").glob("**/*CJK*")))
    if path and have_font:
        return path
    if shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *APT_PACKAGES], check=False, capture_output=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        path = find_chromium()
    if not path and required:
        pytest.fail("headless Chromium is needed for the website test: apt-get install -y chromium")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="session")
def site_html(tmp_path_factory) -> Path:
    given = os.environ.get("GSBOOK_SITE_DIR")
    if given:
        html = Path(given)
        assert (html / "index.html").is_file(), f"GSBOOK_SITE_DIR={given} holds no built site"
        return html
    out = tmp_path_factory.mktemp("book")
    profile = os.environ.get("GSBOOK_PROFILE") or "ci"
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "build_book.py"), "--profile", profile,
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"the book did not build:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return out / "_build" / "html"


@pytest.fixture(scope="session")
def base_url(site_html):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0),
                                             functools.partial(_QuietHandler, directory=str(site_html)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def external_requests() -> list[str]:
    return []


@pytest.fixture(scope="session")
def playwright_driver():
    """One Playwright driver for the whole session: its sync API cannot run two at once in one
    thread, and both the site's browser and the WebGL browser need it."""
    try:
        import playwright.sync_api as playwright
    except ImportError:
        pytest.fail("the website test needs playwright (pip install -e '.[dev]'); it drives Debian's chromium")
    with playwright.sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_driver, tmp_path_factory):
    exe = ensure_chromium()
    profile_dir = tmp_path_factory.mktemp("chromium-profile")
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile_dir), executable_path=exe, headless=True,
        # --disable-3d-apis: with --disable-gpu alone Chromium still falls back to SwiftShader, so
        # every page with a 3D viewer (§2–§5) would draw its scene in software, frame after frame,
        # on the CPU the next page needs to load (a CI run timed out loading §3 that way). These
        # tests never look at the viewer's picture; its own tests use ``webgl_browser``. Without
        # WebGL the viewer says so in its frame and raises nothing.
        args=["--no-sandbox", "--disable-gpu", "--disable-3d-apis", "--disable-background-networking",
              "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
        viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture(scope="session")
def webgl_browser(playwright_driver):
    """Chromium, headless, with WebGL through SwiftShader (no GPU needed) and no network access."""
    exe = ensure_chromium(required=False)
    if not exe:
        pytest.skip("no Chromium here and it could not be installed (apt-get install -y chromium)")
    browser = playwright_driver.chromium.launch(
        executable_path=exe, headless=True,
        args=["--no-sandbox", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
              "--ignore-gpu-blocklist", "--disable-background-networking", "--disable-component-update",
              "--no-first-run", "--disable-dev-shm-usage"])
    yield browser
    browser.close()


@pytest.fixture()
def page(browser, base_url, external_requests):
    pg = browser.new_page()

    def route(r):
        if r.request.url.startswith(base_url + "/") or r.request.url.startswith("data:"):
            r.continue_()
        else:
            external_requests.append(r.request.url)
            r.abort()

    pg.route("**/*", route)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors
    yield pg
    pg.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture()
def drag_across():
    """``drag_across(page, selector, …)``: the 3D viewer tests' mouse drag (one copy for both files)."""
    return _drag_across


def _drag_across(page, selector: str, dx: float = 120, dy: float = 10, steps: int = 12, settle_ms: int = 1500) -> None:
    """Press the mouse at the centre of ``selector``'s canvas, drag by (dx, dy), release, and wait
    for the viewer's orbit to ease out (its controls are damped)."""
    box = page.locator(f"{selector} canvas").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=steps)
    page.mouse.up()
    page.wait_for_timeout(settle_ms)
