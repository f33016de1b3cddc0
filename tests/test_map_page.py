"""The command room's live map, ``/map``, in a real headless Chromium over a real socket: the choropleth and
its legend from local vector tiles, a report posted through the API arriving live, drill-down and
breadcrumbs, a cell's card, the language switch, clustered markers; nothing loaded from any other host.

Screenshots are kept in ``GRIDMAP_ARTIFACTS`` (``.gridmap/artifacts`` by default) for a person to look at.
"""
import datetime as dt
import os
import time
from pathlib import Path

import pytest
import requests

import fixtures
from gis.settings import PROJECT_ROOT
from test_browser import browser, page  # noqa: F401  (fixtures: Debian's Chromium, a page that logs errors)
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

pytestmark = pytest.mark.browser
ARTIFACTS = Path(os.environ.get("GRIDMAP_ARTIFACTS") or PROJECT_ROOT / ".gridmap" / "artifacts")
WEST_STREET_POINT = (fixtures.X0 + 0.012, fixtures.Y0 + 0.012)   # in 410105001 / …001001 / …001001001
# the city-wide admin's Authorization header for requests to the live server (filled for each test)
AUTH = {}


@pytest.fixture(autouse=True)
def _auth(admin_headers):
    AUTH.update(admin_headers)
    yield
    AUTH.clear()


def post_report(base, lon, lat, category="0102"):
    r = requests.post(f"{base}/api/v1/reports", timeout=10, headers=AUTH, json={
        "category": category, "lon": lon, "lat": lat,
        "reported_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def open_map(page, base, query=""):  # noqa: F811
    page.goto(f"{base}/map{query}")
    try:
        page.wait_for_selector("body[data-ready=true]", timeout=20000)
    except Exception:
        raise AssertionError(f"the map was not drawn; page errors: {page.errors}") from None


def drawn(page):  # noqa: F811
    """``{code: properties}`` of the cells drawn now."""
    return page.evaluate("() => Object.fromEntries([...gridmap.state.props.values()].map(p => [p.code, p]))")


def wait_for_level(page, level):  # noqa: F811
    """Until the cells of ``level`` are drawn."""
    page.wait_for_function(f"() => gridmap.state.level === {level} && gridmap.state.drawn === gridmap.state.rev "
                           f"&& [...gridmap.state.props.values()].some(p => p.level === {level})", timeout=10000)


def click_at(page, lon, lat):  # noqa: F811
    point = page.evaluate(f"() => gridmap.map.latLngToContainerPoint([{lat}, {lon}])")
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def keep_screenshot(page, name):  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_the_map_draws_the_streets_with_a_legend(page, live_server, active):  # noqa: F811
    for _ in range(3):
        post_report(live_server, *WEST_STREET_POINT)
    open_map(page, live_server)
    assert page.evaluate("() => gridmap.state.level") == 1
    cells = drawn(page)
    assert set(cells) == {"410105001", "410105002"}
    assert (cells["410105001"]["count"], cells["410105002"]["count"]) == (3, 0)
    legend = page.inner_text("#legend")
    assert "上报数" in legend and "街道/乡镇" in legend
    assert page.locator("#legend li").count() >= 2
    assert page.get_attribute("html", "lang") == "zh-CN"
    keep_screenshot(page, "map.png")
    assert page.errors == []
    assert page.outside == []


def test_a_report_posted_through_the_api_appears_within_two_seconds(page, live_server, active):  # noqa: F811
    open_map(page, live_server)
    page.wait_for_selector("#live-state.on", timeout=10000)
    before = drawn(page)["410105001"]["count"]
    t0 = time.monotonic()
    public_id = post_report(live_server, *WEST_STREET_POINT)
    page.wait_for_selector(f'#feed li[data-id="{public_id}"]', timeout=2000)
    page.wait_for_function(f"() => [...gridmap.state.props.values()].some(p => p.code === '410105001' "
                           f"&& p.count === {before + 1})", timeout=2000)
    assert time.monotonic() - t0 < 2
    assert "新上报" in page.inner_text(f'#feed li[data-id="{public_id}"]')
    # the classes were all zero: the page asks for them again and draws the street in a class of its own
    assert page.evaluate("() => gridmap.state.breaks") == [0]
    page.wait_for_function("() => gridmap.state.breaks.some(b => b > 0) && gridmap.state.drawn === gridmap.state.rev",
                           timeout=10000)
    assert drawn(page)["410105001"]["count"] == 1  # from the new tiles: counted once
    assert page.inner_text("#legend").split("\n")[-2:] == ["0", "1"]
    assert page.errors == []
    assert page.outside == []


def test_drill_down_from_street_to_community_and_back(page, live_server, active):  # noqa: F811
    post_report(live_server, *WEST_STREET_POINT)
    open_map(page, live_server)
    click_at(page, *WEST_STREET_POINT)
    wait_for_level(page, 2)
    assert page.inner_text("#crumbs") == "全市 › 西街道"
    card = page.inner_text("#cell")
    assert "西街道" in card and "410105001" in card
    # the communities of the other street are drawn but greyed: the classes count only the chosen street's
    cells = drawn(page)
    assert {"410105001001", "410105001002"} <= set(cells)
    click_at(page, *WEST_STREET_POINT)  # a community: on to its unit grids
    wait_for_level(page, 3)
    assert page.inner_text("#crumbs") == "全市 › 西街道 › 西街道南社区"
    page.click("#crumbs a[data-crumb='0']")  # back up to the street's communities
    wait_for_level(page, 2)
    assert page.inner_text("#crumbs") == "全市 › 西街道"
    keep_screenshot(page, "map-drilled.png")
    assert page.errors == []
    assert page.outside == []


def test_a_unit_grids_card_names_its_staff_and_counts(page, live_server, active):  # noqa: F811
    post_report(live_server, *WEST_STREET_POINT)
    open_map(page, live_server)
    page.click("#levels button[data-level='3']")
    wait_for_level(page, 3)
    click_at(page, *WEST_STREET_POINT)
    page.wait_for_selector("#cell:not([hidden])")
    card = page.inner_text("#cell")
    assert "西街道南社区第1网格" in card and "410105001001001" in card
    assert page.inner_text("#cell table.counts").split()[-4:] == ["1", "1", "0", "0"]  # total open overdue closed
    assert page.get_attribute("#cell a[href^='/worklist']", "href") == \
        "/worklist?unit=grid%3A410105001001001&scope=level"
    assert page.errors == []


def test_the_language_switch_turns_the_page_english_and_remembers(page, live_server, active):  # noqa: F811
    open_map(page, live_server)
    assert "实时动态" in page.inner_text("#feed-box h2")
    page.click("#languages a[data-lang='en']")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    assert "Live feed" in page.inner_text("#feed-box h2")
    assert "Reports" in page.inner_text("#legend")
    assert page.get_attribute("html", "lang") == "en"
    open_map(page, live_server)  # no ?lang: the cookie keeps English
    assert "Live feed" in page.inner_text("#feed-box h2")
    assert page.outside == []


def test_incidents_are_clustered_markers_at_close_zoom(page, live_server, active):  # noqa: F811
    for i in range(4):
        post_report(live_server, WEST_STREET_POINT[0] + i * 1e-4, WEST_STREET_POINT[1])
    open_map(page, live_server)
    assert page.evaluate("() => gridmap.markers.getLayers().length") == 0  # not at city zoom
    page.evaluate(f"() => gridmap.map.setView([{WEST_STREET_POINT[1]}, {WEST_STREET_POINT[0]}], 16)")
    page.wait_for_function("() => gridmap.markers.getLayers().length === 4", timeout=10000)
    assert page.locator(".cluster.open, .incident.open").count() >= 1
    assert page.errors == []
    assert page.outside == []


def test_a_gcj02_base_map_shifts_the_overlays_to_match(page, app, live_server, active):  # noqa: F811
    from gis import basemaps, crs

    # a "tile service" on the app itself, so that the page still asks no other host
    app.config["BASEMAP"] = basemaps.parse(f"gcj02:{live_server}/vendor/leaflet/images/layers.png?{{z}}/{{x}}/{{y}}",
                                           "test tiles")
    tiles = []
    page.on("request", lambda r: "/tiles/" in r.url and tiles.append(r.url))
    open_map(page, live_server)
    assert page.evaluate("() => gridmap.map.options.crs.code") == "GCJ02"
    assert tiles and all("crs=gcj02" in url for url in tiles)
    assert set(drawn(page)) == {"410105001", "410105002"}
    # a WGS84 point lands where plain Web Mercator puts its GCJ-02 position (gis/crs.py's formula)
    lon, lat = WEST_STREET_POINT
    (glon,), (glat,) = crs.from_wgs84([lon], [lat], "gcj02")
    shifted, expected = page.evaluate(f"""() => [gridmap.map.options.crs.latLngToPoint(L.latLng({lat}, {lon}), 16),
                                                 L.CRS.EPSG3857.latLngToPoint(L.latLng({glat}, {glon}), 16)]""")
    assert shifted == {"x": pytest.approx(expected["x"], abs=1e-3), "y": pytest.approx(expected["y"], abs=1e-3)}
    # and back: the inverse lands on the WGS84 point to ~1 mm
    back = page.evaluate(f"() => gcj02.gcjToWgs({glon}, {glat})")
    assert back == [pytest.approx(lon, abs=1e-8), pytest.approx(lat, abs=1e-8)]
    assert page.errors == []
    assert page.outside == []


def test_after_a_dropped_stream_the_page_gets_what_it_missed(page, app, live_server, active):  # noqa: F811
    app.config.update(LIVE_LIFETIME_S=1.0, LIVE_RETRY_MS=1500)  # every stream ends after a second
    open_map(page, live_server)
    page.wait_for_selector("#live-state.on", timeout=10000)
    page.wait_for_selector("#live-state.off", timeout=10000)  # the stream ended: the browser is between tries
    missed = [post_report(live_server, *WEST_STREET_POINT) for _ in range(3)]
    for public_id in missed:
        page.wait_for_selector(f'#feed li[data-id="{public_id}"]', timeout=10000)
    newest_first = page.evaluate("() => [...document.querySelectorAll('#feed li')].map(li => li.dataset.id)")
    assert newest_first[:3] == missed[::-1]
    assert drawn(page)["410105001"]["count"] == 3  # each counted once
    assert page.outside == []


def test_a_past_version_is_drawn_as_it_was(page, live_server, active, runner, tmp_path):  # noqa: F811
    from test_grid_import import import_level, run

    for level in range(4):  # the same partition again as version 2, without the east street's cells' names
        path = fixtures.write(tmp_path / f"v2_l{level}.geojson", level)
        import_level(runner, path, level, *(["--version", 2] if level else []))
    assert run(runner, "grid", "activate", 2, "--commit").exit_code == 0
    tiles = []
    page.on("request", lambda r: "/tiles/" in r.url and tiles.append(r.url))
    open_map(page, live_server, "?version=1")
    assert "网格版本 1：历史版本" in page.inner_text("#past")
    assert tiles and all("version=1" in url for url in tiles)
    assert set(drawn(page)) == {"410105001", "410105002"}
    open_map(page, live_server)  # the active one: no banner
    assert page.locator("#past").count() == 0
    r = requests.get(f"{live_server}/map?version=1&as_of=2026-01-01", headers=AUTH, timeout=10)
    assert r.status_code == 400 and "give version or as_of, not both" in r.json()["message"]
