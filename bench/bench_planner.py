"""The planners' editor: save-and-check of one edited cell in a draft of 100,000 cells, end to end through the
API — ``PUT /api/v1/versions/<v>/cells/<code>`` through gunicorn on loopback: parsing, the revision lock,
the update (with its edit log row and derived columns kept by the database), the incremental check of the
saved cell against its neighbours, and the answer (the cell and its problems).

The draft is the synthetic lattice of :mod:`bench.synthetic` (Voronoi cells of ~100 m, EPSG:4547 near
Zhengzhou), loaded as one level. Each save moves one vertex of a random cell by 1 m, as a drag in the
editor does. The peer is the same edit as a QGIS user makes it: a plain SQL UPDATE, then
``gridmap grid check`` of the whole draft — what a planner had to do before the editor checked each save.

The editor's requests carry the API key of a city-wide ``planner`` (made in the bench database, without a
rate limit), who is then the edits' actor.
"""
import statistics
import time

import numpy as np
import requests
import shapely

from bench.credentials import api_key, auth_header, secret_key
from bench.faults import Gunicorn
from bench.synthetic import lattice_partition
from gis import crs, grid_store, partition_service
from gis.partition_geometry import as_multipolygon

CELLS = 100_000
SAVES = 100
TARGET_MS = 100.0


def run(db, rows):
    version_id, codes = _load(db)
    auth = auth_header(api_key(db, "planner", role="planner"))
    # gunicorn, not werkzeug's server, which answers in two packets (+40 ms of delayed ACK); no version is
    # active here, so /health says 503: ready is when the API answers
    server = Gunicorn(db.url, secret_key=secret_key(), ready_path="/api/v1/versions", headers=auth)
    base = f"{server.base}/api/v1/versions/{version_id}/cells"
    times, problems = [], 0
    rng = np.random.default_rng(5)
    try:
        with requests.Session() as http:
            http.headers.update(auth)
            for i, code in enumerate(rng.choice(codes, size=SAVES + 5, replace=False)):
                cell = http.get(f"{base}?codes={code}").json()["features"][0]
                body = {"revision": cell["properties"]["revision"], "geometry": _nudged(cell["geometry"])}
                t0 = time.perf_counter()
                r = http.put(f"{base}/{code}", json=body)
                ms = (time.perf_counter() - t0) * 1000
                assert r.status_code == 200, r.text
                if i >= 5:  # the first few warm the workers and the caches
                    times.append(ms)
                    problems += len(r.json()["problems"]["features"])
    finally:
        server.stop()
    t0 = time.perf_counter()
    partition_service.check_version(db, version_id)
    peer_ms = (time.perf_counter() - t0) * 1000
    median, p95 = statistics.median(times), float(np.percentile(times, 95))
    print(f"  {SAVES} saves of one cell in a {len(codes):,}-cell draft through the API: median {median:.1f} ms, "
          f"p95 {p95:.1f} ms ({problems} problems answered); the whole-draft check: {peer_ms / 1000:.1f} s")
    rows.append(dict(name=f"planner: save-and-check of one cell, {len(codes) // 1000}k-cell draft (median)",
                     figure=median, unit="ms", peer="a plain SQL update, then the check of the whole draft",
                     peer_figure=peer_ms, ratio=median / peer_ms, target=f"< {TARGET_MS:g} ms", met=median < TARGET_MS))


def _load(db):
    part = lattice_partition(CELLS)
    wgs84 = shapely.make_valid(crs.transform_geometries(part.geoms, "EPSG:4547", "EPSG:4326"))
    with db.connection() as conn, conn.cursor() as cur:
        version = grid_store.create_draft(cur, created_by="bench", note=f"synthetic {CELLS:,} cells to edit")
        grid_store.insert_cells(cur, version[0], 0, [
            {"code": c, "name": c, "parent_id": None, "kind": "regular", "population": None, "attributes": {},
             "wkb": shapely.to_wkb(as_multipolygon(g))} for c, g in zip(part.codes, wgs84)])
        cur.execute("analyze grid_cell")
    return version[0], list(part.codes)


def _nudged(geometry):
    """The cell with its first vertex moved ~1 m east (the ring kept closed)."""
    geom = shapely.geometry.shape(geometry)
    coords = shapely.get_coordinates(geom)
    coords[0, 0] += 1e-5
    coords[-1] = coords[0]  # one polygon, one ring: the first and last vertex are one
    return shapely.geometry.mapping(shapely.set_coordinates(geom, coords))
