"""Vector tile latency (gis/tiles.py, ``/tiles/<level>/<z>/<x>/<y>.pbf``) over the Zhengzhou demo: the grid and
its history of 100,000 incidents, loaded as ``gridmap demo load`` and ``gridmap demo history`` do.

The tiles are those the map page asks for: each level from its least zoom (gis.tiles.MIN_ZOOM) to 16, the
tiles of a 1280 × 800 screen around the city centre at each zoom, each with no filter, with the last 7 days
(``since``) and with ``status=open``: 2,088 tiles. Ours go through the endpoint (Flask test client: the API
key's check, parsing, the version lookup, the tile) as a city-wide ``viewer`` with an API key (made in the
bench database, without a rate limit); one warm-up pass, then the measured one. Also the same tiles in the
GCJ-02 tiling (``crs=gcj02``, no filter).

And the same tiles for a viewer whose scope is one district (the one under the centre of the screen), whose
tiles hold only that district's cells and incidents (gis/access.py): what the scope filter costs, against the
city-wide viewer's tiles as its peer, measured by turns with them.

The peer is the tile SQL a user would write first, and the one GridMap had before: ST_Transform of every
candidate per tile, every cell whose box meets the tile counted, ST_AsMVTGeom evaluated as the planner
likes, and the incidents counted through the plain index on the routing column (the covering indexes of
sql/010_tiles.sql are dropped in its transaction, which is rolled back). It is timed at the database call
alone, without Flask, which favours it by ~0.3 ms a tile. Serving GeoJSON from ``/api/v1/grids?bbox=`` would
be no peer: it has no counts, and a map cannot draw 25,000 GeoJSON cells smoothly in any case. Ours and the
peer run by turns, one zoom of one level at a time, so that both see the same load on a shared machine.

``python -m bench.bench_tiles`` measures ours on the configured database (the demo's) instead; it writes
nothing there but a temporary API key (revoked at the end) and the audit lines of its use.
"""
import datetime as dt
import math
import os
import time
from urllib.parse import urlencode

import numpy as np
from psycopg2.extras import RealDictCursor

from bench.credentials import api_key, auth_header, secret_key
from gis import api_keys, demo_history, tiles
from gis.access import Scope
from gis.demo_load import load_demo
from gis.incidents import CHINA_TIME
from gis.settings import Settings

CENTRE = (113.65, 34.76)  # the map page's opening view
SCREEN = (1280, 800)
TOP_ZOOM = 16
TARGET_MS = 50.0
COVERING = ("incident_tile_district_idx", "incident_tile_street_idx", "incident_tile_community_idx",
            "incident_tile_grid_idx")

# GridMap's tile SQL before sql/010_tiles.sql and the changes of gis/tiles.py that came with it.
PEER_SQL = """
with cell as (
    select c.id, c.code, c.name, c.level, c.area_m2, c.population, c.geom
      from grid_cell c
     where c.version_id = %(version)s and c.level = %(level)s
       and c.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
), same_code as (
    select c.id as routed_id, c.id as cell_id from cell c
    union all
    select o.id, c.id
      from cell c
      join grid_cell o on o.version_id = any(%(others)s::int[]) and o.code = c.code and o.level = c.level
), routed as (
    select i.{column} as routed_id,
           count(*) as n,
           count(*) filter (where i.status not in ('closed', 'voided')) as n_open,
           count(*) filter (where i.status in ('dispatched', 'in_progress') and i.due_at < now()) as n_overdue
      from incident i
     where i.{column} = any(array(select routed_id from same_code))
       and {filters}
     group by i.{column}
), tally as (
    select s.cell_id, sum(r.n) as n, sum(r.n_open) as n_open, sum(r.n_overdue) as n_overdue
      from same_code s join routed r on r.routed_id = s.routed_id
     group by s.cell_id
), feature as (
    select c.id, c.code, c.name, c.level,
           round((c.area_m2 / 1e6)::numeric, 4)::float8 as area_km2,
           c.population,
           coalesce(t.n, 0)::int as count,
           round((coalesce(t.n, 0) / nullif(c.area_m2 / 1e6, 0))::numeric, 3)::float8 as per_km2,
           coalesce(t.n_open, 0)::int as open,
           coalesce(t.n_overdue, 0)::int as overdue,
           ST_AsMVTGeom(ST_Transform(c.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                        %(extent)s, %(buffer)s, true) as geom
      from cell c
      left join tally t on t.cell_id = c.id
)
select ST_AsMVT(feature, %(layer)s, %(extent)s, 'geom', 'id') as mvt
  from feature
 where geom is not null
"""


def _pixel(lon, lat, z):
    """A point's position in the world's pixels (256 a tile) at zoom ``z``."""
    n = 256 * 2 ** z
    return (lon + 180) / 360 * n, (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n


def screen_tiles(z, centre=CENTRE, size=SCREEN):
    """The ``(x, y)`` of the tiles a screen of ``size`` pixels centred on ``centre`` shows at zoom ``z``."""
    px, py = _pixel(*centre, z)
    w, h = (s / 2 for s in size)
    return [(x, y) for x in range(int((px - w) // 256), int((px + w - 1) // 256) + 1)
            for y in range(int((py - h) // 256), int((py + h - 1) // 256) + 1)]


def tile_set():
    """``(level, z, x, y)`` of every tile the map page asks for around the centre, zoom by zoom."""
    return [(level, z, x, y) for level in range(4) for z in range(tiles.MIN_ZOOM[level], TOP_ZOOM + 1)
            for x, y in screen_tiles(z)]


def typical_filters(cur):
    """The map's usual filters: none, the last 7 days of reports, the open cases."""
    cur.execute("select max(reported_at) as last from incident")
    last = cur.fetchone()["last"]
    since = (last - dt.timedelta(days=7)).astimezone(CHINA_TIME).isoformat()
    return {"none": {}, "7 days": {"since": since}, "open": {"status": "open"}}


def ensure_demo(db):
    """The demo grid and its 100,000 incidents in the bench database (at once when there already)."""
    settings = Settings.from_env()
    t0 = time.perf_counter()
    load_demo(db, settings, echo=lambda line: print("  " + line))
    _load_history(db, settings)
    print(f"  the demo grid and its history ready in {time.perf_counter() - t0:.0f} s")


def run(db, rows):
    ensure_demo(db)
    from webmap import create_app

    with db.cursor() as cur:
        filters = typical_filters(cur)
        district = centre_district(cur)
    app = create_app({"DATABASE_URL": db.url, "ROUTE_IN_WORKER": False, "SECRET_KEY": secret_key()})
    client = _client(app, api_key(db, "tiles-city", role="viewer"))
    scoped_client = _client(app, api_key(db, "tiles-district", role="viewer", scope=Scope(district["code"])))
    todo = tile_set()
    load = os.getloadavg()[0]
    ours, scoped, peer = {}, {}, {}
    for group in _groups(todo):  # warm-up, then measured: by turns, one (level, zoom) at a time
        for times, measure in ((ours, lambda: _endpoint(client, group, filters)),
                               (scoped, lambda: _endpoint(scoped_client, group, filters)),
                               (peer, lambda: _peer(db, group, filters))):
            measure()
            for key, ms in measure().items():
                times.setdefault(key[0], []).append(ms)
    gcj = {}
    for group in _groups(todo):
        _endpoint(client, group, {"none": {}}, crs="gcj02")
        for key, ms in _endpoint(client, group, {"none": {}}, crs="gcj02").items():
            gcj.setdefault(key[0], []).append(ms)
    app.extensions["gridmap_db"].close()
    print(f"  {len(todo)} tiles × {len(filters)} filter sets ({', '.join(filters)}), levels from their least zoom "
          f"{tiles.MIN_ZOOM} to {TOP_ZOOM}; load average {load:.1f} → {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"  district viewer: scope {district['code']} {district['name']}, {district['cells']:,} of "
          f"{district['all_cells']:,} cells, {district['incidents']:,} of {district['all_incidents']:,} incidents")
    _table({"GridMap (city viewer)": ours, f"district {district['code']} viewer": scoped, "peer (before)": peer,
            "GridMap, GCJ-02 tiling": gcj})
    (p50, p95, _), (scoped_p50, scoped_p95, _) = (_stats(sum(t.values(), [])) for t in (ours, scoped))
    print(f"  scope filter: district viewer / city viewer p50 {scoped_p50:.1f} / {p50:.1f} ms "
          f"({scoped_p50 / p50:.2f}), p95 {scoped_p95:.1f} / {p95:.1f} ms ({scoped_p95 / p95:.2f})")
    with db.cursor() as cur:
        print("  plan of the street tile over the centre at z9:", _plan_line(cur))
    peer_p95, gcj_p95 = (_stats(sum(t.values(), []))[1] for t in (peer, gcj))
    rows.append(dict(name="vector tiles, the map's tiles at zooms ≤ 16, p95", figure=p95, unit="ms",
                     peer="the plain tile SQL (ST_Transform per tile, counts by the routing column's index)",
                     peer_figure=peer_p95, ratio=p95 / peer_p95, target=f"< {TARGET_MS:g} ms", met=p95 < TARGET_MS))
    rows.append(dict(name="vector tiles, the same for a district's viewer, p95", figure=scoped_p95, unit="ms",
                     peer=f"the same tiles for a city-wide viewer (district {district['code']} against the city: "
                     "what the scope filter costs)", peer_figure=p95, ratio=scoped_p95 / p95,
                     target=f"< {TARGET_MS:g} ms", met=scoped_p95 < TARGET_MS))
    rows.append(dict(name="vector tiles in the GCJ-02 tiling (AMap), p95", figure=gcj_p95, unit="ms", peer=None,
                     peer_figure=None, ratio=None, target=f"< {TARGET_MS:g} ms", met=gcj_p95 < TARGET_MS))


def centre_district(cur):
    """The district of the active version under the centre of the screen, with its share of the cells and
    incidents (as its viewer's scope counts them)."""
    cur.execute("""select d.code, d.name, d.version_id,
                          (select count(*) from grid_cell c where c.version_id = d.version_id) as all_cells,
                          (select count(*) from incident) as all_incidents
                     from grid_cell d join grid_version v on v.id = d.version_id and v.status = 'active'
                    where d.level = 0 and ST_Intersects(d.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
                    order by d.code limit 1""", CENTRE)
    district = cur.fetchone()
    # an incident is in a district's scope when the district it was routed to has the code (in any version)
    cur.execute("select count(*) as n from incident i where i.district_id in"
                " (select id from grid_cell where code = %s and level = 0)", (district["code"],))
    incidents = cur.fetchone()["n"]
    return {**district, "cells": len(Scope(district["code"]).cell_ids(cur, district["version_id"])),
            "incidents": incidents}


def _client(app, key):
    """A test client that sends the API ``key`` with every request."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = auth_header(key)["Authorization"]
    return client


def _load_history(db, settings):
    """The demo's 100,000 incidents, unless they are there: other benchmarks fill the table with their own."""
    with db.cursor() as cur:
        cur.execute("select count(*) filter (where client_request_id like 'demo-%%') as demo, count(*) as n"
                    " from incident")
        counts = cur.fetchone()
    if counts["demo"] != counts["n"] or not counts["n"]:
        with db.cursor() as cur:
            cur.execute("truncate case_event, incident_routing, incident restart identity cascade")
        demo_history.load(db, settings, echo=lambda line: print("  " + line))
    with db.cursor(autocommit=True) as cur:  # as autovacuum leaves a live table: index-only scans need it
        cur.execute("vacuum analyze incident")


def _groups(todo):
    groups = {}
    for tile in todo:
        groups.setdefault(tile[:2], []).append(tile)
    return groups.values()


def _endpoint(client, group, filters, crs=None):
    """``{(level, z, x, y, filter name): ms}`` through the endpoint."""
    out = {}
    for name, query in filters.items():
        text = urlencode({**query, **({"crs": crs} if crs else {})})
        for level, z, x, y in group:
            t0 = time.perf_counter()
            r = client.get(f"/tiles/{level}/{z}/{x}/{y}.pbf" + (f"?{text}" if text else ""))
            out[level, z, x, y, name] = (time.perf_counter() - t0) * 1000
            assert r.status_code in (200, 204), r.data
    return out


def _peer(db, group, filters):
    """The same tiles by PEER_SQL, each a version lookup and the tile, in one transaction without the
    covering indexes (rolled back)."""
    out = {}
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        for index in COVERING:
            cur.execute(f"drop index {index}")
        cur.execute("set local jit = off")
        for name, query in filters.items():
            parsed = tiles.parse_filters(query)
            for level, z, x, y in group:
                t0 = time.perf_counter()
                cur.execute("select v.id, array(select o.id from grid_version o where o.id <> v.id) as others"
                            " from grid_version v where v.status = 'active'")
                version = cur.fetchone()
                cur.execute(PEER_SQL.format(column=tiles.LEVEL_COLUMNS[level], filters=tiles.FILTER_SQL),
                            dict(z=z, x=x, y=y, level=level, version=version["id"], others=version["others"],
                                 **tiles.filter_params(parsed), extent=tiles.EXTENT, buffer=tiles.BUFFER,
                                 margin=tiles.BUFFER / tiles.EXTENT, layer=tiles.LAYER))
                cur.fetchone()
                out[level, z, x, y, name] = (time.perf_counter() - t0) * 1000
        conn.rollback()
    return out


def _stats(ms):
    p50, p95 = np.percentile(ms, [50, 95])
    return float(p50), float(p95), max(ms)


def _table(series):
    """p50 / p95 / max in ms per level and overall, one column group per series."""
    names = list(series)
    print("  " + f"{'level':<16}" + "".join(f"{name:>27}" for name in names))
    print("  " + f"{'':<16}" + "".join(f"{'p50':>9}{'p95':>9}{'max':>9}" for _ in names))
    for level in range(4):
        label = f"{level} {tiles.LEVEL_NAMES[level]} z{tiles.MIN_ZOOM[level]}+"
        print("  " + f"{label:<16}" + "".join("".join(f"{v:>9.1f}" for v in _stats(series[n][level])) for n in names))
    print("  " + f"{'all':<16}" + "".join("".join(f"{v:>9.1f}" for v in _stats(sum(series[n].values(), [])))
                                          for n in names))


def _plan_line(cur):
    """Which index counts the incidents of a heavy tile, and how many heap pages it visits."""
    x, y = (int(v // 256) for v in _pixel(*CENTRE, 9))  # the tile over the centre: 168 of the 208 streets
    cur.execute("select id from grid_version where status = 'active'")
    sql, params = tiles.tile_query(tiles.TileAddress(1, 9, x, y), tiles.parse_filters({}), cur.fetchone()["id"])
    cur.execute("set local jit = off")  # as gis.tiles.cell_tile does
    cur.execute("set local max_parallel_workers_per_gather = 0")
    cur.execute("explain (analyze, buffers) " + sql, params)
    plan = [r["QUERY PLAN"].strip() for r in cur.fetchall()]
    found = [p for p in plan if " on incident" in p or p.startswith("Heap Fetches") or p.startswith("Execution")]
    return "; ".join(found)


def main():
    """Ours only, on the configured database (the demo's), as a city-wide viewer with a temporary key."""
    from webmap import create_app

    app = create_app({"DATABASE_URL": Settings.from_env().database_url, "ROUTE_IN_WORKER": False,
                      "SECRET_KEY": secret_key()})
    db = app.extensions["gridmap_db"]
    # not read-only as it was: an API key's use is audited (a write) once a minute, and a session's too
    key = api_key(db, "tiles", role="viewer")
    try:
        client = _client(app, key)
        with db.cursor() as cur:
            filters = typical_filters(cur)
        by_filter = {name: {} for name in filters}
        for group in _groups(tile_set()):
            _endpoint(client, group, filters)
            for (level, *_, name), ms in _endpoint(client, group, filters).items():
                by_filter[name].setdefault(level, []).append(ms)
    finally:
        with db.cursor() as cur:
            api_keys.revoke(cur, api_keys.holder(cur, key))
        db.close()
    _table(by_filter)
    every = sum((sum(t.values(), []) for t in by_filter.values()), [])
    print("  all filters: p50 {:.1f} ms, p95 {:.1f} ms, max {:.1f} ms over {} tiles".format(*_stats(every),
                                                                                          len(every)))
    print("  filters:", "; ".join(f"{k}: {urlencode(v) or '-'}" for k, v in filters.items()))


if __name__ == "__main__":
    main()
