"""gridmap grid export: each format reads back with pyogrio and imports again unchanged."""
import pyogrio
import pytest
import shapely

import fixtures
from test_grid_import import import_all, run


@pytest.mark.parametrize("fmt, filename", [("geojson", "l3.geojson"), ("gpkg", "l3.gpkg"), ("shp", "l3.shp")])
def test_export_reads_back(db, runner, tmp_path, fmt, filename):
    (tmp_path / "in").mkdir()
    import_all(runner, tmp_path / "in")
    out = tmp_path / filename
    result = run(runner, "grid", "export", out, "--version", 1, "--level", 3, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "exported 8 level-3 cells of version 1" in result.output
    frame = pyogrio.read_dataframe(out)
    assert frame.crs.to_epsg() == 4326
    expected = {code: (name, parent, geom) for code, name, parent, geom in fixtures.cells(3)}
    assert sorted(frame["code"]) == sorted(expected)
    for row in frame.itertuples():
        name, parent, geom = expected[row.code]
        assert row.name == name and row.parent == parent
        assert shapely.equals_exact(shapely.normalize(shapely.get_parts(row.geometry)[0]), shapely.normalize(geom), 1e-9)
    assert not list(tmp_path.glob(".*partial*"))


def test_export_imports_back_into_a_new_version(db, runner, tmp_path):
    (tmp_path / "in").mkdir()
    import_all(runner, tmp_path / "in")
    for level in range(4):
        out = tmp_path / f"out{level}.gpkg"
        assert run(runner, "grid", "export", out, "--version", 1, "--level", level, "--format", "gpkg").exit_code == 0
        extra = ["--version", 2, "--parent-field", "parent"] if level else []
        result = run(runner, "grid", "import", out, "--level", level, *extra, "--commit")
        assert result.exit_code == 0, result.output
    with db.cursor() as cur:
        cur.execute("""select a.code from grid_cell a join grid_cell b on a.code = b.code
                        where a.version_id = 1 and b.version_id = 2 and ST_Equals(a.geom, b.geom)
                          and a.name = b.name and a.area_m2 = b.area_m2""")
        assert len(cur.fetchall()) == 15


def test_export_errors(db, runner, tmp_path):
    result = run(runner, "grid", "export", tmp_path / "x.geojson", "--level", 3, "--format", "geojson")
    assert result.exit_code == 2 and "no grid version is active" in result.output
    (tmp_path / "in").mkdir()
    import_all(runner, tmp_path / "in")
    result = run(runner, "grid", "export", tmp_path / "nodir" / "x.geojson", "--version", 1, "--level", 3,
                 "--format", "geojson")
    assert result.exit_code == 2 and "no such directory" in result.output
    result = run(runner, "grid", "export", tmp_path / "x.geojson", "--version", 7, "--level", 3, "--format", "geojson")
    assert result.exit_code == 2 and "version 7 does not exist" in result.output
    result = run(runner, "grid", "export", tmp_path / "x.kml", "--version", 1, "--level", 3, "--format", "kml")
    assert result.exit_code == 2 and "kml" in result.output
