"""Single reports over HTTP through gunicorn on loopback: latency at a steady 200 reports/s, then the
sustained rate with as many clients as keep the server busy — and afterwards every acknowledged report
is looked up: each must be stored exactly once.

The load generator runs in its own processes on the same 2 cores as gunicorn and PostgreSQL, so the
figures are a floor, not a ceiling."""
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests

from gis.demo_load import load_demo
from gis.settings import Settings

STEADY_RATE = 200
STEADY_SECONDS = 20
SUSTAINED_SECONDS = 20
SUSTAINED_CLIENTS = 24
GUNICORN_WORKERS = 4


def run(db, rows):
    load_demo(db, Settings.from_env(), echo=lambda line: print("  " + line))  # at once if loaded already
    with db.cursor() as cur:
        cur.execute("select ST_X(p) as lon, ST_Y(p) as lat from (select ST_PointOnSurface(c.geom) as p"
                    " from grid_cell c join grid_version v on v.id = c.version_id and v.status = 'active'"
                    " where c.level = 3 order by c.code limit 5000) s")
        points = [(r["lon"], r["lat"]) for r in cur.fetchall()]
    port = _free_port()
    server = _gunicorn(db.url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        steady = _in_processes(_steady, base, points, processes=2, rate=STEADY_RATE / 2, seconds=STEADY_SECONDS)
        latencies = np.concatenate([s["latencies"] for s in steady])
        errors = sum(s["errors"] for s in steady)
        p50, p99 = (float(v) for v in np.percentile(latencies, [50, 99]) * 1000)
        print(f"  steady {STEADY_RATE}/s for {STEADY_SECONDS} s: {len(latencies):,} reports, p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, {errors} errors")
        sustained = _in_processes(_closed_loop, base, points, processes=2, clients=SUSTAINED_CLIENTS // 2,
                                  seconds=SUSTAINED_SECONDS)
        acknowledged = [rid for s in sustained for rid in s["acknowledged"]]
        rate = len(acknowledged) / SUSTAINED_SECONDS
        s_errors = sum(s["errors"] for s in sustained)
        s_lat = np.concatenate([s["latencies"] for s in sustained]) * 1000
        rate = float(rate)
        print(f"  sustained with {SUSTAINED_CLIENTS} clients: {rate:,.0f} reports/s, p50 {np.percentile(s_lat, 50):.1f} ms,"
              f" p99 {np.percentile(s_lat, 99):.1f} ms, {s_errors} errors")
        acknowledged += [rid for s in steady for rid in s["acknowledged"]]
        lost, doubled = _verify(db, acknowledged)
        print(f"  {len(acknowledged):,} acknowledged reports: {lost} missing, {doubled} stored twice")
    finally:
        server.terminate()
        server.wait(10)
    rows.append(dict(name=f"report intake p99 at {STEADY_RATE}/s (gunicorn)", figure=p99, unit="ms", peer=None,
                     peer_figure=None, ratio=None, target="< 50 ms", met=p99 < 50 and errors == 0))
    rows.append(dict(name="report intake p50 at 200/s", figure=p50, unit="ms", peer=None, peer_figure=None,
                     ratio=None, target="(reported)", met=True))
    rows.append(dict(name="sustained report intake, nothing lost", figure=rate, unit="/s", peer=None,
                     peer_figure=None, ratio=None, target="≥ 1,000 /s", met=rate >= 1000 and lost == doubled == 0))
    rows.append(dict(name="acknowledged reports lost or doubled", figure=lost + doubled, unit="", peer=None,
                     peer_figure=None, ratio=None, target="0", met=lost + doubled == 0))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gunicorn(url, port):
    env = dict(os.environ, DATABASE_URL=url)
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(GUNICORN_WORKERS), "--log-level", "warning", "webmap:create_app()"], env=env)
    for _ in range(200):
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def _in_processes(fn, base, points, *, processes, **kwargs):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        return pool.starmap(_call, [(fn, base, points[i::processes], kwargs) for i in range(processes)])


def _call(fn, base, points, kwargs):
    return fn(base, points, **kwargs)


def _report(points, i):
    lon, lat = points[i % len(points)]
    return {"lon": lon, "lat": lat, "category": "0102", "accuracy_m": 8, "client_request_id": str(uuid.uuid4()),
            "description": "bench"}


def _post(session, body):
    """POST until acknowledged (retrying with the same client_request_id, as a phone would)."""
    for attempt in range(5):
        try:
            r = session.post("/api/v1/reports", json=body, timeout=10)
            if r.status_code in (200, 201):
                return True
        except requests.RequestException:
            pass
        time.sleep(0.05 * 2 ** attempt)
    return False


class _Session(requests.Session):
    def __init__(self, base):
        super().__init__()
        self.base = base

    def request(self, method, url, *args, **kwargs):
        return super().request(method, self.base + url, *args, **kwargs)


def _steady(base, points, *, rate, seconds):
    """Open loop: a report every 1/rate s whatever the answers; latency counted from the scheduled send."""
    local = threading.local()
    latencies, acknowledged, errors = [], [], []

    def send(i, scheduled):
        session = getattr(local, "session", None) or _Session(base)
        local.session = session
        body = _report(points, i)
        ok = _post(session, body)
        latencies.append(time.monotonic() - scheduled)
        (acknowledged if ok else errors).append(body["client_request_id"])

    start = time.monotonic() + 0.2
    with ThreadPoolExecutor(64) as pool:
        for i in range(int(rate * seconds)):
            scheduled = start + i / rate
            time.sleep(max(0.0, scheduled - time.monotonic()))
            pool.submit(send, i, scheduled)
    return {"latencies": np.array(latencies), "acknowledged": acknowledged, "errors": len(errors)}


def _closed_loop(base, points, *, clients, seconds):
    deadline = time.monotonic() + seconds
    results = []

    def client(k):
        session = _Session(base)
        latencies, acknowledged, errors = [], [], 0
        i = k
        while time.monotonic() < deadline:
            body = _report(points, i)
            t0 = time.monotonic()
            if _post(session, body):
                acknowledged.append(body["client_request_id"])
                latencies.append(time.monotonic() - t0)
            else:
                errors += 1
            i += clients
        results.append((latencies, acknowledged, errors))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"latencies": np.array([x for r in results for x in r[0]]),
            "acknowledged": [x for r in results for x in r[1]], "errors": sum(r[2] for r in results)}


def _verify(db, acknowledged):
    with db.cursor() as cur:
        cur.execute("select client_request_id, count(*) as n from incident where client_request_id = any(%s)"
                    " group by 1", (acknowledged,))
        stored = {r["client_request_id"]: r["n"] for r in cur.fetchall()}
    lost = sum(1 for rid in acknowledged if rid not in stored)
    doubled = sum(1 for n in stored.values() if n > 1)
    return lost, doubled
