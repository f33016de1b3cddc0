"""The Zhengzhou demo, loaded into PostGIS as `make run` loads it: its size, and every level tiling
its parent exactly (shapely's coverage functions plus parent minus the union of its children)."""
import dataclasses

import numpy as np
import pytest
import shapely

from gis import crs, demo_load, incidents
from gis.settings import Settings
from test_backup import dump_and_restore, restored_url, routing_answers, table_counts  # noqa: F401 (a fixture)

METRIC = "EPSG:4547"  # CGCS2000 Gauss-Krüger, CM 114°E: Zhengzhou's zone
NOISE_M2 = 1.0


@pytest.fixture(scope="module")
def demo(session_db):
    with session_db.cursor() as cur:
        cur.execute("truncate cell_staff, staff, grid_cell, grid_version restart identity cascade")
    # The build is cached in the same place `make run` uses; the database is the test one.
    settings = dataclasses.replace(Settings.from_env(), actor="tester")
    message = demo_load.load_demo(session_db, settings, echo=lambda *_: None)
    assert "is active" in message
    with session_db.cursor() as cur:
        cur.execute("select id, code, level, parent_id, ST_AsBinary(geom) as wkb from grid_cell order by level, code")
        rows = cur.fetchall()
    geoms = crs.transform_geometries(shapely.from_wkb([bytes(r["wkb"]) for r in rows]), "EPSG:4326", METRIC)
    return {
        "db": session_db,
        "level": np.array([r["level"] for r in rows]),
        "id": np.array([r["id"] for r in rows]),
        "parent": np.array([r["parent_id"] or 0 for r in rows]),
        "code": [r["code"] for r in rows],
        "geom": geoms,
    }


def test_demo_size(demo):
    counts = np.bincount(demo["level"])
    assert counts[0] == 12
    assert counts[1] >= 200
    assert counts[2] >= 3000
    assert counts[3] >= 20000


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_each_level_is_a_valid_coverage(demo, level):
    cells = demo["geom"][demo["level"] == level]
    assert shapely.is_valid(cells).all()
    assert shapely.coverage_is_valid(cells), "cells of one level overlap or their shared edges do not match"


@pytest.mark.parametrize("level", [1, 2, 3])
def test_each_level_tiles_its_parent(demo, level):
    parents = np.flatnonzero(demo["level"] == level - 1)
    children = np.flatnonzero(demo["level"] == level)
    by_parent = {}
    for i in children:
        by_parent.setdefault(demo["parent"][i], []).append(i)
    assert set(by_parent) <= set(demo["id"][parents])
    worst = []
    for p in parents:
        kids = by_parent.get(demo["id"][p])
        assert kids, f"{demo['code'][p]} has no children"
        union = shapely.coverage_union_all(demo["geom"][kids])
        gap = shapely.area(shapely.difference(demo["geom"][p], union))
        spill = shapely.area(shapely.difference(union, demo["geom"][p]))
        worst.append((max(gap, spill), demo["code"][p]))
    assert max(worst)[0] < NOISE_M2, f"worst parent: {max(worst)}"


def test_the_database_agrees_that_children_tile_parents(demo):
    with demo["db"].cursor() as cur:
        cur.execute(
            """select p.code, ST_Area(ST_SymDifference(p.geom, ST_Union(c.geom))::geography) as diff
                 from grid_cell p join grid_cell c on c.parent_id = p.id
                where p.level = 1 group by p.id order by diff desc limit 1"""
        )
        row = cur.fetchone()
    assert row["diff"] < NOISE_M2, row


def test_every_unit_grid_has_staff_and_a_15_digit_code(demo):
    with demo["db"].cursor() as cur:
        cur.execute("""select count(*) as n from grid_cell c where level = 3 and not exists
                       (select 1 from cell_staff s where s.cell_id = c.id and s.post = 'grid_head')""")
        assert cur.fetchone()["n"] == 0
        cur.execute("select count(*) as n from grid_cell where level = 3 and code !~ '^[0-9]{15}$'")
        assert cur.fetchone()["n"] == 0


def test_loading_again_is_a_no_op(demo):
    settings = dataclasses.replace(Settings.from_env(), actor="tester")
    assert "loaded already" in demo_load.load_demo(demo["db"], settings, echo=lambda *_: None)


def test_health_is_green_on_the_demo(demo, database_url):
    from webmap import create_app

    app = create_app({"DATABASE_URL": database_url})
    body = app.test_client().get("/health").get_json()
    app.extensions["gridmap_db"].close()
    assert body["status"] == "ok"
    assert int(body["cells"]["3"]) >= 20000


def test_the_stored_demo_has_no_partition_problems(demo):
    from gis import partition_service

    result = partition_service.check_version(demo["db"])
    assert result.cell_count >= 29000
    assert result.problems == [], [(p.type, p.codes, p.detail) for p in result.problems[:10]]


def test_a_dump_of_the_demo_restores_to_the_same_platform(demo, database_url, restored_url, tmp_path):  # noqa: F811
    """The README's backup of a running instance (issue 9), on the demo city with reports in it: the same rows
    in every table and the same routing answers after pg_dump and pg_restore."""
    db = demo["db"]
    with db.cursor() as cur:
        cur.execute("select ST_XMin(e) as x0, ST_YMin(e) as y0, ST_XMax(e) as x1, ST_YMax(e) as y1"
                    " from (select ST_Extent(geom) as e from grid_cell where level = 0) s")
        box = cur.fetchone()
    rng = np.random.default_rng(9)
    points = list(zip(rng.uniform(box["x0"], box["x1"], 500).tolist(), rng.uniform(box["y0"], box["y1"], 500).tolist()))
    for lon, lat in points[:200]:
        incidents.submit(db, incidents.parse_report({"lon": lon, "lat": lat, "category": "0102"}, source="field_app"))

    dump_and_restore(database_url, restored_url, tmp_path)

    counts = table_counts(database_url)
    assert counts["incident"] >= 200 and counts["grid_cell"] > 29_000
    assert table_counts(restored_url) == counts
    assert routing_answers(restored_url, points) == routing_answers(database_url, points)
