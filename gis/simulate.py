"""Live field reports over HTTP: grid workers' phones posting to ``POST /api/v1/reports`` at a steady rate.

Where and what comes from the history's model (:mod:`gis.demo_history`: hot spots, urban density, the
category mix, a few points just outside the city). The unit grids it draws on are ``cells`` if given, else
those of the running server's active version inside ``bbox`` (default: central Zhengzhou, ±0.05° around
二七塔, at most 5,000 grids — one GET at start-up; outside that box nothing is drawn, and "just outside
the city" means just outside the fetched grids).

Every report has a fresh ``client_request_id`` (uuid4); about a third come as a phone with an AMap SDK
sends them, in GCJ-02 (``crs: "gcj02"``). A POST that fails to connect or gets a 5xx is sent again with
the same body, so the server answers a retry of a stored report with 200 and the same incident.
"""
from __future__ import annotations

import json
import math
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import requests
import shapely.geometry
from requests.adapters import HTTPAdapter

from gis import crs as crs_mod
from gis import demo_history
from gis.errors import BadInput, GridMapError

DEFAULT_BBOX = (113.6154, 34.7066, 113.7154, 34.8066)  # ±0.05° around 二七塔 (113.6654, 34.7566)
MAX_CELLS = 5000
GCJ02_SHARE = 0.3
RETRIES = 3
BACKOFF_S = 0.25        # first retry after 0.25 s, then 0.5 s, 1 s
TIMEOUT_S = 10.0
PROGRESS_EVERY_S = 5.0


def fetch_cells(base_url, *, bbox=DEFAULT_BBOX, limit=MAX_CELLS, session=None):
    """The active version's unit grids inside ``bbox`` from ``GET /api/v1/grids``, as a DataFrame."""
    http = session or requests.Session()
    try:
        response = http.get(f"{base_url.rstrip('/')}/api/v1/grids",
                            params={"level": 3, "bbox": ",".join(str(v) for v in bbox), "limit": limit},
                            timeout=60)
    except requests.RequestException as exc:
        reason = "connection refused" if isinstance(exc, requests.ConnectionError) else type(exc).__name__
        raise GridMapError(f"cannot reach {base_url} ({reason}): is the server running?") from None
    finally:
        if session is None:
            http.close()
    if response.status_code != 200:
        raise GridMapError(f"GET /api/v1/grids answered {response.status_code}: {response.text[:300]}")
    features = response.json().get("features") or []
    if not features:
        raise BadInput(f"the server has no unit grids inside {bbox}: load a grid, or pass cells / another bbox")
    props = [f.get("properties") or {} for f in features]
    geoms = np.empty(len(features), dtype=object)
    geoms[:] = [shapely.geometry.shape(f["geometry"]) for f in features]
    return pd.DataFrame({
        "code": [p.get("code") for p in props],
        "name": [p.get("name") or "" for p in props],
        "kind": [p.get("kind") or "regular" for p in props],
        "population": np.array([p.get("population") if p.get("population") is not None else np.nan
                                for p in props], dtype=float),
        "area_m2": np.array([p.get("area_m2") if p.get("area_m2") is not None else np.nan for p in props],
                            dtype=float),
        "geometry": geoms,
    })


class ReportSource:
    """Report bodies drawn from the history's model, a batch at a time."""

    def __init__(self, cells, rng, *, gcj02_share=GCJ02_SHARE):
        self.rng = rng
        self.model = demo_history.LocationModel.from_cells(cells, rng)
        self.gcj02_share = gcj02_share
        self._batch = []

    def next(self):
        if not self._batch:
            self._batch = self._draw(256)
        return self._batch.pop()

    def _draw(self, n):
        frame = demo_history.draw_reports(self.model, self.rng, n, field_app_only=True)
        gcj = self.rng.random(n) < self.gcj02_share
        x, y = frame["lon"].to_numpy().copy(), frame["lat"].to_numpy().copy()
        if gcj.any():
            gx, gy = crs_mod.from_wgs84(x[gcj], y[gcj], "gcj02")
            x[gcj], y[gcj] = np.round(gx, 7), np.round(gy, 7)
        bodies = []
        for i, row in enumerate(frame.itertuples(index=False)):
            body = {"lon": float(x[i]), "lat": float(y[i]), "category": row.category,
                    "description": row.description, "accuracy_m": float(row.accuracy_m),
                    "client_request_id": str(uuid.uuid4()), "reporter": json.loads(row.reporter)}
            if gcj[i]:
                body["crs"] = "gcj02"
            bodies.append(body)
        bodies.reverse()  # pop() from the end: keep the drawing order
        return bodies


def post_report(session, base_url, body, *, retries=RETRIES, backoff_s=BACKOFF_S, timeout_s=TIMEOUT_S):
    """POST one report, again (same body, same client_request_id) after a connection error or a 5xx, at
    most ``retries`` times, waiting ``backoff_s`` · 2^k. Returns ``(status or None, seconds, attempts, error)``."""
    url = f"{base_url.rstrip('/')}/api/v1/reports"
    started = time.monotonic()
    error = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            response = session.post(url, json=body, timeout=timeout_s)
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
            continue
        if response.status_code >= 500:
            error = f"{response.status_code}: {response.text[:200]}"
            continue
        error = None if response.status_code in (200, 201) else f"{response.status_code}: {response.text[:200]}"
        return response.status_code, time.monotonic() - started, attempt + 1, error
    return None, time.monotonic() - started, retries + 1, error


class _Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = self.created = self.repeated = self.errors = self.retried = 0
        self.latencies = []      # seconds, every report that got an answer
        self.window = []         # since the last progress line
        self.first_error = None

    def record(self, status, seconds, attempts, error):
        with self.lock:
            self.retried += attempts > 1
            if status == 201:
                self.created += 1
            elif status == 200:
                self.repeated += 1
            else:
                self.errors += 1
                self.first_error = self.first_error or error
            if status is not None:
                self.latencies.append(seconds)
                self.window.append(seconds)

    def take_window(self):
        with self.lock:
            window, self.window = self.window, []
        return window


def _percentiles_ms(values):
    if not values:
        return None, None
    p50, p99 = np.percentile(np.asarray(values) * 1000.0, [50, 99])
    return round(float(p50), 1), round(float(p99), 1)


def simulate(base_url, *, rate=20.0, duration=None, count=None, seed=None, cells=None, session=None,
             echo=print, concurrency=None, bbox=DEFAULT_BBOX, gcj02_share=GCJ02_SHARE,
             progress_every=PROGRESS_EVERY_S, api_key=None):
    """Post reports to ``{base_url}/api/v1/reports`` at ``rate`` per second until ``duration`` seconds,
    ``count`` reports or Ctrl-C, whichever comes first.

    Reports leave on a steady schedule (time.monotonic), handed to ``concurrency`` workers (default
    rate/10, 2..16); when all are busy the schedule waits rather than bursting to catch up. One line per
    ``progress_every`` seconds: sent, 201s, 200s (repeats), errors, p50/p99 latency of that interval.

    ``api_key``: sent as ``Authorization: Bearer …`` by the session made here (a ``session`` passed in
    carries its own headers).

    Returns a summary dict: sent, created, repeated, errors, retried, seconds, rate (achieved),
    p50_ms, p99_ms, interrupted, first_error.
    """
    if not rate > 0:
        raise BadInput("rate must be > 0 reports per second")
    if count is not None and count < 0:
        raise BadInput("count must be ≥ 0")
    concurrency = concurrency or min(16, max(2, math.ceil(rate / 10)))
    own_session = session is None
    if own_session:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=concurrency)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        if api_key:
            session.headers["Authorization"] = f"Bearer {api_key}"
    rng = np.random.default_rng(seed)
    try:
        if cells is None:
            cells = fetch_cells(base_url, bbox=bbox, session=session)
        reports = ReportSource(cells, rng, gcj02_share=gcj02_share)
        echo(f"posting to {base_url.rstrip('/')}/api/v1/reports at {rate:g}/s from {len(cells):,} unit grids"
             + (f", {count:,} reports" if count is not None else "")
             + (f", for {duration:g} s" if duration is not None else "") + " (Ctrl-C stops)")
        return _run(base_url, session, reports, rate=rate, duration=duration, count=count,
                    concurrency=concurrency, echo=echo, progress_every=progress_every)
    finally:
        if own_session:
            session.close()


def _run(base_url, session, reports, *, rate, duration, count, concurrency, echo, progress_every):
    stats = _Stats()
    slots = threading.BoundedSemaphore(concurrency)
    interval = 1.0 / rate

    def send(body):
        try:
            stats.record(*post_report(session, base_url, body))
        except Exception as exc:  # noqa: BLE001 - a worker must not die silently
            stats.record(None, 0.0, 1, f"{type(exc).__name__}: {exc}")
        finally:
            slots.release()

    def progress(now):
        p50, p99 = _percentiles_ms(stats.take_window())
        echo(f"{now - start:7.1f} s  sent {stats.sent:,}  201 {stats.created:,}  200 {stats.repeated:,}  "
             f"errors {stats.errors:,}  p50 {_ms(p50)}  p99 {_ms(p99)}")

    interrupted = False
    start = time.monotonic()
    next_at = start
    next_progress = start + progress_every
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="simulate")
    try:
        while count is None or stats.sent < count:
            now = time.monotonic()
            if duration is not None and now - start >= duration:
                break
            if now >= next_progress:
                progress(now)
                next_progress = now + progress_every
            wait = min(next_at, next_progress) - now
            if wait > 0:
                time.sleep(wait)
                continue
            while not slots.acquire(timeout=0.2):  # all workers busy: wait, keep reporting progress
                if time.monotonic() >= next_progress:
                    progress(time.monotonic())
                    next_progress = time.monotonic() + progress_every
            pool.submit(send, reports.next())
            stats.sent += 1
            next_at = max(next_at + interval, time.monotonic() - interval)  # late: no burst to catch up
    except KeyboardInterrupt:
        interrupted = True
        echo("interrupted: waiting for the reports in flight ...")
    finally:
        pool.shutdown(wait=True)
    seconds = time.monotonic() - start
    p50, p99 = _percentiles_ms(stats.latencies)
    summary = {"sent": stats.sent, "created": stats.created, "repeated": stats.repeated, "errors": stats.errors,
               "retried": stats.retried, "seconds": round(seconds, 2),
               "rate": round(stats.sent / seconds, 2) if seconds > 0 else None,
               "p50_ms": p50, "p99_ms": p99, "interrupted": interrupted, "first_error": stats.first_error}
    echo(f"done: sent {stats.sent:,} in {seconds:.1f} s ({summary['rate']}/s): 201 {stats.created:,}, "
         f"200 {stats.repeated:,}, errors {stats.errors:,}, retried {stats.retried:,}; "
         f"p50 {_ms(p50)}, p99 {_ms(p99)}" + (f"; first error: {stats.first_error}" if stats.first_error else ""))
    return summary


def _ms(value):
    return "-" if value is None else f"{value:g} ms"
