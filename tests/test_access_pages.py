"""Access control as a signed-in user sees it, in headless Chromium over a real socket: a user scoped to the west
street (410105001), signed in through the sign-in form, sees only its street on every page — the live map's
vector tiles at each level, its first view, cell cards and live feed; the grid page; the planner's editor and
its edits; the worklist and the case pages — and signing out through the page's button ends the session.

The fixture city (tests/fixtures.py) is one district of two streets; `world` (test_access.py) posts a report
inside the west street and one outside it (in the east street) and makes a draft.
"""
import math
import re
from collections import Counter, defaultdict
from urllib.parse import quote, urlparse

import mapbox_vector_tile
import pytest
import requests
import shapely
from shapely.geometry import box

import fixtures
from test_access import IN_GRID, IN_POINT, OTHER_STREET, OUT_GRID, OUT_POINT, STREET, CGJ_SUBCLASS, world  # noqa: F401
from test_browser import BROWSER_PASSWORD, add_user, browser, new_page  # noqa: F401  (fixture: Chromium)
from test_map_page import click_at
from test_planner_page import drag
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

pytestmark = pytest.mark.browser

X0, Y0, X1, Y1, XM, YM = fixtures.X0, fixtures.Y0, fixtures.X1, fixtures.Y1, fixtures.XM, fixtures.YM
XQ = (X0 + XM) / 2                                 # the unit grids' boundary inside the west street
WEST = {level: {c[0] for c in fixtures.cells(level) if c[0].startswith(STREET)} for level in range(4)}
EAST_BOX = box(XM, Y0, X1, Y1)
# an event reaches the feed once every older transaction of the cluster has ended (gis/live.py): on a
# cluster busy with other test sessions that may take a while
FEED_WAIT_MS = 20000
FAILED_NOTE = re.compile(r"Failed to load resource: the server responded with a status of (4\d\d)")


# --- helpers --------------------------------------------------------------------------------------------

def scoped_page(browser, app, base, name, role, scope, landing):  # noqa: F811
    """A fresh page of a new user ``name``, signed in through the sign-in form and sent on to ``landing``.

    Besides what new_page records (console errors, requests to other hosts) it keeps the URL of every request
    (``page.asked``) and every answer of 400 or more (``page.failed``), so that a test can tell the failures
    it provoked from any other."""
    add_user(app, name, role, scope)
    page = new_page(browser)
    page.asked, page.failed = [], []
    page.on("request", lambda r: page.asked.append(r.url))
    page.on("response", lambda r: r.status >= 400 and page.failed.append((r.status, urlparse(r.url).path)))
    sign_in_through_the_form(page, base, name, landing)
    return page


def sign_in_through_the_form(page, base, name, landing):
    page.goto(f"{base}/login?next={quote(landing, safe='/')}")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", BROWSER_PASSWORD)
    page.click("#login button[type=submit]")
    page.wait_for_url(f"{base}{landing}")


def assert_clean(page, *provoked):
    """No request to another host, no failed answer but the ``provoked`` ones ((status, path) pairs), and no
    console error but Chromium's note on each of those."""
    assert page.outside == []
    assert [f for f in page.failed if f not in provoked] == []
    notes = [e for e in page.errors if FAILED_NOTE.match(e)]
    assert [e for e in page.errors if e not in notes] == []
    noted = Counter(int(FAILED_NOTE.match(e).group(1)) for e in notes)
    assert noted - Counter(status for status, _ in page.failed) == Counter()  # each note is of a provoked one


def fetch(page, url, method="GET", body=None):
    """``[status, body text]`` of a request from the page, as its own script would send it (with the CSRF
    token of the page's <meta>)."""
    return page.evaluate("""async ([url, method, body]) => {
        const token = document.querySelector('meta[name="csrf-token"]');
        const headers = {"Content-Type": "application/json"};
        if (token) headers["X-CSRFToken"] = token.content;
        const r = await fetch(url, {method, headers, body: body === null ? undefined : JSON.stringify(body)});
        return [r.status, await r.text()];
    }""", [url, method, body])


def tile_bounds(z, x, y):
    n = 2 ** z
    lon = lambda i: i / n * 360 - 180  # noqa: E731
    lat = lambda j: math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * j / n))))  # noqa: E731
    return box(lon(x), lat(y + 1), lon(x + 1), lat(y))


def tiles_of(page, urls):
    """``({level: codes of the cells in its tiles}, {level: tile boxes asked for})`` of the tiles the page
    asked for, fetched again one by one as its user (Chromium hands Playwright no body of a fetch()ed tile)."""
    codes, asked = defaultdict(set), defaultdict(list)
    for url in dict.fromkeys(urls):
        _, _, level, z, x, y = urlparse(url).path.removesuffix(".pbf").split("/")
        level = int(level)
        asked[level].append(tile_bounds(int(z), int(x), int(y)))
        answer = page.request.get(url)
        assert answer.status in (200, 204), (url, answer.status, answer.text()[:300])
        if answer.status == 200:
            for f in mapbox_vector_tile.decode(answer.body())["cells"]["features"]:
                assert f["properties"]["level"] == level
                codes[level].add(f["properties"]["code"])
    return codes, asked


def drawn(page):
    return page.evaluate("() => [...gridmap.state.props.values()].map(p => p.code)")


def show_level(page, level):
    """Click the live map's level button and wait till that level's drawing has loaded."""
    page.click(f"#levels button[data-level='{level}']")
    page.wait_for_function(f"() => gridmap.state.level === {level} && gridmap.state.drawn === gridmap.state.rev",
                           timeout=15000)


def hit_cell(page, lon, lat):
    """Is a drawn cell of the live map what a click at the point would hit?"""
    return page.evaluate(f"""() => {{
        const p = gridmap.map.latLngToContainerPoint([{lat}, {lon}]), r = gridmap.map.getContainer().getBoundingClientRect();
        const target = document.elementFromPoint(r.left + p.x, r.top + p.y);
        return target.tagName === "path" && target.classList.contains("leaflet-interactive");
    }}""")


def post_report(base, headers, point, description):
    r = requests.post(f"{base}/api/v1/reports", headers=headers, timeout=10, json={
        "category": CGJ_SUBCLASS, "lon": point[0], "lat": point[1], "description": description})
    assert r.status_code == 201, r.text
    return r.json()["id"]


@pytest.fixture
def stop_live(app):
    yield
    listener = app.extensions.get("gridmap_live")
    if listener is not None:
        listener.stop()


# --- the live map ---------------------------------------------------------------------------------------

def test_the_live_map_of_a_street_user_draws_feeds_and_cards_only_its_street(  # noqa: F811
        browser, app, live_server, admin_headers, world, stop_live):  # noqa: F811
    city = scoped_page(browser, app, live_server, "city-viewer", "viewer", None, "/map")
    page = None
    try:
        page = scoped_page(browser, app, live_server, "west-dispatcher", "dispatcher", STREET, "/map")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        assert STREET in page.inner_text("#panel .account")  # who is signed in, and where

        # the first view is the street's, not the city's: centred on it, the whole of it in sight
        view = page.evaluate("() => { const b = gridmap.map.getBounds(), c = gridmap.map.getCenter();"
                             " return [c.lng, c.lat, b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; }")
        assert view[0] == pytest.approx(XQ, abs=0.003) and view[1] == pytest.approx(YM, abs=0.003)
        assert shapely.box(*view[2:]).contains(box(X0, Y0, XM, Y1))

        # every level it shows: the drawn cells and every tile's cells are the west street's, though tiles
        # over the east street were asked for
        first = page.evaluate("() => gridmap.state.level")
        assert first == 1
        seen = {1: set(drawn(page))}
        for level in (0, 2, 3):
            show_level(page, level)
            seen[level] = set(drawn(page))
        codes, asked = tiles_of(page, [u for u in page.asked if "/tiles/" in u])
        for level in range(4):
            assert seen[level] <= WEST[level], level
            assert codes.get(level, set()) == WEST[level], level
            assert any(t.intersects(EAST_BOX.buffer(-1e-4)) for t in asked[level]), level
        assert seen[3] and seen[2] and seen[1] == {STREET}
        assert OUT_GRID not in page.inner_text("body")

        # at the unit grids: in the east street there is nothing to click, inside a cell that opens its card
        assert not hit_cell(page, *OUT_POINT) and hit_cell(page, *IN_POINT)
        click_at(page, *IN_POINT)
        page.wait_for_selector(f"#cell[data-code='{IN_GRID}']:not([hidden])", timeout=20000)
        # the card of a cell outside is not to be had, by any code
        for code in (OUT_GRID, OTHER_STREET, "410105"):
            status, body = fetch(page, f"/api/v1/cells/{code}")
            assert status == 404 and "东街道" not in body and "金水区" not in body, (code, body)

        # the live feed: the backlog holds the report inside and not the one outside …
        for p in (page, city):
            p.wait_for_selector("#live-state.on", timeout=10000)
        page.wait_for_selector(f'#feed li[data-id="{world["in"]}"]', timeout=FEED_WAIT_MS)
        city.wait_for_selector(f'#feed li[data-id="{world["out"]}"]', timeout=FEED_WAIT_MS)
        assert page.locator(f'#feed li[data-id="{world["out"]}"]').count() == 0
        # … and of two reports posted now, outside first, only the inside one reaches the street user,
        # while the city-wide viewer gets both (the stream keeps their order: the outside one would be there)
        outside = post_report(live_server, admin_headers, OUT_POINT, "东街道新上报")
        inside = post_report(live_server, admin_headers, IN_POINT, "西街道新上报")
        for public_id in (outside, inside):
            city.wait_for_selector(f'#feed li[data-id="{public_id}"]', timeout=FEED_WAIT_MS)
        page.wait_for_selector(f'#feed li[data-id="{inside}"]', timeout=FEED_WAIT_MS)
        assert page.locator(f'#feed li[data-id="{outside}"]').count() == 0
        assert outside not in page.inner_text("#feed")
        assert page.evaluate("() => gridmap.lastLive.data.id") == inside

        not_found = [(404, f"/api/v1/cells/{code}") for code in (OUT_GRID, OTHER_STREET, "410105")]
        assert_clean(page, *not_found)
        assert_clean(city)
    finally:
        for p in (page, city):
            if p is not None:
                p.context.close()


# --- the grid page --------------------------------------------------------------------------------------

def test_the_grid_page_of_a_street_user_draws_only_its_street(browser, app, live_server, active):  # noqa: F811
    page = scoped_page(browser, app, live_server, "west-viewer", "viewer", STREET, "/")
    try:
        grids = []
        page.on("response", lambda r: "/api/v1/grids" in r.url and grids.append(r))
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        # the first view is its street's
        center = page.evaluate("() => gridmap.map.getCenter()")
        assert center["lng"] == pytest.approx(XQ, abs=0.003) and center["lat"] == pytest.approx(YM, abs=0.003)
        # close enough for every level, over both streets
        page.evaluate(f"() => gridmap.map.setView([{YM}, {XM}], 13, {{animate: false}})")
        page.wait_for_selector("body[data-ready=true]", timeout=10000)  # the view's cells of every level
        layers = page.evaluate("""() => { const out = {};
            gridmap.map.eachLayer(l => { if (l.feature) (out[l.feature.properties.level] ||= []).push(
                l.feature.properties.code); }); return out; }""")
        assert {int(k): set(v) for k, v in layers.items()} == {1: WEST[1], 2: WEST[2], 3: WEST[3]}
        answered = set()
        for r in grids:
            assert r.status == 200, r.url
            answered |= {f["properties"]["code"] for f in r.json()["features"]}
        assert answered and answered <= set().union(*WEST.values())
        assert any("bbox" in r.url and "level=3" in r.url for r in grids)  # asked for the view, over both
        click_at(page, *IN_POINT)
        page.wait_for_selector("#cell:not([hidden])")
        assert IN_GRID in page.inner_text("#cell")
        assert_clean(page)
    finally:
        page.context.close()


# --- the planner ----------------------------------------------------------------------------------------

def test_a_street_planner_edits_only_its_street_and_sees_the_refusal(  # noqa: F811
        browser, app, client, live_server, world):  # noqa: F811
    draft = world["draft"]
    sw2 = "410105001001002"  # the west street's unit grid at its south-east corner: it touches the east street
    page = scoped_page(browser, app, live_server, "west-planner", "planner", STREET, "/planner")
    try:
        loaded = []
        page.on("response", lambda r: re.search(r"/api/v1/versions/\d+/cells\?", r.url) and loaded.append(r))
        assert page.input_value("#version") == str(draft)
        # close enough for unit grids, over both streets: only the west street's are loaded and drawn
        page.evaluate(f"() => planner.map.setView([{(Y0 + YM) / 2}, {XM}], 13, {{animate: false}})")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        page.wait_for_function("codes => JSON.stringify([...planner.S.features.keys()].sort()) === "
                               "JSON.stringify(codes)", arg=sorted(WEST[3]), timeout=10000)
        for level in (2, 1, 0):  # the coarser levels: the street's communities, the street, nothing above it
            with page.expect_request_finished(lambda r: "/cells?" in r.url and f"level={level}&" in r.url):
                page.click(f"#levels button[data-level='{level}']")
            page.wait_for_function("codes => JSON.stringify([...planner.S.features.keys()].sort()) === "
                                   "JSON.stringify(codes)", arg=sorted(WEST[level]), timeout=5000)
        bboxes = []
        for r in loaded:
            assert r.status == 200, r.url
            codes = {f["id"] for f in r.json()["features"]}
            assert codes <= set().union(*WEST.values()), codes
            bboxes.append(shapely.box(*map(float, re.search(r"bbox=([^&]+)", r.url).group(1)
                                           .replace("%2C", ",").split(","))))
        assert any(b.intersects(EAST_BOX) for b in bboxes)  # the east street was in view

        # an edit inside saves
        page.click("#levels button[data-level='3']")
        page.wait_for_function(f"() => planner.S.level === 3 && planner.S.features.has('{sw2}')", timeout=10000)
        page.evaluate(f"() => planner.select('{IN_GRID}', false)")
        page.wait_for_selector("#cell:not([hidden])")
        page.fill("#cell input[name=name]", "西街道幸福里网格")
        page.click("#cell button[type=submit]")
        page.wait_for_function("() => document.getElementById('status').textContent.includes('✓')", timeout=10000)
        assert cell_props(client, draft, IN_GRID)["name"] == "西街道幸福里网格"

        # dragging the corner the south-east grid shares with the east street, shared boundaries moving
        # together: refused, said so on the page, nothing changed
        assert page.is_checked("#shared")
        page.evaluate(f"() => planner.select('{sw2}', false)")
        page.wait_for_selector(".marker-icon", timeout=5000)
        drag(page, (XM, YM), (XM - 0.004, YM))
        page.wait_for_function("() => document.getElementById('status').textContent.includes('Move vertex:')",
                               timeout=10000)
        said = page.inner_text("#status")
        assert OUT_GRID in said and "outside your scope" in said and "✓" not in said, said
        assert cell_props(client, draft, sw2)["revision"] == 1
        assert cell_props(client, draft, "410105002001001")["revision"] == 1
        # the drawing is put back as the server has it, not left where the refused drag put it
        corner = page.evaluate(f"""() => planner.S.layers.get('{sw2}').getLatLngs().flat(3)
                                   .some(p => Math.abs(p.lng - {XM}) < 1e-9 && Math.abs(p.lat - {YM}) < 1e-9)""")
        assert corner

        # a request the page would never send, from its own context with its CSRF token: refused alike
        status, body = fetch(page, f"/api/v1/versions/{draft}/cells/{OUT_GRID}", "PUT",
                             {"revision": 1, "name": "越界"})
        assert status == 404 and "东街道" not in body
        assert cell_props(client, draft, OUT_GRID)["name"] != "越界"
        assert_clean(page, (403, f"/api/v1/versions/{draft}/move-vertex"),
                     (404, f"/api/v1/versions/{draft}/cells/{OUT_GRID}"))
    finally:
        page.context.close()


def cell_props(client, draft, code):
    r = client.get(f"/api/v1/versions/{draft}/cells?codes={code}")
    assert r.status_code == 200, r.json
    return r.json["features"][0]["properties"]


# --- the worklist, the case pages, signing out ----------------------------------------------------------

def test_a_street_user_opens_its_cases_not_the_others_and_signs_out(browser, app, live_server, world):  # noqa: F811
    inside, outside = world["in"], world["out"]
    page = scoped_page(browser, app, live_server, "west-dispatcher", "dispatcher", STREET,
                       f"/worklist?unit=grid:{IN_GRID}&scope=mine")
    try:
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        ids = page.locator("#worklist tbody tr").evaluate_all("rs => rs.map(r => r.dataset.id)")
        assert inside in ids and outside not in ids
        # the worklist of the grid outside, asked for by name: nothing of it
        page.goto(f"{live_server}/worklist?unit=grid:{OUT_GRID}&scope=mine")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        assert outside not in page.content()
        assert page.locator("#worklist tbody tr").count() == 0

        # the case inside opens, from the worklist's link
        page.goto(f"{live_server}/worklist?unit=grid:{IN_GRID}&scope=mine")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        page.click(f"#worklist a[href='/cases/{inside}']")
        page.wait_for_url(f"**/cases/{inside}")
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
        assert page.inner_text("#case-id") == inside and IN_GRID in page.inner_text("#cells")

        # the case outside: the 404 page, with nothing of the case but the id asked for
        answer = page.goto(f"{live_server}/cases/{outside}")
        assert answer.status == 404
        assert "No such case" in page.inner_text("h1") and outside in page.inner_text("#missing")
        html = page.content()
        assert page.locator("#case-data, #timeline, #act").count() == 0
        assert "matrix" not in html and OUT_GRID not in html and OTHER_STREET not in html

        # out through the page's button: back at the sign-in form, and the session is gone
        assert page.inner_text("form.account button") == "退出登录"
        page.click("form.account button")
        page.wait_for_url(f"{live_server}/login")
        assert page.locator("#login input[name=password]").count() == 1
        status, _ = fetch(page, "/api/v1/me")
        assert status == 401
        assert page.goto(f"{live_server}/cases/{inside}").url.startswith(f"{live_server}/login?next=/cases/")
        assert_clean(page, (404, f"/cases/{outside}"), (401, "/api/v1/me"))
    finally:
        page.context.close()


def test_signing_out_of_the_live_map_and_the_grid_page(browser, app, live_server, active, stop_live):  # noqa: F811
    page = scoped_page(browser, app, live_server, "west-viewer", "viewer", STREET, "/map")
    try:
        for landing in ("/map", "/"):
            if landing == "/":
                sign_in_through_the_form(page, live_server, "west-viewer", landing)
            page.wait_for_selector("body[data-ready=true]", timeout=20000)
            account = page.locator("form.account")
            assert STREET in account.inner_text() and account.locator("button").inner_text() == "退出登录"
            account.locator("button").click()
            page.wait_for_url(f"{live_server}/login")
            status, _ = fetch(page, "/api/v1/me")
            assert status == 401, landing
        assert_clean(page, (401, "/api/v1/me"))
    finally:
        page.context.close()
