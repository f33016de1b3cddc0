"""`gridmap incidents reroute --dask-scheduler`: routing on a Dask cluster writes the records a local run writes.

The cluster is a ``distributed.LocalCluster`` of two worker *processes* with one thread each, as the README
asks of a real one: the router's inputs and every chunk then really cross a process boundary (pickled, as to
another machine), each worker builds its own router in its own memory (numba kernels loaded from the on-disk
cache), and nothing is shared with the coordinator by accident, as it would be with threads in this process.
"""
import math
import socket

import numpy as np
import pytest
from distributed import Client, LocalCluster

import fixtures
from gis import dask_routing, grid_store
from gis.batch_routing import GridRouter, route_unrouted
from test_batch_routing import moved_partition
from test_grid_import import run
from test_routing import active  # noqa: F401  (fixture: the fixture partition, active)

X0, Y0, X1, Y1, XM, YM = fixtures.X0, fixtures.Y0, fixtures.X1, fixtures.Y1, fixtures.XM, fixtures.YM
EDGE = (X0 + XM) / 2  # between the two south-west unit grids; version 2 moves it 0.005° east
CHUNK = 64

RECORD = """select r.incident_id, r.version_id, r.status::text, r.district_id, r.street_id, r.community_id,
                   r.grid_id, r.candidates, r.snap_distance_m, r.staff::text
              from incident_routing r where r.reason = 'reroute' and r.id > %s order by r.incident_id"""
COPY = "routing_id, version_id, routing_status, district_id, street_id, community_id, grid_id"


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as local:
        yield local


def points(rng):
    """270 reports: anywhere in and just around the partition (snapping distance), in the strip that moves
    to the other unit grid, on the grid's own lines (shared edges, vertices), and far away (unrouted); most
    with a GPS accuracy (some circles reach the next cell: ambiguous)."""
    pad = 0.0006
    groups = [
        (rng.uniform(X0 - pad, X1 + pad, 150), rng.uniform(Y0 - pad, Y1 + pad, 150)),
        (rng.uniform(EDGE, EDGE + 0.005, 60), rng.uniform(Y0, YM, 60)),
        (rng.choice([X0, EDGE, XM, (XM + X1) / 2, X1], 40), rng.choice([Y0, YM, Y1, Y0 + 0.013, YM + 0.02], 40)),
        (rng.uniform(X1 + 0.05, X1 + 0.1, 20), rng.uniform(Y0, Y1, 20)),
    ]
    lon = np.concatenate([g[0] for g in groups])
    lat = np.concatenate([g[1] for g in groups])
    accuracy = np.where(rng.random(len(lon)) < 0.2, np.nan, np.round(rng.uniform(2.5, 60, len(lon)), 1))
    return lon, lat, accuracy


def reroute_rows(db, runner, *args):
    """Run `incidents reroute --commit` and return its output lines (less the Dask one) and its records."""
    with db.cursor() as cur:
        cur.execute("select coalesce(max(id), 0) as last from incident_routing")
        last = cur.fetchone()["last"]
    result = run(runner, "incidents", "reroute", "--commit", *args)
    assert result.exit_code == 0, result.output
    with db.cursor() as cur:
        cur.execute(RECORD, (last,))
        records = cur.fetchall()
    lines = [line for line in result.output.splitlines() if not line.startswith("routed on the Dask cluster")]
    return result.output, lines, records


def test_reroute_on_a_dask_cluster_writes_what_a_local_reroute_writes(active, runner, tmp_path, cluster,  # noqa: F811
                                                                      monkeypatch):
    monkeypatch.delenv("GRIDMAP_DASK_SCHEDULER", raising=False)
    lon, lat, accuracy = points(np.random.default_rng(9))
    with active.cursor() as cur:
        cur.execute("""insert into incident (category, given_x, given_y, given_crs, geom, accuracy_m, source,
                                             reported_at)
                       select '0102', x, y, 'EPSG:4326', ST_SetSRID(ST_MakePoint(x, y), 4326), a, 'import', now()
                         from unnest(%s::float8[], %s::float8[], %s::real[]) as p(x, y, a)""",
                    (lon.tolist(), lat.tolist(), [None if math.isnan(a) else a for a in accuracy.tolist()]))
        route_unrouted(cur)  # routed against version 1
        cur.execute("update incident set status = 'closed' where id % 9 = 0")
    moved_partition(tmp_path, runner, 0.005)
    with active.cursor() as cur:  # activated without the re-routing `grid activate` does
        grid_store.activate(cur, 2, actor="tester")
        cur.execute("insert into staff (name, phone) values ('王网格', '13800000001')")  # on the records too
        cur.execute("insert into cell_staff select c.id, s.id, 'grid_worker' from grid_cell c, staff s"
                    " where c.code like '41010500100100_'")
        cur.execute(f"select {COPY}, id from incident order by id")
        before = [tuple(r.values()) for r in cur.fetchall()]
        cur.execute("select count(*) as n from incident where status not in ('closed', 'voided')")
        n_open = cur.fetchone()["n"]

    _, local_lines, local_records = reroute_rows(active, runner)

    with active.cursor() as cur:  # the incidents' copy of their routing as it was: the same run again
        cur.executemany(f"update incident set ({COPY}) = (%s, %s, %s, %s, %s, %s, %s) where id = %s", before)
    output, dask_lines, dask_records = reroute_rows(active, runner, "--dask-scheduler", cluster.scheduler_address,
                                                    "--chunk-size", CHUNK)

    chunks = -(-n_open // CHUNK)
    assert f"routed on the Dask cluster at {cluster.scheduler_address}: {chunks} chunk(s) of at most 64" in output
    assert dask_lines == local_lines
    assert dask_records == local_records
    moved = int(local_lines[0].split()[0])
    statuses = {r["status"] for r in local_records}
    assert moved > 40 and len(local_records) == n_open > 200
    assert statuses == {"routed", "shared_edge", "ambiguous", "snapped", "unrouted"}, statuses
    assert any(r["staff"] != "[]" for r in local_records)
    with Client(cluster, set_as_default=False) as client:
        counts = client.run(dask_routing.worker_counts)
    # each worker that routed built the router once, not once per chunk
    assert sum(c["chunks"] for c in counts.values()) == chunks
    assert all(c["built"] == (1 if c["chunks"] else 0) for c in counts.values()), counts


def test_routing_in_chunks_on_the_cluster_gives_every_answer_of_a_local_run(active, cluster):  # noqa: F811
    with active.cursor() as cur:
        router = GridRouter.from_database(cur)
    lon, lat, accuracy = points(np.random.default_rng(3))
    accuracy = np.nan_to_num(accuracy)
    local = router.route(lon, lat, accuracy, 30.0)
    with Client(cluster, set_as_default=False) as client:
        routed = dask_routing.DaskRouting(client, chunk_size=25).route(router, lon, lat, accuracy, 30.0)
    for name in ("status", "chosen", "cells", "snap_distance_m", "inside_several"):
        assert np.array_equal(getattr(routed, name), getattr(local, name), equal_nan=True), name
    assert routed.candidates == local.candidates and len(local.candidates) > 30
    assert router.candidate_codes(routed) == router.candidate_codes(local)


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_a_clear_error(runner, monkeypatch):
    address = f"tcp://127.0.0.1:{unused_port()}"
    monkeypatch.setenv("GRIDMAP_DASK_SCHEDULER", address)
    result = run(runner, "incidents", "reroute", "--dask-timeout", "1")
    assert result.exit_code == 2
    assert f"error: cannot reach the Dask scheduler at {address}" in result.output
    assert "Traceback" not in result.output


def test_chunk_size_needs_a_scheduler(runner, monkeypatch):
    monkeypatch.delenv("GRIDMAP_DASK_SCHEDULER", raising=False)
    result = run(runner, "incidents", "reroute", "--chunk-size", "1000")
    assert result.exit_code == 2 and "give --dask-scheduler too" in result.output
