"""Single reports over HTTP through gunicorn on loopback: latency at a steady 200 reports/s, sent open
loop (on schedule, whatever the answers; latency counted from the scheduled time) by a small asyncio
client, then the sustained rate with wrk (bench/intake.lua) keeping the server busy — and afterwards
every acknowledged report is looked up: each must be stored exactly once.

The load generators run on the same 2 cores as gunicorn and PostgreSQL, so the figures are a floor, not
a ceiling; wrk, written in C, takes about 7 % of one core at 300 requests/s. (wrk cannot pace itself
against gunicorn's sync workers: a connection it holds open while pausing blocks a worker.)

The reports come as a field device's do: with the API key of a city-wide ``device`` (made in the bench
database, without a rate limit) in an ``Authorization: Bearer`` header, so each is authenticated too."""
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import requests

from bench.credentials import api_key, auth_header, secret_key
from gis.demo_load import load_demo
from gis.settings import Settings

STEADY_RATE = 200
STEADY_SECONDS = 20
SUSTAINED_SECONDS = 20
SUSTAINED_CONNECTIONS = 16
GUNICORN_WORKERS = 4
WRK_SCRIPT = Path(__file__).with_name("intake.lua")


def run(db, rows):
    load_demo(db, Settings.from_env(), echo=lambda line: print("  " + line))  # at once if loaded already
    with db.cursor(autocommit=True) as cur:  # measure a settled database, not one busy with the load's aftermath
        cur.execute("vacuum analyze")
    with db.cursor() as cur:
        cur.execute("select ST_X(p) as lon, ST_Y(p) as lat from (select ST_PointOnSurface(c.geom) as p"
                    " from grid_cell c join grid_version v on v.id = c.version_id and v.status = 'active'"
                    " where c.level = 3 order by c.code limit 5000) s")
        points = [(r["lon"], r["lat"]) for r in cur.fetchall()]
    key = api_key(db, "intake", role="device")  # a field device's key, the whole city, no rate limit
    port = _free_port()
    server = _gunicorn(db.url, port)
    try:
        base = f"http://127.0.0.1:{port}"
        for i in range(10 * GUNICORN_WORKERS):  # each worker builds its router on its first report
            requests.post(f"{base}/api/v1/reports", json=_report(points, i), headers=auth_header(key),
                          timeout=30).raise_for_status()
        time.sleep(10)
        steady = asyncio.run(_steady(port, points, key, rate=STEADY_RATE, seconds=STEADY_SECONDS))
        p50, p99 = (float(v) for v in np.percentile(steady["latencies"], [50, 99]) * 1000)
        errors = steady["errors"]
        print(f"  steady {STEADY_RATE}/s for {STEADY_SECONDS} s: {len(steady['latencies']):,} reports, p50 "
              f"{p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors")
        sustained = _wrk(base, points, key, connections=SUSTAINED_CONNECTIONS, seconds=SUSTAINED_SECONDS)
        acknowledged = sustained["acknowledged"]
        rate = len(acknowledged) / SUSTAINED_SECONDS
        print(f"  sustained (wrk, {SUSTAINED_CONNECTIONS} connections): {rate:,.0f} reports/s, p50 "
              f"{sustained['p50']:.1f} ms, p99 {sustained['p99']:.1f} ms, {sustained['refused']} refused")
        acknowledged += steady["acknowledged"]
        lost, doubled = _verify(db, acknowledged)
        print(f"  {len(acknowledged):,} acknowledged reports: {lost} missing, {doubled} stored twice")
    finally:
        server.terminate()
        server.wait(10)
    rows.append(dict(name=f"report intake p99 at {STEADY_RATE}/s (gunicorn)", figure=p99, unit="ms", peer=None,
                     peer_figure=None, ratio=None, target="< 50 ms", met=p99 < 50 and errors == 0))
    rows.append(dict(name=f"report intake p50 at {STEADY_RATE}/s", figure=p50, unit="ms", peer=None, peer_figure=None,
                     ratio=None, target="(reported)", met=True))
    rows.append(dict(name="sustained report intake, nothing lost", figure=rate, unit="/s", peer=None,
                     peer_figure=None, ratio=None, target="≥ 1,000 /s", met=rate >= 1000 and lost == doubled == 0
                     and sustained["refused"] == 0))
    rows.append(dict(name="acknowledged reports lost or doubled", figure=lost + doubled, unit="", peer=None,
                     peer_figure=None, ratio=None, target="0", met=lost + doubled == 0))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gunicorn(url, port, ready_path="/health", headers=None):
    """gunicorn serving the app on ``url``'s database, once ``ready_path`` answers 200 (asked with ``headers``)."""
    env = dict(os.environ, DATABASE_URL=url, GRIDMAP_SECRET_KEY=secret_key())  # one key for every worker
    server = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(GUNICORN_WORKERS), "--log-level", "warning", "webmap:create_app()"], env=env)
    for _ in range(200):
        try:
            if requests.get(f"http://127.0.0.1:{port}{ready_path}", headers=headers, timeout=10).status_code == 200:
                return server
        except requests.RequestException:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("gunicorn did not start")


def _report(points, i):
    lon, lat = points[i % len(points)]
    return {"lon": lon, "lat": lat, "category": "0102", "accuracy_m": 8, "client_request_id": str(uuid.uuid4()),
            "description": "bench"}


async def _steady(port, points, key, *, rate, seconds):
    """Open loop: report i is sent at start + i / rate on a new connection (gunicorn's sync workers close
    each one); its latency runs from that moment to the end of the answer."""
    latencies, acknowledged, errors = [], [], []

    async def send(i, scheduled):
        body = json.dumps(_report(points, i)).encode()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /api/v1/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Authorization: Bearer %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                         % (key.encode(), len(body), body))
            answer = await reader.read()  # to the end: the server closes
            writer.close()
            ok = answer.startswith((b"HTTP/1.1 201", b"HTTP/1.1 200"))
        except OSError:
            ok = False
        latencies.append(time.monotonic() - scheduled)
        (acknowledged if ok else errors).append(json.loads(body)["client_request_id"])

    start = time.monotonic() + 0.2
    tasks = []
    for i in range(int(rate * seconds)):
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        tasks.append(asyncio.create_task(send(i, scheduled)))
    await asyncio.gather(*tasks)
    return {"latencies": np.array(latencies), "acknowledged": acknowledged, "errors": len(errors)}


def _wrk(base, points, key, *, connections, seconds):
    """wrk with bench/intake.lua: each request a new report (with the API ``key``); the ids it saw
    acknowledged come back."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (scripts/system-deps.sh --bench)")
    with tempfile.TemporaryDirectory() as tmp:
        point_file = Path(tmp, "points.csv")
        point_file.write_text("".join(f"{lon!r},{lat!r}\n" for lon, lat in points))
        acks = Path(tmp, "ack")
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPT), base, "--",
             str(point_file), str(acks), f"bench-{uuid.uuid4().hex[:8]}", "0102", key],
            capture_output=True, text=True, check=True).stdout
        acknowledged = [line for f in Path(tmp).glob("ack*") for line in f.read_text().split()]
    latency = {p: float(v) for p, v in re.findall(r"latency p(\d+) ([\d.]+) ms", out)}
    refused = sum(int(n) for n in re.findall(r"(\d+) answers other than", out))
    return {"acknowledged": acknowledged, "p50": latency["50"], "p99": latency["99"], "refused": refused}


def _verify(db, acknowledged):
    with db.cursor() as cur:
        cur.execute("select client_request_id, count(*) as n from incident where client_request_id = any(%s)"
                    " group by 1", (acknowledged,))
        stored = {r["client_request_id"]: r["n"] for r in cur.fetchall()}
    lost = sum(1 for rid in acknowledged if rid not in stored)
    doubled = sum(1 for n in stored.values() if n > 1)
    return lost, doubled
