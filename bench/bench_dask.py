"""Routing on a Dask cluster (`gridmap incidents reroute --dask-scheduler`): 1,000,000 points on the Zhengzhou
demo grid, with GPS accuracies as incidents have them, routed by a LocalCluster of one worker and of two (worker
processes of one thread each), through the code the command uses (gis/dask_routing.py), against the same
points routed in this process (the local run, whose kernels use every core).

Timed: what `--dask-scheduler` puts in place of the local routing, the router's inputs scattered, the chunks
sent, routed and gathered, and their answers put together; not the reading and writing of the database, the
same in both. The median of three runs on a warm cluster (each worker has built its index), and the first
run, in which each worker builds it, apart. The machine's load average is printed beside each figure: it
has two cores, which the coordinator (this process) shares with the workers.
"""
import os
import statistics
import time

import numpy as np
from distributed import Client, LocalCluster

from bench.bench_routing import _points
from gis.batch_routing import GridRouter
from gis.dask_routing import DEFAULT_CHUNK_SIZE, DaskRouting, worker_counts
from gis.demo_load import load_demo
from gis.settings import Settings

N_POINTS = 1_000_000
RUNS = 3
SEED = 5


def run(db, rows):
    load_demo(db, Settings.from_env(), echo=lambda line: print("  " + line))
    with db.cursor() as cur:
        lon, lat = _points(cur, N_POINTS)
    accuracy = _accuracies(np.random.default_rng(SEED), len(lon))
    with db.connection() as conn, conn.cursor() as cur:
        router = GridRouter.from_database(cur)
    print(f"  {len(lon):,} points (as bench_routing's), GPS accuracy on {np.mean(accuracy > 0):.0%} of them "
          f"(median {np.median(accuracy[accuracy > 0]):.1f} m); chunks of {DEFAULT_CHUNK_SIZE:,} points")

    router.route(lon[:1000], lat[:1000], accuracy[:1000])  # compiled code is cached on disk; this loads it
    local_s, local = _timed(lambda: router.route(lon, lat, accuracy, 30.0))
    print(f"  in this process: {local_s:.2f} s (median of {RUNS}; load {_load()}): {local.status_counts()}")

    warm, differing = {}, {}
    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            routing = DaskRouting(client, chunk_size=DEFAULT_CHUNK_SIZE)
            t0 = time.perf_counter()
            routing.route(router, lon, lat, accuracy, 30.0)
            cold_s = time.perf_counter() - t0
            warm[n_workers], routed = _timed(lambda: routing.route(router, lon, lat, accuracy, 30.0))
            counts = client.run(worker_counts)
        differing[n_workers] = _differences(router, local, routed)
        print(f"  Dask, {n_workers} worker(s): {warm[n_workers]:.2f} s warm (median of {RUNS}; load {_load()}), "
              f"{cold_s:.2f} s for the first run (each worker builds its index); "
              f"{[c['chunks'] for c in counts.values()]} chunks per worker, "
              f"{[c['built'] for c in counts.values()]} built; {differing[n_workers]} point(s) answered otherwise")
        if n_workers == 2:
            cold_2 = cold_s
    speedup = warm[1] / warm[2]
    print(f"  2 workers against 1: {speedup:.2f}x as fast; 2 workers against this process: "
          f"{local_s / warm[2]:.2f}x as fast")

    rows.append(dict(name="Dask routing, 1M points, 2 workers", figure=warm[2], unit="s",
                     peer="the same on a 1-worker LocalCluster (1 thread per worker)", peer_figure=warm[1],
                     ratio=warm[2] / warm[1], target="≤ 0.67 (1.5× on 2)", met=warm[2] / warm[1] <= 0.67))
    rows.append(dict(name="Dask routing, 1M points, 2 workers vs in process", figure=warm[2], unit="s",
                     peer="GridRouter.route in the coordinator (numba on every core)", peer_figure=local_s,
                     ratio=warm[2] / local_s, target="(reported)", met=True))
    rows.append(dict(name="Dask routing, first run on 2 workers (index built)", figure=cold_2, unit="s",
                     peer=None, peer_figure=None, ratio=None, target="(reported)", met=True))
    worst = max(differing.values())
    rows.append(dict(name="Dask answers differing from in-process (1M pts)", figure=worst, unit="pts",
                     peer=None, peer_figure=None, ratio=None, target="0", met=worst == 0))


def _accuracies(rng, n):
    """As gis/demo_history.py makes them: mostly 3-15 m, a tail up to 50 m; a fifth without (0, as reroute
    reads a missing one)."""
    acc = np.exp(rng.normal(np.log(7.0), 0.4, size=n))
    tail = rng.random(n) < 0.06
    acc[tail] = rng.uniform(15.0, 50.0, size=int(tail.sum()))
    acc = np.round(np.clip(acc, 2.5, 50.0), 1)
    return np.where(rng.random(n) < 0.2, 0.0, acc)


def _timed(call):
    """The median time of RUNS calls, and the last answer."""
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        answer = call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), answer


def _differences(router, expected, got):
    """Points whose status, cells, snapping distance, overlap flag or candidates differ."""
    same = ((expected.status == got.status) & (expected.chosen == got.chosen)
            & (expected.cells == got.cells).all(axis=1) & (expected.inside_several == got.inside_several)
            & ((expected.snap_distance_m == got.snap_distance_m)
               | (np.isnan(expected.snap_distance_m) & np.isnan(got.snap_distance_m))))
    same &= np.array([a == b for a, b in zip(router.candidate_codes(expected), router.candidate_codes(got))])
    return int((~same).sum())


def _load():
    return "/".join(f"{x:.1f}" for x in os.getloadavg())
