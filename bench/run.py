"""`make bench`: every benchmark of the project, one table, and bench/results/<date>.json.

Each benchmark measures GridMap and the peer a user would pick instead, in the same run on the same
data. It works in a database of its own (``<name>_bench``), never the demo's.
"""
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

from bench import (bench_activation, bench_dask, bench_load, bench_map, bench_partition, bench_planner,
                   bench_routing, bench_stats, bench_tiles)
from gis import cases, event_classes
from gis.db import Database, migrate, recreate_database, sibling_database_url
from gis.settings import Settings

BENCHMARKS = [bench_partition, bench_planner, bench_routing, bench_dask, bench_load, bench_stats, bench_tiles,
              bench_map, bench_activation]
RESULTS = Path(__file__).resolve().parent / "results"


def machine():
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def main(names=None):
    """Run every benchmark, or those named (``python -m bench.run routing http``)."""
    chosen = [b for b in BENCHMARKS if not names or b.__name__.split("_", 1)[1] in names]
    url = sibling_database_url(Settings.from_env().database_url, "_bench")
    recreate_database(url)
    db = Database(url)
    migrate(db)
    event_classes.sync(db)
    cases.sync_calendar(db)
    rows = []
    started = time.perf_counter()
    for bench in chosen:
        print(f"{bench.__name__}:")
        bench.run(db, rows)
    db.close()
    print()
    print(f"{'benchmark':<58} {'GridMap':>12} {'peer':>10} {'ratio':>7}  {'target':<20} met")
    for r in rows:
        peer = "" if r["peer_figure"] is None else f"{r['peer_figure']:.2f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['name']:<58} {r['figure']:>8.2f} {r['unit']:<3} {peer:>10} {ratio:>7}  {r['target']:<20} "
              f"{'yes' if r['met'] else 'NO'}")
    for r in rows:
        if r["peer"]:
            print(f"  peer of '{r['name']}': {r['peer']}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps({"machine": machine(), "seconds": round(time.perf_counter() - started, 1),
                               "results": rows}, ensure_ascii=False, indent=1))
    print(f"results: {out}")
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
