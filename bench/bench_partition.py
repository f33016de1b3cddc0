"""Partition checks on 100,000 synthetic cells with injected overlaps, gaps and slivers, against the plain
PostGIS approach (self-join with ST_Overlaps, plus ST_Difference of the outline and ST_Union of the cells)
on the same data in the same run; and the incremental check of one edited cell against PostGIS."""
import multiprocessing
import resource
import statistics
import time

import numpy as np
import shapely
from psycopg2.extras import execute_values

from bench.synthetic import inject_defects, lattice_partition
from gis import crs, grid_store, partition_service
from gis.partition_checks import Cells, Tolerances, check_level
from gis.partition_geometry import as_multipolygon

N_CELLS = 100_000
INJECTED = 20
EDITS = 200


def run(db, rows):
    part = inject_defects(lattice_partition(N_CELLS), count=INJECTED)
    _load(db, part)

    with db.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute("""select a.code as a, b.code as b, ST_Area(ST_Intersection(a.geom, b.geom)) as area
                         from bench_cell a join bench_cell b on a.code < b.code and ST_Overlaps(a.geom, b.geom)""")
        overlaps = cur.fetchall()
        cur.execute("""select ST_Area(ST_Difference(o.geom, (select ST_Union(geom) from bench_cell))) as gap
                         from bench_outline o""")
        gap_area = cur.fetchone()["gap"]
        postgis_s = time.perf_counter() - t0
    print(f"  PostGIS: {len(overlaps)} overlapping pairs, {gap_area:,.0f} m² of gaps, {postgis_s:.2f} s")

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    worker = ctx.Process(target=_full_check, args=(db.url, queue))
    worker.start()
    found, load_s, check_s = queue.get(timeout=600)
    worker.join()
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    missed = {kind: sorted(set(codes) - found.get(kind, set())) for kind, codes in part.injected.items()}
    print(f"  GridMap: load {load_s:.2f} s + check {check_s:.2f} s; missed injected defects: "
          f"{ {k: len(v) for k, v in missed.items()} }")
    gridmap_s = load_s + check_s
    rows.append(dict(name="partition check, 100k cells (load + check)", figure=gridmap_s, unit="s",
                     peer="PostGIS ST_Overlaps self-join + ST_Difference(outline, ST_Union)", peer_figure=postgis_s,
                     ratio=gridmap_s / postgis_s, target="≤ 0.33 of PostGIS",
                     met=gridmap_s <= postgis_s / 3 and not any(missed.values())))
    rows.append(dict(name="partition check, injected defects found", figure=3 * INJECTED - sum(map(len, missed.values())),
                     unit=f"of {3 * INJECTED}", peer="", peer_figure=None, ratio=None, target=f"all {3 * INJECTED}",
                     met=not any(missed.values())))
    rows.append(dict(name="partition check, peak memory", figure=peak_mb, unit="MB", peer="", peer_figure=None,
                     ratio=None, target="< 2048 MB", met=peak_mb < 2048))

    times = _incremental(db, part)
    median_ms = statistics.median(times) * 1000
    rows.append(dict(name=f"incremental check of one edited cell (median of {EDITS})", figure=median_ms, unit="ms",
                     peer="", peer_figure=None, ratio=None, target="< 50 ms", met=median_ms < 50))


def _load(db, part):
    """The synthetic cells as a plain PostGIS table in metres, and as a grid version in EPSG:4326."""
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("drop table if exists bench_cell, bench_outline")
        cur.execute("create table bench_cell (code text primary key, geom geometry(Geometry, 4547))")
        cur.execute("create table bench_outline (geom geometry(Polygon, 4547))")
        execute_values(cur, "insert into bench_cell values %s",
                       [(c, shapely.to_wkb(g)) for c, g in zip(part.codes, part.geoms)],
                       template="(%s, ST_SetSRID(ST_GeomFromWKB(%s), 4547))", page_size=5000)
        cur.execute("insert into bench_outline values (ST_SetSRID(ST_GeomFromWKB(%s), 4547))",
                    (shapely.to_wkb(part.outline),))
        cur.execute("create index on bench_cell using gist (geom)")
        cur.execute("truncate cell_staff, staff, grid_cell, grid_version restart identity cascade")
    with db.connection() as conn, conn.cursor() as cur:
        version = grid_store.create_draft(cur, created_by="bench", note="synthetic 100k")
        wgs84 = crs.transform_geometries(part.geoms, "EPSG:4547", "EPSG:4326")
        grid_store.insert_cells(cur, version[0], 0, [
            {"code": c, "name": c, "parent_id": None, "kind": "regular", "population": None, "attributes": {},
             "wkb": shapely.to_wkb(as_multipolygon(g))} for c, g in zip(part.codes, shapely.make_valid(wgs84))])
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("analyze bench_cell")
        cur.execute("analyze grid_cell")


def _full_check(url, queue):
    """In a fresh process, so that its peak memory is the check's own."""
    from gis.db import Database

    db = Database(url)
    t0 = time.perf_counter()
    with db.connection() as conn, conn.cursor() as cur:  # tuples, as gis.partition_service.load_levels reads
        cur.execute("select code, ST_AsBinary(geom) from bench_cell")
        rows = cur.fetchall()
        cur.execute("select ST_AsBinary(geom) from bench_outline")
        outline = shapely.from_wkb(bytes(cur.fetchone()[0]))
    cells = Cells(np.array([r[0] for r in rows], dtype=object), shapely.from_wkb([bytes(r[1]) for r in rows]),
                  None, None)
    t1 = time.perf_counter()
    problems = check_level(cells, None, outline=outline, tol=Tolerances())
    t2 = time.perf_counter()
    found = {}
    for p in problems:
        found.setdefault(p.type, set()).update(p.codes)
    queue.put((found, t1 - t0, t2 - t1))


def _incremental(db, part):
    """Move one vertex of a random cell by 1 m and check the edited cell, as the boundary editor would."""
    rng = np.random.default_rng(3)
    times = []
    with db.cursor() as cur:
        version_id = grid_store.list_versions(cur)[0]["id"]
    for i in rng.choice(len(part.geoms) - INJECTED, size=EDITS, replace=False):
        coords = shapely.get_coordinates(part.geoms[i])
        coords[0] += 1.0
        coords[-1] = coords[0]
        edited = crs.transform_geometries(shapely.polygons(coords), "EPSG:4547", "EPSG:4326")
        t0 = time.perf_counter()
        partition_service.check_edited_cell(db, version_id, part.codes[i], edited)
        times.append(time.perf_counter() - t0)
    return times
