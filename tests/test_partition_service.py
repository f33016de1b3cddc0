"""gridmap grid check / check-file / repair, and the problems and check-cell APIs, on a stored version."""
import json

import pytest
import shapely

import fixtures
from gis import crs
from test_grid_import import import_all, run

SHRINK = "ST_Transform(ST_Multi(ST_Buffer(ST_Transform(geom, 4547), %s, 'join=mitre')), 4326)"


@pytest.fixture
def version(db, runner, tmp_path):
    import_all(runner, tmp_path)  # version 1, a draft: the fixture partition, clean
    return 1


def reshape(db, code, metres):
    """Grow (metres > 0) or shrink a stored cell by a mitred buffer."""
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(f"update grid_cell set geom = {SHRINK} where code = %s", (metres, code))


def check(runner, *args):
    return run(runner, "grid", "check", "--version", 1, *args)


def test_a_clean_version(version, runner):
    result = check(runner)
    assert result.exit_code == 0, result.output
    assert "clean: no problems" in result.output


def test_a_gap_and_an_overlap_are_found_and_explained(db, version, runner, tmp_path):
    reshape(db, "410105001001001", -2.0)   # leaves a 2 m gap around it
    reshape(db, "410105002002002", 5.0)    # pokes 5 m into its neighbours (and out of its parents)
    result = check(runner, "--level", 3)
    assert result.exit_code == 1, result.output
    text = result.output
    assert "gaps" in text and "overlaps" in text and "410105001001001" in text and "410105002002002" in text
    assert "problem(s) in version 1" in text.splitlines()[-1]

    as_json = json.loads(check(runner, "--level", 3, "--format", "json").output)
    gaps = [p for p in as_json["problems"] if p["type"] == "gap"]
    assert gaps and all("410105001001001" in p["codes"] for p in gaps)
    gap_area = sum(p["area_m2"] for p in gaps)
    # a 2 m wide ring inside the shrunk cell's old outline
    cell = fixtures.cells(3)[0][3]
    perimeter_m = shapely.length(crs.transform_geometries(cell, "EPSG:4326", "EPSG:4547"))
    assert gap_area == pytest.approx(2.0 * perimeter_m, rel=0.02)
    overlap = [p for p in as_json["problems"] if p["type"] == "overlap"]
    assert overlap and all("410105002002002" in p["codes"] for p in overlap)

    out = tmp_path / "problems.geojson"
    result = check(runner, "--level", 3, "--format", "geojson", "--out", out)
    assert result.exit_code == 1 and "problem(s)" in result.output
    fc = json.loads(out.read_text())
    assert fc["type"] == "FeatureCollection" and {f["properties"]["type"] for f in fc["features"]} >= {"gap", "overlap"}
    lon, lat = shapely.geometry.shape(fc["features"][0]["geometry"]).representative_point().coords[0]
    assert 113.5 < lon < 113.8 and 34.6 < lat < 34.9   # EPSG:4326, not metres


def test_repair_proposes_then_commits_and_the_check_is_clean(db, version, runner):
    reshape(db, "410105001001001", -2.0)
    reshape(db, "410105002001002", 3.0)
    dry = run(runner, "grid", "repair", "--version", 1, "--level", 3)
    assert dry.exit_code == 0, dry.output
    assert "dry run: would repair" in dry.output and "gap" in dry.output and "overlap" in dry.output
    assert check(runner, "--level", 3).exit_code == 1  # nothing was written
    done = run(runner, "grid", "repair", "--version", 1, "--level", 3, "--commit")
    assert done.exit_code == 0, done.output
    assert "afterwards: clean" in done.output
    result = check(runner, "--level", 3)
    remaining = json.loads(check(runner, "--level", 3, "--format", "json").output)["problems"]
    assert not [p for p in remaining if p["type"] in ("gap", "overlap", "sliver")], result.output


def test_repair_needs_a_draft(version, runner):
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    result = run(runner, "grid", "repair", "--version", 1, "--commit")
    assert result.exit_code == 2 and "only a draft can be repaired" in result.output


def test_check_without_any_version(db, runner):
    result = run(runner, "grid", "check")
    assert result.exit_code == 2 and "no grid version is active" in result.output


def test_check_file(runner, tmp_path):
    clean = fixtures.write(tmp_path / "clean.gpkg", 3)
    result = run(runner, "grid", "check-file", clean)
    assert result.exit_code == 0, result.output
    rows = fixtures.cells(3)
    code, name, parent, geom = rows[0]
    rows[0] = (code, name, parent, shapely.affinity.translate(geom, xoff=0.0005))  # ~45 m into its neighbour
    moved = fixtures.write(tmp_path / "moved.geojson", 3, rows=rows)
    result = run(runner, "grid", "check-file", moved, "--level", 3)
    assert result.exit_code == 1 and "overlaps" in result.output and "45.81 m wide" in result.output
    # the strip it left on the west is outside the union of the file's cells, so not a gap: a file alone has
    # no outline, only holes inside its union count
    assert "gaps" not in result.output


def test_check_file_bad_input(runner, tmp_path):
    points = fixtures.write(tmp_path / "points.geojson", 0, rows=[("410105", "点", None, fixtures.POINT)])
    result = run(runner, "grid", "check-file", points)
    assert result.exit_code == 2 and "not a partition" in result.output
    result = run(runner, "grid", "check-file", tmp_path / "missing.gpkg")
    assert result.exit_code == 2 and "no such file" in result.output
    result = run(runner, "grid", "check-file", fixtures.write(tmp_path / "c.geojson", 3), "--code-field", "gb")
    assert result.exit_code == 2 and "no field 'gb'" in result.output


def test_problems_api(client, db, version):
    reshape(db, "410105001001001", -2.0)
    res = client.get("/api/v1/versions/1/problems?level=3")
    assert res.status_code == 200 and res.mimetype == "application/geo+json"
    fc = res.get_json()
    assert fc["summary"]["gap"]["count"] >= 1
    assert all(f["geometry"]["type"] for f in fc["features"])
    assert client.get("/api/v1/versions/9/problems").status_code == 404
    assert client.get("/api/v1/versions/1/problems?level=5").status_code == 400
    assert client.get("/api/v1/versions/1/problems?noise_m=-1").status_code == 400


def test_check_cell_api(client, version):
    code, _, _, geom = fixtures.cells(3)[0]
    poked = shapely.affinity.translate(geom, xoff=0.0001)  # ~9 m east, into its neighbour
    res = client.post("/api/v1/versions/1/check-cell", json={"code": code, "geometry": poked.__geo_interface__})
    assert res.status_code == 200, res.get_json()
    types = {f["properties"]["type"] for f in res.get_json()["features"]}
    assert "overlap" in types and "gap" in types
    overlap = next(f for f in res.get_json()["features"] if f["properties"]["type"] == "overlap")
    assert code in overlap["properties"]["codes"] and len(overlap["properties"]["codes"]) == 2
    same = client.post("/api/v1/versions/1/check-cell", json={"code": code, "geometry": geom.__geo_interface__})
    assert same.status_code == 200 and same.get_json()["features"] == []


@pytest.mark.parametrize("body, message", [
    (None, "JSON object"),
    ({"code": "410105001001001"}, "GeoJSON Polygon"),
    ({"code": "410105001001001", "geometry": {"type": "Point", "coordinates": [113.6, 34.7]}}, "GeoJSON Polygon"),
    ({"code": "410105001001001", "geometry": {"type": "Polygon", "coordinates": [[[1, 2]]]}}, "not valid GeoJSON"),
    ({"code": "410105001001001", "geometry": {"type": "Polygon",
      "coordinates": [[[500000, 3800000], [500100, 3800000], [500100, 3800100], [500000, 3800000]]]}}, "degrees"),
    ({"code": "999999999999999", "geometry": fixtures.cells(3)[0][3].__geo_interface__}, "give its level"),
    ({"code": "abc", "geometry": fixtures.cells(3)[0][3].__geo_interface__}, "digits"),
])
def test_check_cell_bad_input(client, version, body, message):
    res = client.post("/api/v1/versions/1/check-cell", json=body) if body is not None else \
        client.post("/api/v1/versions/1/check-cell", data="not json", content_type="application/json")
    assert res.status_code == 400
    assert message in res.get_json()["message"]


def test_check_file_with_mixed_crss(runner, tmp_path):
    rows = fixtures.cells(3)
    code, name, parent, geom = rows[1]
    rows[1] = (code, name, parent, crs.transform_geometries(geom, "EPSG:4326", "EPSG:4547"))
    path = fixtures.write(tmp_path / "mixed.geojson", 3, rows=rows)
    result = run(runner, "grid", "check-file", path)
    assert result.exit_code == 2 and "mixed CRSs" in result.output and code in result.output
