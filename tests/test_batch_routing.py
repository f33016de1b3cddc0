"""Batch routing: the same answers as SQL route_report(); bulk import, re-routing and route-file."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

import fixtures
from gis import crs, grid_store
from gis.batch_routing import STATUSES, GridRouter
from test_grid_import import import_level, run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

X0, Y0, X1, Y1, XM, YM = fixtures.X0, fixtures.Y0, fixtures.X1, fixtures.Y1, fixtures.XM, fixtures.YM
M_PER_DEG_X = 6371008.8 * math.pi / 180 * math.cos(math.radians(Y0 + 0.01))
SW, SW_EAST = "410105001001001", "410105001001002"


def sql_route(db, lon, lat, accuracy):
    with db.cursor() as cur:
        cur.execute("select status::text, cell_ids, candidates, snap_distance_m from route_report(%s, %s, %s, 30)",
                    (lon, lat, accuracy))
        row = cur.fetchone()
    return row["status"], row["cell_ids"], row["candidates"], row["snap_distance_m"]


def batch_route(router, lon, lat, accuracy):
    routed = router.route(np.array(lon, dtype=float), np.array(lat, dtype=float), np.array(accuracy, dtype=float))
    ids = [[int(router.ids[c]) if c >= 0 else None for c in row] for row in routed.cells]
    return routed, ids, router.candidate_codes(routed)


@pytest.fixture
def router(active):  # noqa: F811
    with active.cursor() as cur:
        return GridRouter.from_database(cur)


coordinate = st.one_of(
    st.floats(min_value=X0 - 0.001, max_value=X1 + 0.001),
    st.sampled_from([X0, (X0 + XM) / 2, XM, (XM + X1) / 2, X1]),
    st.sampled_from([X0 - 20 / M_PER_DEG_X, X1 + 29 / M_PER_DEG_X, X1 + 31 / M_PER_DEG_X, X0 - 0.1]))
latitude = st.one_of(st.floats(min_value=Y0 - 0.001, max_value=Y1 + 0.001), st.sampled_from([Y0, YM, Y1]))
accuracy = st.one_of(st.just(0.0), st.floats(min_value=0, max_value=300))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(points=st.lists(st.tuples(coordinate, latitude, accuracy), min_size=1, max_size=25))
def test_batch_routing_agrees_with_sql_route_report(active, router, points):  # noqa: F811
    lon, lat, acc = map(list, zip(*points))
    routed, ids, candidates = batch_route(router, lon, lat, acc)
    for i, (x, y, a) in enumerate(points):
        status, cell_ids, sql_candidates, snap = sql_route(active, x, y, a)
        assert (STATUSES[routed.status[i]], ids[i], candidates[i]) == (status, cell_ids, sql_candidates), (x, y, a)
        if snap is not None:
            assert routed.snap_distance_m[i] == pytest.approx(snap, abs=1e-9)


def test_every_status_in_one_batch(router):
    lon = [X0 + 0.01, (X0 + XM) / 2, (X0 + XM) / 2 - 10 / M_PER_DEG_X, X1 + 20 / M_PER_DEG_X,
           X1 + 40 / M_PER_DEG_X, X1 + 0.5]
    lat = [Y0 + 0.01] * 6
    routed, ids, candidates = batch_route(router, lon, lat, [0, 0, 25, 0, 0, 0])
    assert [STATUSES[s] for s in routed.status] == [
        "routed", "shared_edge", "ambiguous", "snapped", "unrouted", "unrouted"]
    assert candidates[1] == candidates[2] == [SW, SW_EAST]
    assert ids[4][0] is not None and ids[4][1:] == [None] * 3  # within 5 km: the district's queue
    assert ids[5] == [None] * 4  # 45 km away: nobody's cell, the city platform's queue
    assert routed.snap_distance_m[3] == pytest.approx(20, abs=0.01)


def post(client, lon, lat, **extra):
    r = client.post("/api/v1/reports", json={"lon": lon, "lat": lat, "category": "0102", **extra})
    assert r.status_code == 201, r.json
    return r.json["id"]


def moved_partition(tmp_path, runner, shift):
    """Version 2: the fixture partition with the edge between the two south-west unit grids moved east."""
    xm = (X0 + XM) / 2 + shift
    for level in range(4):
        rows = fixtures.cells(level)
        if level == 3:
            rows = [(c, n, p, box(X0, Y0, xm, YM) if c == SW else box(xm, Y0, XM, YM) if c == SW_EAST else g)
                    for c, n, p, g in rows]
        path = fixtures.write(tmp_path / f"v2_l{level}.geojson", level, rows=rows)
        import_level(runner, path, level, *(["--version", 2] if level else []))


def test_reroute_moves_open_incidents_and_keeps_history(client, active, runner, tmp_path):  # noqa: F811
    strip_x = (X0 + XM) / 2 + 0.002  # east of today's edge, west of tomorrow's
    moving = post(client, strip_x, Y0 + 0.01)
    staying = post(client, X0 + 0.01, Y0 + 0.01)
    closed = post(client, strip_x, Y0 + 0.02)
    with active.cursor() as cur:
        cur.execute("update incident set status = 'closed' where public_id = %s", (closed,))
    moved_partition(tmp_path, runner, 0.005)
    with active.cursor() as cur:  # activated without the re-routing `grid activate` does (gis/activation.py)
        grid_store.activate(cur, 2, actor="tester")

    dry = run(runner, "incidents", "reroute")
    assert dry.exit_code == 0, dry.output
    assert "1 of 2 incidents move to other cells in version 2; 2 new routing records would be written" in dry.output
    assert client.get(f"/api/v1/reports/{moving}").json["routing"]["version"] == 1  # nothing written

    done = run(runner, "incidents", "reroute", "--commit")
    assert done.exit_code == 0 and "1 of 2 incidents move" in done.output, done.output
    after = {i: client.get(f"/api/v1/reports/{i}").json["routing"] for i in (moving, staying, closed)}
    assert after[moving]["version"] == 2 and after[moving]["cells"][3]["code"] == SW
    assert after[staying]["version"] == 2 and after[staying]["cells"][3]["code"] == SW  # same code, new version
    again = run(runner, "incidents", "reroute", "--commit")
    assert "0 of 2 incidents move to other cells in version 2; 0 new routing records" in again.output
    assert after[closed]["version"] == 1 and after[closed]["cells"][3]["code"] == SW_EAST
    with active.cursor() as cur:
        cur.execute("""select r.reason, r.version_id, c.code from incident_routing r join incident i on i.id = r.incident_id
                        join grid_cell c on c.id = r.grid_id where i.public_id = %s order by r.id""", (moving,))
        assert [tuple(r.values()) for r in cur.fetchall()] == [("intake", 1, SW_EAST), ("reroute", 2, SW)]
        with pytest.raises(Exception, match="incident_routing is history"):
            cur.execute("delete from incident_routing")


def test_batch_routing_records_staff_like_the_sql_function(client, active):  # noqa: F811
    with active.cursor() as cur:
        cur.execute("insert into staff (name, phone) values ('王网格', '13800000001')")
        cur.execute("insert into cell_staff select c.id, s.id, 'grid_worker' from grid_cell c, staff s where c.code = %s",
                    (SW,))
        cur.execute("""insert into incident (category, given_x, given_y, given_crs, geom, source, reported_at)
                       values ('0102', %s, %s, 'EPSG:4326', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'import', now())
                       returning id""", (X0 + 0.01, Y0 + 0.01, X0 + 0.01, Y0 + 0.01))
        from gis.batch_routing import route_unrouted
        assert route_unrouted(cur) == {"routed": 1}
        cur.execute("select staff, responsible_staff(array[district_id, street_id, community_id, grid_id]) as sql"
                    " from incident_routing")
        row = cur.fetchone()
    assert row["staff"] == row["sql"] and row["staff"][0]["name"] == "王网格"


def write_reports_csv(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_incidents_import_checks_routes_and_is_idempotent(active, runner, tmp_path):  # noqa: F811
    x, y = crs.from_wgs84(X0 + 0.01, Y0 + 0.01, "gcj02")
    path = write_reports_csv(tmp_path / "hotline.csv", [
        {"id": "H-1", "x": x, "y": y, "category": "0102", "description": "垃圾", "reported_at": "2026-11-20T09:00:00+08:00"},
        {"id": "H-2", "x": x + 0.001, "y": y, "category": "0501", "description": "占道", "reported_at": "2026-11-20T10:00:00+08:00"},
    ])
    args = ["incidents", "import", path, "--lon", "x", "--lat", "y", "--crs", "gcj02", "--id-field", "id"]
    dry = run(runner, *args)
    assert dry.exit_code == 0 and "would import (dry run" in dry.output and "routed" in dry.output
    with active.cursor() as cur:
        cur.execute("select count(*) as n from incident")
        assert cur.fetchone()["n"] == 0
    done = run(runner, *args, "--commit")
    assert done.exit_code == 0 and "imported 2 of 2" in done.output, done.output
    again = run(runner, *args, "--commit")
    assert "imported 0 of 2" in again.output and "2 were imported before" in again.output
    with active.cursor() as cur:
        cur.execute("""select i.source, i.given_crs, i.reported_at, c.code from incident i
                       join grid_cell c on c.id = i.grid_id order by i.id""")
        rows = cur.fetchall()
    assert [r["code"] for r in rows] == [SW, SW] and rows[0]["source"] == "import"
    assert rows[0]["given_crs"] == "gcj02" and rows[0]["reported_at"].isoformat() == "2026-11-20T01:00:00+00:00"


def test_incidents_import_refuses_a_file_with_bad_rows_and_writes_nothing(active, runner, tmp_path):  # noqa: F811
    path = write_reports_csv(tmp_path / "bad.csv", [
        {"client_request_id": "a", "lon": X0 + 0.01, "lat": Y0 + 0.01, "category": "0102"},
        {"client_request_id": "b", "lon": "east", "lat": Y0 + 0.01, "category": "0102"},
        {"client_request_id": "c", "lon": X0 + 0.01, "lat": Y0 + 0.01, "category": "7777"},
        {"client_request_id": "a", "lon": X0 + 0.01, "lat": Y0 + 0.01, "category": "0102"},
    ])
    result = run(runner, "incidents", "import", path, "--lon", "lon", "--lat", "lat", "--commit")
    assert result.exit_code == 2
    assert "3 row(s) cannot be imported; nothing was written" in result.output
    assert "row 3: missing, non-numeric or out-of-range coordinates" in result.output
    assert "row 4: unknown category '7777'" in result.output
    assert "client_request_id 'a' appears more than once" in result.output
    with active.cursor() as cur:
        cur.execute("select count(*) as n from incident")
        assert cur.fetchone()["n"] == 0
    missing = run(runner, "incidents", "import", path, "--lon", "longitude", "--lat", "lat")
    assert missing.exit_code == 2 and "no column 'longitude'" in missing.output


def test_route_file_needs_no_database_and_reports_every_case(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@/nowhere?host=/nonexistent")
    cells = fixtures.frame(3)
    # an overlap: the first grid reaches 0.005° into its east neighbour; a gap: the last grid is left out
    cells.loc[0, "geometry"] = box(X0, Y0, (X0 + XM) / 2 + 0.005, YM)
    cells = cells.iloc[:-1]
    cells.to_file(tmp_path / "cells.gpkg", driver="GPKG")
    points = pd.DataFrame({
        "ref": ["in", "edge", "overlap", "near", "far", "gap", "bad"],
        "lon": [X0 + 0.01, XM, (X0 + XM) / 2 + 0.002, X0 - 10 / M_PER_DEG_X, X0 - 0.1, X1 - 0.01, "n/a"],
        "lat": [Y0 + 0.01, Y0 + 0.01, Y0 + 0.01, Y0 + 0.01, Y0, Y1 - 0.01, Y0],
    })
    points.to_csv(tmp_path / "points.csv", index=False)
    out = tmp_path / "routed.csv"
    result = run(runner, "route-file", "--cells", tmp_path / "cells.gpkg", "--code-field", "code",
                 "--points", tmp_path / "points.csv", "--lon", "lon", "--lat", "lat", "--out", out)
    assert result.exit_code == 0, result.output
    assert "routed 7 points" in result.output
    table = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("ref")
    assert list(table["routing_status"]) == ["routed", "shared_edge", "overlap", "snapped", "unrouted", "unrouted",
                                             "invalid"]
    assert table.loc["in", "cell_code"] == SW
    assert table.loc["edge", "candidates"] == "410105001001002;410105002001001"
    assert table.loc["overlap", "candidates"] == f"{SW};{SW_EAST}" and table.loc["overlap", "cell_code"] == SW
    assert table.loc["near", "cell_code"] == SW and float(table.loc["near", "snap_distance_m"]) == pytest.approx(10)
    assert table.loc["far", "cell_code"] == "" and table.loc["gap", "cell_code"] == ""
    assert table.loc["bad", "lon"] == "n/a"  # every input row comes out, as it was


def test_route_file_reads_point_geometry_and_phone_coordinates(runner, tmp_path):
    fixtures.frame(3).to_file(tmp_path / "cells.geojson", driver="GeoJSON")
    x, y = crs.from_wgs84((X0 + XM) / 2 - 0.0005, Y0 + 0.01, "bd09")
    import geopandas as gpd
    from shapely.geometry import Point

    gpd.GeoDataFrame({"ref": ["p"]}, geometry=[Point(x, y)], crs="EPSG:4326").to_file(tmp_path / "p.geojson")
    out = tmp_path / "out.csv"
    result = run(runner, "route-file", "--cells", tmp_path / "cells.geojson", "--code-field", "code",
                 "--points", tmp_path / "p.geojson", "--crs", "bd09", "--out", out)
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out, dtype=str).loc[0, "cell_code"] == SW


@pytest.mark.parametrize("args, message", [
    (["--code-field", "nope"], "no field 'nope'"),
    (["--lon", "lon"], "give both --lon and --lat"),
    (["--crs", "EPSG:999999"], "not a CRS known"),
])
def test_route_file_bad_input_is_a_clear_error(runner, tmp_path, args, message):
    fixtures.frame(3).to_file(tmp_path / "cells.geojson", driver="GeoJSON")
    pd.DataFrame({"lon": [X0], "lat": [Y0]}).to_csv(tmp_path / "p.csv", index=False)
    base = {"--code-field": "code", "--lon": "lon", "--lat": "lat"}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    if args == ["--lon", "lon"]:
        del base["--lat"]
    argv = ["route-file", "--cells", tmp_path / "cells.geojson", "--points", tmp_path / "p.csv",
            "--out", tmp_path / "o.csv"] + [x for kv in base.items() for x in kv]
    result = run(runner, *argv)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "o.csv").exists()
