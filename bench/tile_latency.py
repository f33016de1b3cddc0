"""Tile latency over the demo city: p50/p95 of ``/tiles/<level>/<z>/<x>/<y>.pbf`` through the Flask test client.

Reads the configured database (the Zhengzhou demo, ``gridmap demo``) in read-only transactions: ~190 tiles at
zooms 10–16 around the city centre at level 3, and at level 1 for zooms 10–12; one warm-up pass, then the
measured one. ``python -m bench.tile_latency [--filters 'since=2026-11-01&status=open']``. Not part of
``make bench``, which works in a database of its own.
"""
import argparse
import math
import statistics
import time
from urllib.parse import quote

from gis.settings import Settings

CENTRE = (113.65, 34.76)
# (level, zoom, half-width of the square of tiles around the centre)
PLAN = [(3, 10, 1), (3, 11, 1), *((3, z, 2) for z in range(12, 17)), (1, 10, 1), (1, 11, 1), (1, 12, 2)]


def tile_of(lon, lat, z):
    n = 2 ** z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def tiles():
    for level, z, r in PLAN:
        cx, cy = tile_of(*CENTRE, z)
        for dx in range(-r, r + 1):
            for dy in range(-r, r + 1):
                yield level, z, cx + dx, cy + dy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--filters", default="", help="a query string added to every tile")
    args = parser.parse_args()
    from webmap import create_app

    url = Settings.from_env().database_url
    url += ("&" if "?" in url else "?") + "options=" + quote("-c default_transaction_read_only=on")
    app = create_app({"DATABASE_URL": url, "ROUTE_IN_WORKER": False})
    client = app.test_client()
    query = f"?{args.filters}" if args.filters else ""
    todo = list(tiles())
    for level, z, x, y in todo:  # warm-up: connections, PROJ, caches
        client.get(f"/tiles/{level}/{z}/{x}/{y}.pbf{query}")
    by_zoom, every = {}, []
    for level, z, x, y in todo:
        t0 = time.perf_counter()
        r = client.get(f"/tiles/{level}/{z}/{x}/{y}.pbf{query}")
        ms = (time.perf_counter() - t0) * 1000
        assert r.status_code in (200, 204), r.data
        every.append(ms)
        by_zoom.setdefault((level, z), []).append((ms, len(r.data)))
    print(f"{'level':>5} {'z':>3} {'tiles':>5} {'p50 ms':>8} {'max ms':>8} {'mean kB':>8}")
    for (level, z), rows in sorted(by_zoom.items()):
        ms = [m for m, _ in rows]
        print(f"{level:>5} {z:>3} {len(rows):>5} {statistics.median(ms):>8.1f} {max(ms):>8.1f} "
              f"{statistics.mean(b for _, b in rows) / 1024:>8.1f}")
    every.sort()
    print(f"all {len(every)} tiles: p50 {statistics.median(every):.1f} ms, "
          f"p95 {every[int(0.95 * (len(every) - 1))]:.1f} ms, max {every[-1]:.1f} ms")


if __name__ == "__main__":
    main()
