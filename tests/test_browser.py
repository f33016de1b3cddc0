"""The first page in a real headless Chromium: it draws the grid levels from local assets only."""
import os
import shutil
from urllib.parse import urlparse

import pytest

from test_grid_import import import_all, run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        # Debian's Chromium, never a downloaded one; Playwright gives each launch a fresh profile.
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


BROWSER_PASSWORD = "browser-tests-only"


def new_page(browser):
    """A page in a fresh context that records console errors and requests to other hosts."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.errors, page.outside = [], []
    # Chromium asks a JSON document (sign_in lands on one) for /favicon.ico, which GridMap does not serve
    # (its pages name an empty icon): that 404 is no page's error
    page.on("console", lambda m: m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
            and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("request", lambda r: urlparse(r.url).hostname not in ("127.0.0.1", None) and page.outside.append(r.url))
    return page


def sign_in(page, base, name, password=BROWSER_PASSWORD):
    """Through the sign-in form, as a user would; lands on a JSON page (no page's requests to wait for)."""
    page.goto(f"{base}/login?next=/api/v1/me")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/api/v1/me")


def add_user(app, name, role="admin", scope=None, department=None):
    from gis import users
    from gis.access import Scope

    with app.extensions["gridmap_db"].cursor() as cur:
        users.add(cur, name, role=role, scope=Scope(scope, department), password=BROWSER_PASSWORD,
                  created_by="tests")


@pytest.fixture
def page(browser, app, live_server):
    """A page signed in as a city-wide admin."""
    add_user(app, "browser-admin")
    page = new_page(browser)
    sign_in(page, live_server, "browser-admin")
    yield page
    page.context.close()


def test_index_draws_the_grid_and_shows_a_cell(page, live_server, runner, tmp_path):
    import_all(runner, tmp_path)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0

    page.goto(live_server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    assert "生效版本 Active version 1" in page.inner_text("#version")
    assert page.inner_text('[data-count="3"]') == "(8)"
    layers = page.evaluate("""() => { const out = {};
        gridmap.map.eachLayer(l => { if (l.feature) out[l.feature.properties.level] =
            (out[l.feature.properties.level] || 0) + 1; }); return out; }""")
    assert layers == {"0": 1, "1": 2, "2": 4, "3": 8}

    # click inside the north-east unit grid of the north-east community
    point = page.evaluate("() => gridmap.map.latLngToContainerPoint([34.79, 113.695])")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_selector("#cell:not([hidden])")
    card = page.inner_text("#cell")
    assert "东街道北社区第2网格" in card and "410105002002002" in card

    page.screenshot(path=str(tmp_path / "index.png"))
    assert page.errors == []
    assert page.outside == []


def test_index_without_an_active_version_says_so(page, live_server):
    page.goto(live_server + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    assert "No active grid version" in page.inner_text("#version")
    assert page.outside == []
