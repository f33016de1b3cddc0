"""gridmap grid import: formats, CRSs, parents, dry runs, and every bad input named in the issue."""
import zipfile

import pytest
import shapely

import fixtures
from gis import crs
from gis.cli import main


def run(runner, *args):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def import_level(runner, path, level, *extra):
    result = run(runner, "grid", "import", path, "--level", level, *extra, "--commit")
    assert result.exit_code == 0, result.output
    return result


def count(db, sql="select count(*) from grid_cell"):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def import_all(runner, tmp_path, *, fmt="geojson", parent_field=None):
    """Import the four fixture levels into version 1 by containment (or by parent code)."""
    for level in range(4):
        path = fixtures.write(tmp_path / f"l{level}.{fmt}", level)
        extra = ["--version", 1] if level else []
        if parent_field and level:
            extra += ["--parent-field", parent_field]
        import_level(runner, path, level, *extra)


def test_imports_four_levels_finding_parents_by_containment(db, runner, tmp_path):
    import_all(runner, tmp_path)
    with db.cursor() as cur:
        cur.execute("""select c.code, p.code as parent, c.level, c.area_m2 from grid_cell c
                       left join grid_cell p on p.id = c.parent_id order by c.code""")
        rows = cur.fetchall()
    assert len(rows) == 1 + 2 + 4 + 8
    parents = {r["code"]: r["parent"] for r in rows}
    assert parents["410105001002001"] == "410105001002"
    assert parents["410105002001"] == "410105002"
    assert parents["410105"] is None
    # ~9.2 km × 11.1 km near 34.75°N
    district = next(r for r in rows if r["level"] == 0)
    assert district["area_m2"] == pytest.approx(fixtures.geometry_area_m2(fixtures.cells(0)[0][3]), rel=1e-3)
    assert 100e6 < district["area_m2"] < 105e6


def test_parent_field_names_the_parents(db, runner, tmp_path):
    import_all(runner, tmp_path, parent_field="parent")
    assert count(db, "select count(*) from grid_cell where level = 3 and parent_id is not null") == 8


def test_dry_run_writes_nothing_and_says_what_it_would_write(db, runner, tmp_path):
    path = fixtures.write(tmp_path / "l0.geojson", 0)
    result = run(runner, "grid", "import", path, "--level", 0)
    assert result.exit_code == 0, result.output
    assert "would write 1 level-0 cells" in result.output
    assert "dry run" in result.output
    assert count(db) == 0
    assert count(db, "select count(*) from grid_version") == 0


def test_geopackage_layers(db, runner, tmp_path):
    path = tmp_path / "grids.gpkg"
    for level in range(2):
        fixtures.write(path, level, layer=f"level{level}")
    result = run(runner, "grid", "import", path, "--level", 0, "--commit")
    assert result.exit_code == 2
    assert "several layers" in result.output and "level0, level1" in result.output
    import_level(runner, path, 0, "--layer", "level0")
    import_level(runner, path, 1, "--layer", "level1", "--version", 1)
    assert count(db) == 3
    result = run(runner, "grid", "import", path, "--level", 1, "--layer", "nope", "--version", 1)
    assert result.exit_code == 2 and "no layer 'nope'" in result.output


def test_zipped_shapefile(db, runner, tmp_path):
    shp_dir = tmp_path / "shp"
    shp_dir.mkdir()
    fixtures.write(shp_dir / "districts.shp", 0)
    archive = tmp_path / "districts.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in shp_dir.iterdir():
            z.write(part, part.name)
    import_level(runner, archive, 0)
    assert count(db) == 1


def test_file_in_gauss_kruger_epsg_4547(db, runner, tmp_path):
    path = fixtures.write(tmp_path / "gk.gpkg", 0, to_crs="EPSG:4547")
    result = import_level(runner, path, 0)
    assert "EPSG:4547" in result.output
    assert_same_geometry(db, "410105", fixtures.cells(0)[0][3], tolerance_deg=1e-7)


def test_file_in_gcj02_needs_and_honours_src_crs(db, runner, tmp_path):
    # GCJ-02 files say they are EPSG:4326; only --src-crs knows better.
    path = fixtures.write(tmp_path / "gcj.geojson", 0, to_crs="gcj02")
    import_level(runner, path, 0, "--src-crs", "gcj02")
    # within 0.5 m of the true WGS84 square (≈ 5e-6 degrees)
    assert_same_geometry(db, "410105", fixtures.cells(0)[0][3], tolerance_deg=5e-6)


def test_unshifted_gcj02_would_land_hundreds_of_metres_off():
    square = fixtures.cells(0)[0][3]
    shifted = crs.transform_geometries(square, "EPSG:4326", "gcj02")
    assert shapely.hausdorff_distance(square, shifted) > 1e-3  # > ~100 m: why --src-crs matters


def assert_same_geometry(db, code, expected, tolerance_deg):
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("select ST_AsBinary(geom) from grid_cell where code = %s", (code,))
        got = shapely.from_wkb(bytes(cur.fetchone()[0]))
    assert shapely.hausdorff_distance(got, expected) < tolerance_deg


# --- bad input: a clear error, exit status 2, nothing written -----------------------------------------

def refused(runner, db, path, *args, expect):
    result = run(runner, "grid", "import", path, *args, "--commit")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in ([expect] if isinstance(expect, str) else expect):
        assert text in result.output
    return result


def test_no_crs_and_no_src_crs(db, runner, tmp_path):
    path = fixtures.write(tmp_path / "nocrs.shp", 0, crs_label=None)
    refused(runner, db, path, "--level", 0, expect="does not say which CRS")
    assert count(db, "select count(*) from grid_version") == 0
    import_level(runner, path, 0, "--src-crs", "EPSG:4326")


def test_unknown_src_crs(db, runner, tmp_path):
    path = fixtures.write(tmp_path / "l0.geojson", 0)
    refused(runner, db, path, "--level", 0, "--src-crs", "EPSG:999999", expect="999999")


def test_invalid_geometry_reports_reason_and_location(db, runner, tmp_path):
    rows = [("410105", "金水区", None, fixtures.BOW_TIE)]
    path = fixtures.write(tmp_path / "bowtie.geojson", 0, rows=rows)
    result = refused(runner, db, path, "--level", 0, expect=["invalid geometry", "Self-intersection", "--make-valid"])
    assert "113.625" in result.output  # where it crosses itself
    assert count(db) == 0
    import_level(runner, path, 0, "--make-valid")
    assert count(db) == 1


def test_non_polygon_geometries(db, runner, tmp_path):
    rows = [("410105", "点", None, fixtures.POINT), ("410106", "线", None, fixtures.LINE)]
    path = fixtures.write(tmp_path / "points.geojson", 0, rows=rows)
    refused(runner, db, path, "--level", 0, expect=["must be polygons", "Point", "LineString"])
    assert count(db) == 0


def test_empty_file(db, runner, tmp_path):
    path = tmp_path / "empty.geojson"
    path.write_bytes(b"")
    refused(runner, db, path, "--level", 0, expect="empty")


def test_corrupt_file(db, runner, tmp_path):
    path = tmp_path / "corrupt.gpkg"
    path.write_bytes(b"\x00\x01this is not a geopackage" * 100)
    refused(runner, db, path, "--level", 0, expect="not a readable")


def test_feature_collection_without_features(db, runner, tmp_path):
    path = tmp_path / "none.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    refused(runner, db, path, "--level", 0, expect="no features")


def test_missing_file(db, runner, tmp_path):
    refused(runner, db, tmp_path / "nope.geojson", "--level", 0, expect="no such file")


def test_duplicate_codes(db, runner, tmp_path):
    rows = fixtures.cells(1)
    rows = [rows[0], (rows[0][0], "重复", "410105", rows[1][3])]
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    path = fixtures.write(tmp_path / "dups.geojson", 1, rows=rows)
    refused(runner, db, path, "--level", 1, "--version", 1, expect=["more than once", "410105001"])
    assert count(db) == 1


def test_code_already_in_the_version(db, runner, tmp_path):
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    refused(runner, db, tmp_path / "l0.geojson", "--level", 0, "--version", 1, expect="already exist")


def test_parent_code_that_does_not_exist(db, runner, tmp_path):
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    rows = [(c, n, "410199", g) for c, n, _, g in fixtures.cells(1)]
    path = fixtures.write(tmp_path / "l1.geojson", 1, rows=rows)
    refused(runner, db, path, "--level", 1, "--version", 1, "--parent-field", "parent",
            expect=["name a parent that is not", "410199"])
    assert count(db) == 1


def test_cell_outside_every_parent(db, runner, tmp_path):
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    far = shapely.affinity.translate(fixtures.cells(1)[0][3], xoff=1.0)
    path = fixtures.write(tmp_path / "far.geojson", 1, rows=[("410105001", "远处", None, far)])
    refused(runner, db, path, "--level", 1, "--version", 1, expect="parent does not exist")


def test_wrong_level(db, runner, tmp_path):
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    path = fixtures.write(tmp_path / "l1.geojson", 1)
    refused(runner, db, path, "--level", 2, "--version", 1, expect=["12 digits", "look like level 1", "wrong --level"])


def test_level_without_its_parent_level(db, runner, tmp_path):
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    path = fixtures.write(tmp_path / "l2.geojson", 2)
    refused(runner, db, path, "--level", 2, "--version", 1, expect="import level 1 first")


def test_version_that_is_not_a_draft(db, runner, tmp_path):
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    assert run(runner, "grid", "activate", 1, "--commit").exit_code == 0
    path = fixtures.write(tmp_path / "l1.geojson", 1)
    refused(runner, db, path, "--level", 1, "--version", 1, expect="is active")
    refused(runner, db, path, "--level", 1, "--version", 9, expect="does not exist")


def test_missing_code_field(db, runner, tmp_path):
    path = fixtures.write(tmp_path / "l0.geojson", 0)
    refused(runner, db, path, "--level", 0, "--code-field", "gb", expect=["no field 'gb'", "code, name"])


def test_mixed_crss_in_one_file(db, runner, tmp_path):
    # one street in degrees, the other in Gauss-Krüger metres, and the file says EPSG:4326
    west, east = fixtures.cells(1)
    east_in_metres = crs.transform_geometries(east[3], "EPSG:4326", "EPSG:4547")
    rows = [west, (east[0], east[1], east[2], east_in_metres)]
    import_level(runner, fixtures.write(tmp_path / "l0.geojson", 0), 0)
    path = fixtures.write(tmp_path / "mixed.geojson", 1, rows=rows)
    refused(runner, db, path, "--level", 1, "--version", 1, expect=["cannot be EPSG:4326", "mixed CRSs", "410105002"])
    assert count(db) == 1


def test_a_population_column_with_gaps_imports_the_gaps_as_unknown(runner, db, tmp_path):
    import geopandas as gpd

    gdf = fixtures.frame(0)
    gdf["population"] = [None]  # the only district: unknown
    districts = tmp_path / "districts.geojson"
    gdf.set_crs("EPSG:4326").to_file(districts)
    import_level(runner, districts, 0)
    streets = fixtures.frame(1)
    streets["population"] = [71739, None]
    path = tmp_path / "streets.geojson"
    gpd.GeoDataFrame(streets).set_crs("EPSG:4326").to_file(path)
    import_level(runner, path, 1, "--version", 1)
    with db.cursor() as cur:
        cur.execute("select code, population from grid_cell order by code")
        assert [tuple(r.values()) for r in cur.fetchall()] == [
            ("410105", None), ("410105001", 71739), ("410105002", None)]
