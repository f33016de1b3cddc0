"""``/tiles/<level>/<z>/<x>/<y>.pbf``: cells with their incident counts as Mapbox vector tiles, decoded with
a real MVT decoder, over the fixture partition (active) and reports made through the API."""
import datetime as dt
import math

import mapbox_vector_tile
import numpy as np
import pytest

import fixtures
from gis import crs, tiles
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

CST = dt.timezone(dt.timedelta(hours=8))
FRIDAY = dt.datetime(2026, 11, 20, tzinfo=CST)  # a working Friday
SW_GRID, NE_GRID = "410105001001001", "410105002002002"


def tile_of(lon, lat, z):
    """The XYZ tile holding a point."""
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


# z 10 holds the whole fixture district in one tile
Z = 10
X, Y = tile_of(fixtures.X0, fixtures.Y0, Z)
assert (X, Y) == tile_of(fixtures.X1, fixtures.Y1, Z)


def tile_features(client, level, z, x, y, query=""):
    """The decoded features of one tile (``[]`` for a 204)."""
    r = client.get(f"/tiles/{level}/{z}/{x}/{y}.pbf{query}")
    if r.status_code == 204:
        return []
    assert r.status_code == 200, r.data
    assert r.mimetype == "application/vnd.mapbox-vector-tile"
    layer = mapbox_vector_tile.decode(r.data)["cells"]
    assert layer["extent"] == 4096
    return layer["features"]


def features(client, level, query="", z=None):
    """``{code: properties}`` of the cells in the tiles over the district, at z 10 or the level's least zoom;
    a cell in several tiles has the same properties in each."""
    z = max(Z, tiles.MIN_ZOOM[level]) if z is None else z
    (x0, y1), (x1, y0) = tile_of(fixtures.X0, fixtures.Y0, z), tile_of(fixtures.X1, fixtures.Y1, z)
    out = {}
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            found = tile_features(client, level, z, x, y, query)
            assert len({f["properties"]["code"] for f in found}) == len(found)
            for f in found:
                assert out.setdefault(f["properties"]["code"], f["properties"]) == f["properties"]
    return out


def report(client, category, lon, lat, when):
    r = client.post("/api/v1/reports", json={"category": category, "lon": lon, "lat": lat,
                                             "reported_at": when.isoformat()})
    assert r.status_code == 201, r.json
    return r.json["id"]


def act(client, case_id, action, by, version, **fields):
    body = {"action": action, "version": version, "actor": {"name": "张三", "unit": by}, **fields}
    r = client.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert r.status_code == 200, r.json


@pytest.fixture
def reports(client, active):  # noqa: F811
    """Three reports in the south-west unit grid, one in the north-east one; the first made overdue."""
    sw, ne = (fixtures.X0 + 0.01, fixtures.Y0 + 0.01), (fixtures.X1 - 0.01, fixtures.Y1 - 0.01)
    late = report(client, "0102", *sw, FRIDAY + dt.timedelta(hours=9))  # exposed garbage: 2 working hours
    act(client, late, "open", f"grid:{SW_GRID}", 0, at=(FRIDAY + dt.timedelta(hours=9, minutes=10)).isoformat())
    act(client, late, "dispatch", f"grid:{SW_GRID}", 1, unit_kind="department",
        at=(FRIDAY + dt.timedelta(hours=9, minutes=30)).isoformat())  # due Friday 11:30: long past
    report(client, "0101", *sw, FRIDAY + dt.timedelta(hours=10))
    report(client, "0401", *sw, FRIDAY - dt.timedelta(hours=12))  # Thursday noon
    report(client, "0102", *ne, FRIDAY + dt.timedelta(hours=11))
    return late


def test_the_tiles_over_the_district_hold_exactly_its_cells(client, active):  # noqa: F811
    for level in range(4):
        cells = features(client, level)
        assert set(cells) == {code for code, *_ in fixtures.cells(level)}
    cells = features(client, 3)
    names = {code: name for code, name, *_ in fixtures.cells(3)}
    for code, p in cells.items():
        assert p["name"] == names[code] and p["level"] == 3
        assert 10 < p["area_km2"] < 14  # 0.025° × 0.05° at 34.7° N
        assert (p["count"], p["per_km2"], p["open"], p["overdue"]) == (0, 0, 0, 0)
    headers = client.get(f"/tiles/0/{Z}/{X}/{Y}.pbf").headers
    assert headers["Cache-Control"].endswith("max-age=30")


def test_a_deeper_tile_holds_only_the_cells_it_touches(client, active):  # noqa: F811
    z = 14
    x, y = tile_of(fixtures.X0 + 0.001, fixtures.Y0 + 0.001, z)  # the district's south-west corner
    assert [f["properties"]["code"] for f in tile_features(client, 3, z, x, y)] == [SW_GRID]


def test_counts_follow_the_routing(client, reports):
    cells = features(client, 3)
    sw = cells[SW_GRID]
    assert (sw["count"], sw["open"], sw["overdue"]) == (3, 3, 1)
    assert sw["per_km2"] == pytest.approx(3 / sw["area_km2"], rel=1e-3)
    assert (cells[NE_GRID]["count"], cells[NE_GRID]["overdue"]) == (1, 0)
    assert sum(p["count"] for p in cells.values()) == 4
    streets = features(client, 1)
    assert {code: p["count"] for code, p in streets.items()} == {"410105001": 3, "410105002": 1}
    assert features(client, 0)["410105"]["count"] == 4


@pytest.mark.parametrize("query, sw_count, ne_count", [
    ("?category=01", 2, 1),
    ("?category=0102", 1, 1),
    ("?category=0101,04", 2, 0),
    ("?status=overdue", 1, 0),
    ("?status=dispatched", 1, 0),
    ("?status=reported", 2, 1),
    ("?status=open", 3, 1),
    ("?status=closed", 0, 0),
    ("?status=overdue,reported", 3, 1),
    ("?since=2026-11-20", 2, 1),                       # China midnight
    ("?until=2026-11-20", 1, 0),
    ("?since=2026-11-20T09:30", 1, 1),
    ("?since=2026-11-20T01:30Z&until=2026-11-20T02:30Z", 1, 0),  # 09:30–10:30 China time
    ("?since=2026-11-20&category=01&status=reported", 1, 1),
])
def test_filters(client, reports, query, sw_count, ne_count):
    cells = features(client, 3, query)
    assert (cells[SW_GRID]["count"], cells[NE_GRID]["count"]) == (sw_count, ne_count)
    assert sum(p["count"] for p in cells.values()) == sw_count + ne_count


def test_open_and_overdue_are_of_the_matching_incidents(client, reports):
    sw = features(client, 3, "?status=reported")[SW_GRID]
    assert (sw["count"], sw["open"], sw["overdue"]) == (2, 2, 0)


def test_a_named_version(client, reports):
    assert features(client, 3, "?version=1")[SW_GRID]["count"] == 3
    r = client.get(f"/tiles/0/{Z}/{X}/{Y}.pbf?version=9")
    assert r.status_code == 404 and "grid version 9 does not exist" in r.json["message"]


def test_a_tile_away_from_the_city_is_204_and_empty(client, active):  # noqa: F811
    x13, y13 = tile_of(fixtures.X0, fixtures.Y0, 13)
    for level, z, x, y in [(3, 13, x13 + 9, y13), (0, Z, X, Y - 2), (0, 16, 0, 0)]:
        r = client.get(f"/tiles/{level}/{z}/{x}/{y}.pbf")
        assert r.status_code == 204 and r.data == b""
        assert r.headers["Cache-Control"].endswith("max-age=30")


@pytest.mark.parametrize("path, message", [
    ("/tiles/4/10/0/0.pbf", "level must be between 0 (district) and 3 (unit grid); got 4"),
    ("/tiles/-1/10/0/0.pbf", "level must be between 0 (district) and 3 (unit grid); got -1"),
    ("/tiles/a/10/0/0.pbf", "level must be a whole number; got 'a'"),
    ("/tiles/3/23/0/0.pbf", "zoom z must be between 0 and 22; got 23"),
    ("/tiles/3/-1/0/0.pbf", "zoom z must be between 0 and 22; got -1"),
    ("/tiles/3/2/4/0.pbf", "x must be between 0 and 3 at zoom 2; got 4"),
    ("/tiles/3/2/0/4.pbf", "y must be between 0 and 3 at zoom 2; got 4"),
    ("/tiles/3/2/-1/0.pbf", "x must be between 0 and 3 at zoom 2; got -1"),
    ("/tiles/3/2/0/-1.pbf", "y must be between 0 and 3 at zoom 2; got -1"),
    ("/tiles/3/12/3340/1625.pbf", "level 3 (unit grid) tiles start at zoom 13, where its cells become big enough"),
    ("/tiles/0/10/835/404.pbf?crs=bd09", "crs must be one of wgs84, gcj02; got 'bd09'"),
    ("/tiles/0/10/835/404.pbf?crs=EPSG:3857", "crs must be one of wgs84, gcj02; got 'EPSG:3857'"),
    ("/tiles/0/10/835/404.pbf?since=yesterday", "since must be an ISO 8601 date or date-time; got 'yesterday'"),
    ("/tiles/0/10/835/404.pbf?until=2026-13-01", "until must be an ISO 8601 date or date-time"),
    ("/tiles/0/10/835/404.pbf?since=2026-11-20&until=2026-11-19", "dates in the wrong order"),
    ("/tiles/0/10/835/404.pbf?status=lost", "status 'lost' is not one of open, overdue, reported"),
    ("/tiles/0/10/835/404.pbf?category=1", "category '1' is not a subclass (4 digits) or class (2 digits) code"),
    ("/tiles/0/10/835/404.pbf?version=x", "version must be a whole number; got 'x'"),
])
def test_bad_input_is_400_saying_why(client, active, path, message):  # noqa: F811
    r = client.get(path)
    assert r.status_code == 400, r.data
    assert r.json["error"] == "BadInput" and message in r.json["message"]


def test_incidents_routed_against_an_older_version_count_by_code(client, runner, reports, tmp_path):
    from test_grid_import import import_level, run

    for level in range(4):  # the same partition again, as version 2
        path = fixtures.write(tmp_path / f"v2_l{level}.geojson", level)
        import_level(runner, path, level, *(["--version", 2] if level else []))
    assert run(runner, "grid", "activate", 2, "--commit").exit_code == 0
    cells = features(client, 3)  # version 2, now active; the incidents still point at version 1's cells
    assert (cells[SW_GRID]["count"], cells[SW_GRID]["overdue"], cells[NE_GRID]["count"]) == (3, 1, 1)
    assert features(client, 1, "?category=01&version=1")["410105001"]["count"] == 2


# --- least zoom per level ----------------------------------------------------------------------------------

@pytest.mark.parametrize("level, least", [(0, 7), (1, 9), (2, 11), (3, 13)])
def test_a_level_has_tiles_from_its_least_zoom_on(client, active, level, least):  # noqa: F811
    assert tiles.MIN_ZOOM[level] == least
    x, y = tile_of(fixtures.XM, fixtures.YM, least)
    assert tile_features(client, level, least, x, y)  # the district's middle: a cell of every level
    x, y = tile_of(fixtures.XM, fixtures.YM, least - 1)
    r = client.get(f"/tiles/{level}/{least - 1}/{x}/{y}.pbf")
    assert r.status_code == 400, r.data
    name = ("district", "street", "community", "unit grid")[level]
    assert f"level {level} ({name}) tiles start at zoom {least}" in r.json["message"]


# --- GCJ-02 tiles (AMap/Gaode base maps) -----------------------------------------------------------------

def vertices(feature):
    """Every vertex of a decoded (Multi)Polygon, as an (n, 2) array of tile units, y up."""
    out, todo = [], [feature["geometry"]["coordinates"]]
    while todo:
        item = todo.pop()
        if isinstance(item[0], (int, float)):
            out.append(item)
        else:
            todo.extend(item)
    return np.array(out, dtype=float)


def tile_units(lon, lat, z, x, y):
    """Where a point falls in tile z/x/y, in units of its 4096 extent, y up as the decoder gives it."""
    x0, y0, x1, _ = tiles.tile_bounds(z, x, y)
    mx, my = tiles.to_mercator(lon, lat)
    return np.array([mx - x0, my - y0]) / (x1 - x0) * 4096


@pytest.mark.parametrize("level, z", [(0, 10), (1, 12), (3, 14)])
def test_a_gcj02_tile_holds_the_cells_shifted_onto_it(client, active, level, z):  # noqa: F811
    code, _, _, polygon = fixtures.cells(level)[0]
    centroid = polygon.centroid
    lon, lat = crs.from_wgs84(centroid.x, centroid.y, "gcj02")
    assert 300 < math.dist(tiles.to_mercator(lon, lat), tiles.to_mercator(centroid.x, centroid.y)) < 800
    x, y = tile_of(lon, lat, z)
    assert code in {f["properties"]["code"] for f in tile_features(client, level, z, x, y, "?crs=gcj02")}


@pytest.mark.parametrize("tiling", ["wgs84", "gcj02"])
def test_a_gcj02_vertex_lands_where_gcj02_puts_it(client, active, tiling):  # noqa: F811
    """The south-west corner of the south-west unit grid, at z 16 (a tile unit is 15 cm there). Within one
    unit: MVT rounds each coordinate to a whole unit (≤ 0.71 units off), the affine map is off by at most
    0.21 units at z 16 (test below); the GCJ-02 offset itself is ~4,600 units, so a tile that did not shift
    would miss by far."""
    lon, lat = crs.from_wgs84(fixtures.X0, fixtures.Y0, tiling)
    x, y = tile_of(lon, lat, 16)
    found = {f["properties"]["code"]: f for f in tile_features(client, 3, 16, x, y, f"?crs={tiling}")}
    corner = vertices(found[SW_GRID])
    miss = np.hypot(*(corner - tile_units(lon, lat, 16, x, y)).T).min()
    assert miss <= 1.0


CITIES = [(113.65, 34.76), (116.40, 39.90), (113.26, 23.13), (87.62, 43.82), (126.63, 45.75), (104.07, 30.67)]


@pytest.mark.parametrize("z", range(8, 19))
def test_the_gcj02_affine_map_is_within_a_third_of_a_pixel(z):
    """Tiles over six cities, each checked on a 33 × 33 grid of its buffered area against the exact transform
    (gis.crs); measured worst over China: 0.34 px (5.4 of 4096 units) at z 11 (gis.tiles.tile_placement)."""
    worst = 0.0
    for lon, lat in CITIES:
        x, y = tile_of(lon, lat, z)
        _, (a, b, d, e, xoff, yoff) = tiles.tile_placement(tiles.TileAddress(0, z, x, y, "gcj02"))
        x0, y0, x1, y1 = tiles.tile_bounds(z, x, y, tiles.BUFFER / tiles.EXTENT)
        gx, gy = (v.ravel() for v in np.meshgrid(np.linspace(x0, x1, 33), np.linspace(y0, y1, 33)))
        wx, wy = tiles.to_mercator(*crs.to_wgs84(*tiles.from_mercator(gx, gy), "gcj02"))
        miss = np.hypot(a * wx + b * wy + xoff - gx, d * wx + e * wy + yoff - gy).max()
        worst = max(worst, miss / (tiles.tile_bounds(z, x, y)[2] - tiles.tile_bounds(z, x, y)[0]) * 256)
    assert worst < 0.4


def test_outside_china_a_gcj02_tile_is_the_wgs84_tile():
    london = tiles.TileAddress(0, 13, *tile_of(-0.1, 51.5, 13), crs="gcj02")
    box, (a, b, d, e, xoff, yoff) = tiles.tile_placement(london)
    assert (a, b, d, e) == pytest.approx((1, 0, 0, 1), abs=1e-9) and abs(xoff) < 1e-3 and abs(yoff) < 1e-3
    assert box == pytest.approx(tiles.tile_placement(tiles.TileAddress(0, 13, london.x, london.y))[0], abs=1e-9)
