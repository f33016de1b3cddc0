"""Activation of a new version of the Zhengzhou demo (gis/activation.py): its impact preview, then the activation
itself with the re-routing of the demo's ~5,500 open incidents, timed. There is no target: the time is printed.
It runs last in ``make bench``: it leaves the bench database with another version active.

The new version is a draft copy of the demo's active one (cells, parents and staff) in which ``PAIRS`` pairs of
neighbouring unit grids of the same community are merged, each into the one with the lower code: a boundary
change a planner makes, which keeps the partition exact (the merged cell is the union of two cells that share
their edge vertex for vertex), so the activation is not refused by the partition check.

No peer. The alternative a user has is what GridMap did before: ``grid activate --commit``, then
``incidents reroute --commit`` — but that is not atomic (reports are routed against the retired version in
between, and a failed re-routing leaves the new version active with its incidents unrouted) and it has no
partition check; timing it beside ours would compare different work. The figure is the activation alone,
partition check included; the impact preview is printed beside it.
"""
import time

from psycopg2.extras import execute_values

from gis import activation, grid_store
from gis.settings import Settings

PAIRS = 300
ACTOR = "bench"


def run(db, rows):
    from bench.bench_tiles import ensure_demo

    ensure_demo(db)
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("select id from grid_version where status = 'active'")
        source = cur.fetchone()[0]
        t0 = time.perf_counter()
        draft, merged = merged_copy(cur, source, PAIRS)
        cur.execute("select count(*) from incident where status not in ('closed', 'voided')")
        open_count = cur.fetchone()[0]
    print(f"  draft {draft}: version {source} copied with {merged} pairs of unit grids merged "
          f"in {time.perf_counter() - t0:.1f} s; {open_count:,} open incidents")
    with db.cursor(autocommit=True) as cur:
        cur.execute("vacuum analyze grid_cell, grid_cell_part, cell_staff, incident_routing")  # as autovacuum would

    snap_m = Settings.from_env().snap_m
    t0 = time.perf_counter()
    impact = activation.impact(db, draft, snap_m=snap_m)
    impact_s = time.perf_counter() - t0
    s = impact["summary"]
    print(f"  impact: {impact_s:.2f} s — {s['moved']} of {s['open']:,} open incidents to other cells, "
          f"{s['staff_changed']} to other people; {s['recounted']:,} of {s['incidents']:,} incidents counted "
          f"elsewhere; cells changed {s['cells_changed']}")

    t0 = time.perf_counter()
    done = activation.activate(db, draft, actor=ACTOR, snap_m=snap_m)
    activate_s = time.perf_counter() - t0
    print(f"  activation: {activate_s:.2f} s — version {done['activated']} active, {done['retired']} retired; "
          f"{done['rerouted']:,} open incidents routed again, {done['moved']} moved; problems {done['problems']}")
    with db.cursor() as cur:
        cur.execute("select count(*) as n from live_event where kind = 'routing' and data ->> 'reason' = 'activation'")
        print(f"  live feed: {cur.fetchone()['n']} routing events")

    rows.append(dict(name=f"activation of a demo version ({PAIRS} merged grid pairs), re-routing included",
                     figure=activate_s, unit="s", peer=None, peer_figure=None, ratio=None, target="print the time",
                     met=True))
    rows.append(dict(name="impact preview of that version (100k incidents routed)", figure=impact_s, unit="s",
                     peer=None, peer_figure=None, ratio=None, target="print the time", met=True))


def merged_copy(cur, source, n):
    """A draft copy of ``source`` (cells, parents mapped by code, staff) in which ``n`` disjoint pairs of unit
    grids of one community that share an edge are merged into the one with the lower code. Returns
    ``(draft id, pairs merged)``. Written by inserts alone: deleting a cell afterwards would cost a scan of
    incident_routing per cell (its cell columns have no index for the foreign keys' checks)."""
    cur.execute("analyze grid_cell")  # the demo was just loaded: without statistics the self-join takes minutes
    cur.execute("""select a.id, b.id
                     from grid_cell a
                     join grid_cell b on b.version_id = a.version_id and b.parent_id = a.parent_id
                                     and b.level = 3 and a.code < b.code and a.geom && b.geom
                    where a.version_id = %s and a.level = 3
                      and ST_Length(ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 2)) > 0
                    order by hashtext(a.code || b.code)""", (source,))  # spread over the city, reproducibly
    used, pairs = set(), []
    for a, b in cur.fetchall():
        if a not in used and b not in used and len(pairs) < n:
            used |= {a, b}
            pairs.append((a, b))
    cur.execute("create temp table merge_pair (a bigint primary key, b bigint unique) on commit drop")
    execute_values(cur, "insert into merge_pair values %s", pairs)
    draft = grid_store.create_draft(cur, created_by=ACTOR, note=f"bench: version {source} with {len(pairs)} "
                                    "pairs of unit grids merged", source=f"version {source}")[0]
    for level in grid_store.LEVELS:  # parents first, so that each level finds its parents' new ids
        cur.execute("""insert into grid_cell (version_id, level, code, name, parent_id, kind, population, attributes,
                                              geom)
                       select %(draft)s, c.level, c.code, c.name, np.id, c.kind, c.population, c.attributes,
                              coalesce((select ST_Multi(ST_Union(g.geom)) from grid_cell g where g.id in (m.a, m.b)),
                                       c.geom)
                         from grid_cell c
                         left join merge_pair m on m.a = c.id
                         left join grid_cell p on p.id = c.parent_id
                         left join grid_cell np on np.version_id = %(draft)s and np.code = p.code
                        where c.version_id = %(source)s and c.level = %(level)s
                          and c.id not in (select b from merge_pair)""",
                    {"draft": draft, "source": source, "level": level})
    cur.execute("""insert into cell_staff (cell_id, staff_id, post)
                   select n.id, cs.staff_id, cs.post
                     from cell_staff cs
                     join grid_cell o on o.id = cs.cell_id
                     join grid_cell n on n.version_id = %s and n.code = o.code
                    where o.version_id = %s""", (draft, source))
    return draft, len(pairs)
