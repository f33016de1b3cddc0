"""Time travel and version diffs: ``grid_store.version_as_of``, ``/api/v1/grids?as_of=``, ``gis.version_diff``,
``/api/v1/versions/<a>/diff/<b>`` and the page ``/versions/<a>/diff/<b>`` in a real headless Chromium.

Version 1 is the fixture partition; version 2 the same with, among the unit grids, the boundary between
410105001001001 and its east neighbour moved 0.005° east, 410105002002002 replaced by 410105002002003
(same square), 410105002001001 renamed, 410105002001002 made special with a population, and two changes that
are noise: one cell with extra vertices on its edges, one moved by 1e-8° (0.9 mm).
"""
import datetime as dt

import pyproj
import pytest
import shapely
from shapely.geometry import box, shape

import fixtures
from fixtures import X0, Y0, YM
from gis import grid_store, version_diff
from gis.errors import BadInput, NotFound
from test_browser import browser, page  # noqa: F401  (fixtures: Debian's Chromium, a page that logs errors)
from test_case_pages import console_errors
from test_grid_import import import_all, import_level, run
from test_map_page import keep_screenshot

WEST = X0 + 0.025            # the boundary between 410105001001001 and …002 in version 1
MOVED = WEST + 0.005         # … and in version 2
GROWN, SHRUNK = "410105001001001", "410105001001002"
REMOVED, ADDED = "410105002002002", "410105002002003"
RENAMED, MODIFIED = "410105002001001", "410105002001002"
NEW_NAME = "东街道南社区第1网格（更名）"
DENSIFIED, NUDGED = "410105001002001", "410105001002002"
GEOD = pyproj.Geod(ellps="WGS84")


def area(geom):
    """Ellipsoidal area in m², as PostGIS computes it (GeographicLib)."""
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def same_shape(geojson, geom):
    """Equal up to the 7 decimals of the GeoJSON."""
    return shapely.equals_exact(shapely.normalize(shape(geojson)), shapely.normalize(shapely.multipolygons([geom])),
                                tolerance=1e-7)


def level3_of_version_2():
    rows = []
    for code, name, parent, poly in fixtures.cells(3):
        x0, y0, x1, y1 = poly.bounds
        if code == GROWN:
            poly = box(x0, y0, MOVED, y1)
        elif code == SHRUNK:
            poly = box(MOVED, y0, x1, y1)
        elif code == RENAMED:
            name = NEW_NAME
        elif code == REMOVED:
            code = ADDED
        rows.append((code, name, parent, poly))
    return rows


@pytest.fixture
def two_versions(db, runner, tmp_path):
    """Version 1 (the fixture partition) and version 2 (a draft, changed as the module says)."""
    import_all(runner, tmp_path)
    for level in range(3):
        path = fixtures.write(tmp_path / f"v2-l{level}.geojson", level)
        import_level(runner, path, level, *(["--version", 2] if level else []))
    import_level(runner, fixtures.write(tmp_path / "v2-l3.geojson", 3, rows=level3_of_version_2()), 3,
                 "--version", 2)
    with db.cursor() as cur:
        cur.execute("update grid_cell set kind = 'special', population = 1200 where version_id = 2 and code = %s",
                    (MODIFIED,))
        cur.execute("update grid_cell set geom = ST_Multi(ST_Segmentize(geom, 0.001)) "
                    "where version_id = 2 and code = %s", (DENSIFIED,))
        cur.execute("update grid_cell set geom = ST_Translate(geom, 1e-8, 0) where version_id = 2 and code = %s",
                    (NUDGED,))
    return db


def diff(db, a=1, b=2, level=None, **tol):
    with db.cursor() as cur:
        return version_diff.diff(cur, a, b, level, **tol)


# --- the diff -----------------------------------------------------------------------------------------

def test_the_diff_names_every_change_and_nothing_else(two_versions):
    result = diff(two_versions)
    assert result["counts"] == {"added": 1, "removed": 1, "reshaped": 2, "renamed": 1, "modified": 1,
                                "unchanged": 10}
    fc = version_diff.as_geojson(result)
    assert fc["versions"] == [1, 2] and fc["counts"] == result["counts"]
    assert [(f["properties"]["change"], f["properties"]["code"]) for f in fc["features"]] == [
        ("reshaped", GROWN), ("gained", GROWN), ("reshaped", SHRUNK), ("lost", SHRUNK),
        ("renamed", RENAMED), ("modified", MODIFIED), ("removed", REMOVED), ("added", ADDED)]
    props = {(f["properties"]["change"], f["properties"]["code"]): f["properties"] for f in fc["features"]}
    assert all(p["level"] == 3 for p in props.values())
    assert props[("renamed", RENAMED)]["name"] == NEW_NAME
    assert props[("renamed", RENAMED)]["changed"] == {"name": ["东街道南社区第1网格", NEW_NAME]}
    assert props[("modified", MODIFIED)]["changed"] == {"kind": ["regular", "special"], "population": [None, 1200]}
    assert props[("reshaped", GROWN)]["changed"] == {}


def test_areas_before_after_and_the_pieces_gained_and_lost(two_versions):
    fc = version_diff.as_geojson(diff(two_versions))
    by = {(f["properties"]["change"], f["properties"]["code"]): f for f in fc["features"]}
    strip = box(WEST, Y0, MOVED, YM)
    before, after = area(box(X0, Y0, WEST, YM)), area(box(X0, Y0, MOVED, YM))

    grown = by[("reshaped", GROWN)]["properties"]
    assert grown["area_before_m2"] == pytest.approx(before, abs=0.1)
    assert grown["area_after_m2"] == pytest.approx(after, abs=0.1)
    assert grown["area_change_m2"] == pytest.approx(after - before, abs=0.2)
    assert grown["area_change_pct"] == pytest.approx(100 * (after - before) / before, abs=0.01)
    assert 19 < grown["area_change_pct"] < 21  # 0.005° of 0.025°
    assert grown["gained_m2"] == pytest.approx(area(strip), abs=0.1) and grown["lost_m2"] is None
    assert same_shape(by[("reshaped", GROWN)]["geometry"], box(X0, Y0, MOVED, YM))

    for change, code, sign in (("gained", GROWN, 1), ("lost", SHRUNK, -1)):
        piece = by[(change, code)]
        assert same_shape(piece["geometry"], strip)
        assert piece["properties"]["area_change_m2"] == pytest.approx(sign * area(strip), abs=0.1)
        assert piece["properties"]["area_before_m2"] is None and piece["properties"]["area_change_pct"] is None

    shrunk = by[("reshaped", SHRUNK)]["properties"]
    assert shrunk["area_change_m2"] == pytest.approx(-area(strip), abs=0.2)
    assert shrunk["lost_m2"] == pytest.approx(area(strip), abs=0.1) and shrunk["gained_m2"] is None

    removed, added = by[("removed", REMOVED)]["properties"], by[("added", ADDED)]["properties"]
    square = fixtures.cells(3)[-1][3]
    assert removed["area_after_m2"] is None and removed["area_change_pct"] == -100
    assert removed["area_change_m2"] == pytest.approx(-area(square), abs=0.1)
    assert added["area_before_m2"] is None and added["area_change_pct"] is None
    assert added["area_after_m2"] == pytest.approx(area(square), abs=0.1)
    assert same_shape(by[("removed", REMOVED)]["geometry"], square)  # a removed cell: its old shape


def test_noise_is_no_change_unless_the_tolerance_says_so(two_versions):
    # the nudged cell leaves 5 m² on each side, but 0.9 mm wide: an area threshold of 1 m² would call it reshaped
    with two_versions.cursor() as cur:
        cur.execute("select ST_Area(ST_SymDifference(a.geom, b.geom)::geography) as m2 from grid_cell a "
                    "join grid_cell b on b.code = a.code and b.version_id = 2 where a.version_id = 1 and a.code = %s",
                    (NUDGED,))
        assert 5 < cur.fetchone()["m2"] < 15
    strict = diff(two_versions, noise_m=0.0005)
    assert strict["counts"]["reshaped"] == 3
    nudged = next(c for c in strict["changes"] if c["code"] == NUDGED)
    assert nudged["change"] == "reshaped" and 4 < nudged["gained_m2"] < 8 and 4 < nudged["lost_m2"] < 8
    # extra vertices on the same edges are never a change
    assert DENSIFIED not in {c["code"] for c in strict["changes"]}


def test_one_level_and_a_version_against_itself(two_versions):
    assert diff(two_versions, level=3)["counts"] == {"added": 1, "removed": 1, "reshaped": 2, "renamed": 1,
                                                    "modified": 1, "unchanged": 3}
    streets = diff(two_versions, level=1)
    assert streets["changes"] == [] and streets["counts"]["unchanged"] == 2
    same = diff(two_versions, 2, 2)
    assert same["changes"] == [] and same["counts"]["unchanged"] == 15
    backwards = diff(two_versions, 2, 1)
    assert {(c["change"], c["code"]) for c in backwards["changes"]} >= {("added", REMOVED), ("removed", ADDED)}


def test_unknown_versions_and_levels(two_versions):
    with pytest.raises(NotFound, match="grid version 9 does not exist"):
        diff(two_versions, 1, 9)
    with pytest.raises(BadInput, match="level must be one of 0, 1, 2, 3; got 7"):
        diff(two_versions, level=7)


# --- the API ------------------------------------------------------------------------------------------

def test_the_diff_api(client, two_versions):
    r = client.get("/api/v1/versions/1/diff/2")
    assert r.status_code == 200 and r.mimetype == "application/geo+json"
    assert r.json["type"] == "FeatureCollection" and len(r.json["features"]) == 8
    assert r.json["counts"]["reshaped"] == 2
    r = client.get("/api/v1/versions/1/diff/2?level=2")
    assert r.status_code == 200 and r.json["features"] == [] and r.json["level"] == 2
    r = client.get("/api/v1/versions/2/diff/2")
    assert r.status_code == 200 and r.json["features"] == []


@pytest.mark.parametrize("url, status, message", [
    ("/api/v1/versions/1/diff/9", 404, "grid version 9 does not exist"),
    ("/api/v1/versions/9/diff/1", 404, "grid version 9 does not exist"),
    ("/api/v1/versions/1/diff/2?level=4", 400, "level must be between 0 and 3"),
    ("/api/v1/versions/1/diff/2?level=x", 400, "level must be a whole number"),
    ("/api/v1/versions/one/diff/2", 404, "not found"),
    ("/api/v1/grids?as_of=2026-13-01", 400, "as_of must be an ISO 8601 date"),
    ("/api/v1/grids?as_of=yesterday", 400, "as_of must be an ISO 8601 date"),
    ("/api/v1/grids?as_of=2026-11-01&version=1", 400, "version or as_of, not both"),
    ("/api/v1/versions?as_of=11/01/2026", 400, "as_of must be an ISO 8601 date"),
    ("/api/v1/versions?as_of=2026-11-01", 404, "none has been activated yet"),
])
def test_bad_requests_say_what_is_wrong(client, two_versions, url, status, message):
    r = client.get(url)
    assert r.status_code == status
    assert message in r.json["message"]


def test_the_openapi_document_describes_the_diff(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/v1/openapi.json").json
    validate(doc)
    assert "/api/v1/versions/{a}/diff/{b}" in doc["paths"]
    assert "as_of" in [p["name"] for p in doc["paths"]["/api/v1/grids"]["get"]["parameters"]]


# --- time travel --------------------------------------------------------------------------------------

CHINA = dt.timezone(dt.timedelta(hours=8))
FIRST = dt.datetime(2026, 10, 1, tzinfo=CHINA)
SWITCH = dt.datetime(2026, 11, 15, 10, tzinfo=CHINA)


@pytest.fixture
def history(two_versions, runner):
    """Version 1 active from 2026-10-01 to 2026-11-15 10:00 China time, version 2 since then."""
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    assert run(runner, "grid", "activate", 2, "--commit").exit_code == 0
    with two_versions.cursor() as cur:
        cur.execute("select id, status from grid_version order by id")
        assert [tuple(r.values()) for r in cur.fetchall()] == [(1, "retired"), (2, "active")]
        # activation stamps now(); known times make the answers deterministic
        cur.execute("update grid_version set activated_at = %s, retired_at = %s where id = 1", (FIRST, SWITCH))
        cur.execute("update grid_version set activated_at = %s where id = 2", (SWITCH,))
    return two_versions


@pytest.mark.parametrize("when, version", [
    (dt.date(2026, 10, 1), 1),                                    # midnight, China time: the first instant
    (dt.datetime(2026, 11, 1), 1),
    (dt.datetime(2026, 11, 15, 9, 59, 59), 1),
    (SWITCH, 2),                                                  # retired_at is exclusive, activated_at not
    (dt.datetime(2026, 11, 15, 1, 59, 59, tzinfo=dt.timezone.utc), 1),
    (dt.datetime(2026, 11, 15, 2, tzinfo=dt.timezone.utc), 2),
    (dt.datetime(2030, 1, 1), 2),                                 # still active
])
def test_version_as_of(history, when, version):
    with history.cursor() as cur:
        assert grid_store.version_as_of(cur, when)["id"] == version


def test_before_the_first_activation_there_is_no_version(history):
    with history.cursor() as cur, pytest.raises(NotFound, match=(
            r"no grid version was active at 2026-09-30 23:59:59\+08:00; "
            r"the first was activated at 2026-10-01 00:00:00\+08:00")):
        grid_store.version_as_of(cur, dt.datetime(2026, 9, 30, 23, 59, 59))


@pytest.mark.parametrize("as_of, version", [
    ("2026-10-01", 1), ("2026-11-01", 1), ("2026-11-15", 1), ("2026-11-15T09:59:59", 1),
    ("2026-11-15T10:00", 2), ("2026-11-15T02:00:00Z", 2), ("2026-11-15T01:59:59%2B00:00", 1), ("2030-01-01", 2),
])
def test_grids_and_versions_as_of(client, history, as_of, version):
    assert client.get(f"/api/v1/versions?as_of={as_of}").json["id"] == version
    r = client.get(f"/api/v1/grids?as_of={as_of}&level=3")
    assert r.status_code == 200 and r.json["version"] == version
    codes = {f["properties"]["code"] for f in r.json["features"]}
    assert (REMOVED in codes, ADDED in codes) == ((True, False) if version == 1 else (False, True))


def test_as_of_before_any_version_is_a_404_that_says_when_the_first_was(client, history):
    r = client.get("/api/v1/grids?as_of=2026-09-30")
    assert r.status_code == 404
    assert r.json["message"] == ("no grid version was active at 2026-09-30 00:00:00+08:00; "
                                 "the first was activated at 2026-10-01 00:00:00+08:00")
    assert client.get("/api/v1/versions").json[0]["id"] == 2  # without as_of: the list, as before


# --- the page -----------------------------------------------------------------------------------------

def test_the_page_of_an_unknown_version_is_a_404(client, two_versions):
    r = client.get("/versions/1/diff/9")
    assert r.status_code == 404
    assert "grid version 9 does not exist" in r.text


@pytest.mark.browser
def test_the_page_draws_the_changes_and_zooms_to_a_row(page, live_server, two_versions):  # noqa: F811
    page.set_viewport_size({"width": 1400, "height": 1000})  # the table below the map in the picture too
    page.goto(f"{live_server}/versions/1/diff/2")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    summary = page.inner_text("#summary")
    for text in ("新增 added 1", "删除 removed 1", "边界调整 reshaped 2", "改名 renamed 1", "属性变更 modified 1",
                 "未变 unchanged 10"):
        assert text in summary
    rows = page.eval_on_selector_all("#changes tbody tr", "rows => rows.map(r => [r.dataset.code, r.dataset.change])")
    assert rows == [[GROWN, "reshaped"], [SHRUNK, "reshaped"], [RENAMED, "renamed"], [MODIFIED, "modified"],
                    [REMOVED, "removed"], [ADDED, "added"]]
    assert "东街道南社区第1网格 → " + NEW_NAME in page.inner_text(f'#changes tr[data-code="{RENAMED}"]')
    assert "+20." in page.inner_text(f'#changes tr[data-code="{GROWN}"] [data-field=area_change_pct]')
    drawn = page.evaluate("""() => { const out = {}; gridmap.map.eachLayer(l => { if (l.feature) {
        const p = l.feature.properties; out[p.change + ' ' + p.code] = l.options.dashArray || ''; } }); return out; }""")
    assert drawn == {f"reshaped {GROWN}": "", f"gained {GROWN}": "", f"reshaped {SHRUNK}": "", f"lost {SHRUNK}": "3 3",
                     f"renamed {RENAMED}": "", f"modified {MODIFIED}": "", f"removed {REMOVED}": "6 4",
                     f"added {ADDED}": ""}
    keep_screenshot(page, "version-diff.png")

    zoom = page.evaluate("() => gridmap.map.getZoom()")
    page.click(f'#changes tr[data-code="{ADDED}"]')
    assert page.evaluate("() => gridmap.map.getZoom()") > zoom
    inside = page.evaluate(f"""() => gridmap.map.getBounds().pad(0.01).contains(
        gridmap.cells["{ADDED}"].getBounds())""")
    assert inside
    assert page.get_attribute(f'#changes tr[data-code="{ADDED}"]', "class") == "selected"
    assert page.errors == []
    assert page.outside == []


@pytest.mark.browser
def test_the_page_shows_the_apis_message_and_no_differences(page, live_server, two_versions):  # noqa: F811
    page.goto(f"{live_server}/versions/1/diff/2?level=7")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    assert "level must be between 0 and 3" in page.inner_text("#diff-status")
    page.goto(f"{live_server}/versions/1/diff/2?level=1")
    page.wait_for_selector("body[data-ready=true]", timeout=20000)
    assert "No differences" in page.inner_text("#diff-status")
    assert page.is_hidden("#changes")
    assert console_errors(page) == []
    assert page.outside == []
