"""Reports at 1,000 a second through gunicorn, then again through a database restart and a killed worker:
nothing acknowledged is lost, nothing is stored twice, and a live-map client that follows the feed gets each
report's event exactly once.

The platform runs as ``make run`` serves it — gunicorn, 2 gthread workers of 16 threads, the Zhengzhou demo —
on a PostgreSQL cluster made for the run (:class:`bench.faults.PrivateCluster`), so that restarting it
disturbs no other database. The clients are :mod:`bench.loadgen`'s: field devices that retry with the same
``client_request_id`` and a live-map client that reconnects with ``Last-Event-ID``. They run on the same
2 cores as gunicorn and PostgreSQL.

tests/test_load_faults.py runs the same scenarios at a small scale.
"""
import asyncio
import contextlib
import uuid

from bench import faults, loadgen
from bench.credentials import api_key, secret_key
from gis import cases, event_classes
from gis.db import Database, migrate
from gis.demo_load import load_demo
from gis.settings import Settings

RATE = 1000
SECONDS = 60
FAULT_SECONDS = 10
RESTART_AT, KILL_AT = 2, 6
TIMEOUT_S = 10.0  # how long a device waits for an answer before it sends the report again
# the feed's heartbeat is when a stream reads even without a notification (one lost while the database was
# away): short, so that the live client catches up soon after the faults
APP_CONFIG = {"LIVE_HEARTBEAT_S": 2.0, "LIVE_RETRY_MS": 500}


@contextlib.contextmanager
def platform(echo=print):
    """A cluster of its own with the demo loaded, gunicorn serving it, and ``(server, cluster, keys,
    points)``: keys of a city-wide device (to report) and viewer (to follow the feed)."""
    with faults.PrivateCluster() as cluster:
        db = Database(cluster.url)
        try:
            migrate(db)
            event_classes.sync(db)
            cases.sync_calendar(db)
            load_demo(db, Settings.from_env(), echo=echo)
            with db.cursor(autocommit=True) as cur:  # planner statistics now, not when autovacuum comes round
                cur.execute("vacuum analyze")
            keys = {"device": api_key(db, "load", role="device"), "viewer": api_key(db, "live", role="viewer")}
            with db.cursor() as cur:
                cur.execute("select ST_X(p) as lon, ST_Y(p) as lat from (select ST_PointOnSurface(c.geom) as p"
                            " from grid_cell c join grid_version v on v.id = c.version_id and v.status = 'active'"
                            " where c.level = 3 order by c.code limit 5000) s")
                points = [(r["lon"], r["lat"]) for r in cur.fetchall()]
            with faults.Gunicorn(cluster.url, secret_key=secret_key(), config=APP_CONFIG) as server:
                yield server, cluster, keys, points
        finally:
            db.close()


async def scenario(server, cluster, keys, points, *, rate, seconds, restart_at=None, kill_at=None,
                   catch_up_s=60):
    """One load, with the faults asked for, and a live client following the feed throughout:
    ``(tag, LoadResult, LiveFollower, caught_up)``."""
    tag = f"load-{uuid.uuid4().hex[:8]}"
    follower = loadgen.LiveFollower(server.base, keys["viewer"]).start()
    for _ in range(600):
        if follower.connections:
            break
        await asyncio.sleep(0.05)
    else:
        await follower.stop()
        raise RuntimeError("the live client could not connect to /api/v1/live in 30 s")
    planned = []
    if restart_at is not None:
        planned.append((restart_at, "database restart", cluster.restart))
    if kill_at is not None:  # the worker that serves the live client: it has to reconnect
        planned.append((kill_at, "worker killed", lambda: server.kill_worker(follower.port)))
    try:
        result = await loadgen.report_load(server.base, keys["device"], points, rate=rate, seconds=seconds,
                                           tag=tag, faults=planned, timeout_s=TIMEOUT_S)
        caught_up = await follower.wait_for(result.acknowledged.values(), catch_up_s)
    finally:
        await follower.stop()
    return tag, result, follower, caught_up


def run(db, rows):
    """``db`` (the benchmarks' own database) is not used: the faults need a cluster to themselves."""
    with platform(echo=lambda line: print("  " + line)) as (server, cluster, keys, points):
        # each worker builds its router on its first report
        asyncio.run(loadgen.report_load(server.base, keys["device"], points, rate=20, seconds=2, tag="warm"))
        tag, steady, follower, caught_up = asyncio.run(scenario(server, cluster, keys, points, rate=RATE,
                                                                seconds=SECONDS))
        print(f"  {RATE:,}/s for {SECONDS} s: {steady.summary()}")
        steady_bad = _report(cluster.url, tag, steady, follower, caught_up)
        tag, faulty, follower, caught_up = asyncio.run(scenario(
            server, cluster, keys, points, rate=RATE, seconds=FAULT_SECONDS, restart_at=RESTART_AT,
            kill_at=KILL_AT))
        print(f"  {RATE:,}/s for {FAULT_SECONDS} s, database restarted at {RESTART_AT} s, the live client's worker "
              f"killed at {KILL_AT} s: {faulty.summary()}")
        print(f"  faults: {faulty.faults}; the live client connected {follower.connections} times")
        faulty_bad = _report(cluster.url, tag, faulty, follower, caught_up)
    achieved = len(steady.acknowledged) / steady.seconds
    rows.append(dict(name=f"report intake at {RATE:,}/s for {SECONDS} s: reports/s acknowledged", figure=achieved,
                     unit="/s", peer=None, peer_figure=None, ratio=None, target=f"≥ {RATE:,} /s",
                     met=achieved >= 0.99 * RATE))
    rows.append(dict(name=f"report intake at {RATE:,}/s: p50", figure=steady.percentile(50), unit="ms", peer=None,
                     peer_figure=None, ratio=None, target="(reported)", met=True))
    rows.append(dict(name=f"report intake at {RATE:,}/s: p99", figure=steady.percentile(99), unit="ms", peer=None,
                     peer_figure=None, ratio=None, target="< 100 ms", met=steady.percentile(99) < 100))
    # "quickly instead of hanging": every 503 came before the client's timeout. Under this overload a 503
    # waits its turn behind the requests queued before it, like any answer.
    worst_503 = max(faulty.unavailable, default=0.0) * 1000
    rows.append(dict(name="database restart mid-load: slowest 503 answer", figure=worst_503, unit="ms", peer=None,
                     peer_figure=None, ratio=None, target=f"< {TIMEOUT_S * 1000:,.0f} ms, no timeout",
                     met=worst_503 < TIMEOUT_S * 1000 and faulty.failures["timeout"] == 0))
    rows.append(dict(name="load, restart, worker kill: reports lost or doubled", figure=steady_bad + faulty_bad,
                     unit="", peer=None, peer_figure=None, ratio=None, target="0", met=steady_bad + faulty_bad == 0))


def _report(url, tag, result, follower, caught_up):
    """Print what the database holds against what the clients saw; the number of reports amiss."""
    counts = loadgen.verify(url, tag, result, follower)
    counts["rejected or given up"] = len(result.rejected) + len(result.gave_up)
    print("  " + ", ".join(f"{what}: {n}" for what, n in counts.items())
          + ("" if caught_up else " — the live client had not caught up after 60 s"))
    return sum(counts.values())
