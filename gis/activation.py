"""Activating a draft grid version: what it would change, then the switch itself.

:func:`impact` routes every incident's point with the draft's :class:`~gis.batch_routing.GridRouter` and
compares with the routing stored now: the open incidents that would go to another cell (by code, at any
level: the draft's cells have new ids) or to other people (the names and phones of the deepest cell), and
the cells whose count of incidents, closed ones included, would differ. It writes nothing.

:func:`activate` checks the draft's partition, then in one transaction makes it the active version, retires
the previous one, routes the open incidents again against it (routing reason ``activation``; closed ones
keep the version they were routed with) and records the activation in ``grid_activation``
(``sql/013_activation.sql``). The live feed hears of every open incident whose cells or people change from
the routing trigger, in the same transaction.
"""
import csv
import io
import time

import numpy as np
import pandas as pd
from psycopg2.extras import Json, RealDictCursor

from gis import batch_routing, grid_store, partition_service
from gis.batch_routing import STATUSES, GridRouter
from gis.errors import BadInput, Conflict, NotFound

LEVEL_KEYS = ("district", "street", "community", "grid")
MAX_REASON = 2000

_INCIDENTS_SQL = """
select i.id, ST_X(i.geom), ST_Y(i.geom), coalesce(i.accuracy_m, 0), i.status not in ('closed', 'voided'),
       d.code, s.code, m.code, g.code
  from incident i
  left join grid_cell d on d.id = i.district_id
  left join grid_cell s on s.id = i.street_id
  left join grid_cell m on m.id = i.community_id
  left join grid_cell g on g.id = i.grid_id
 order by i.id
"""

# The people of the deepest cell of each open incident's current routing, from the routing's own snapshot:
# the people it was routed to. Each snapshot card names its level, and a routing has one cell per level.
_OPEN_STAFF_SQL = """
select i.id,
       coalesce((select jsonb_agg(distinct jsonb_build_object('name', e ->> 'name', 'phone', e ->> 'phone'))
                   from jsonb_array_elements(r.staff) e
                  where (e ->> 'level')::int = case when i.grid_id is not null then 3
                                                    when i.community_id is not null then 2
                                                    when i.street_id is not null then 1 else 0 end), '[]') as staff
  from incident i left join incident_routing r on r.id = i.routing_id
 where i.status not in ('closed', 'voided')
"""

_CELL_STAFF_SQL = """
select cs.cell_id, jsonb_agg(distinct jsonb_build_object('name', s.name, 'phone', s.phone)) as staff
  from cell_staff cs join staff s on s.id = cs.staff_id
 where cs.cell_id = any(%s)
 group by cs.cell_id
"""

_DETAILS_SQL = """
select i.id, i.public_id, i.category, i.status, i.routing_status::text, i.version_id,
       (select coalesce(json_agg(json_build_object('level', c.level, 'code', c.code, 'name', c.name)
                                 order by c.level), '[]')
          from grid_cell c where c.id in (i.district_id, i.street_id, i.community_id, i.grid_id)) as cells
  from incident i where i.id = any(%s)
"""


class ProblemsFound(Conflict):
    """409: the draft has partition problems and activation was not forced; ``problems`` counts them by type."""

    def __init__(self, version_id, problems):
        total = sum(problems.values())
        super().__init__(f"version {version_id} has {total} partition problem(s); fix them, or force the "
                         "activation with a reason", details=[f"{n} {kind}" for kind, n in problems.items()])
        self.problems = problems

    def to_dict(self):
        return {**super().to_dict(), "problems": self.problems}


# --- impact -------------------------------------------------------------------------------------------

def impact(db, draft_id, *, snap_m=30.0, with_geometry=False):
    """What activating ``draft_id`` would change, compared with the routing stored now.

    Parameters
    ----------
    draft_id : int
        The version to preview (normally a draft).
    snap_m : float
        Snapping distance, as for intake.
    with_geometry : bool
        Give each changed cell its GeoJSON geometry (the draft's; the active version's for a cell the draft
        lacks), for :func:`as_geojson`.

    Returns
    -------
    dict
        ``version``, ``active_version``, ``summary`` (incidents, open, moved: open incidents to other cells,
        staff_changed: open incidents to other people in the same cells, recounted: incidents of any status
        counted in another cell at some level, cells_changed per level, seconds), ``incidents`` (the open
        incidents that move or change hands, each with ``change`` "cell" or "staff" and its cells and staff
        ``before`` and ``after``) and ``cells`` (level, code, name, before, after, difference of the cells
        whose count changes).
    """
    started = time.perf_counter()
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("set transaction isolation level repeatable read, read only")  # one snapshot throughout
        grid_store.get_version(cur, draft_id)
        active = grid_store.active_version(cur)
        router = GridRouter.from_database(cur, draft_id)
        with conn.cursor() as plain:
            plain.execute(_INCIDENTS_SQL)
            rows = plain.fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        lon, lat, accuracy = (np.array([r[k] for r in rows], dtype=np.float64) for k in (1, 2, 3))
        is_open = np.array([r[4] for r in rows], dtype=bool)
        before = _codes(np.array([r[5:9] for r in rows], dtype=object).reshape(-1, 4))
        # the chosen cells do not depend on the GPS accuracy (only the status does): all points without it
        after = _codes(_chain_codes(router, router.route(lon, lat, None, snap_m).cells))
        cells = _count_changes(cur, before, after, draft_id, active and active["id"], with_geometry)

        o = np.flatnonzero(is_open)
        routed = router.route(lon[o], lat[o], accuracy[o], snap_m)  # the very answers activation will record
        moved = (before[o] != _codes(_chain_codes(router, routed.cells))).any(axis=1)
        deepest = _deepest(routed.cells)
        new_cell = np.where(deepest >= 0, router.ids[np.maximum(deepest, 0)], -1)
        cur.execute(_OPEN_STAFF_SQL)
        old_staff = {r["id"]: r["staff"] for r in cur.fetchall()}
        cur.execute(_CELL_STAFF_SQL, (sorted(set(new_cell[new_cell >= 0].tolist())),))
        cell_staff = {r["cell_id"]: r["staff"] for r in cur.fetchall()}
        new_staff = [cell_staff.get(c, []) for c in new_cell.tolist()]
        staff_changed = np.array([_people(old_staff.get(i, [])) != _people(s)
                                  for i, s in zip(ids[o].tolist(), new_staff)], dtype=bool)
        listed = np.flatnonzero(moved | staff_changed)
        incidents = _details(cur, router, ids[o], lon[o], lat[o], routed, listed, moved, old_staff, new_staff)
    return {
        "version": draft_id,
        "active_version": active and active["id"],
        "snap_m": snap_m,
        "summary": {
            "incidents": len(ids), "open": len(o), "moved": int(moved.sum()),
            "staff_changed": int((staff_changed & ~moved).sum()),
            "recounted": int((before != after).any(axis=1).sum()),
            "cells_changed": {LEVEL_KEYS[lvl]: sum(c["level"] == lvl for c in cells) for lvl in grid_store.LEVELS},
            "seconds": round(time.perf_counter() - started, 3),
        },
        "incidents": incidents,
        "cells": cells,
    }


def _chain_codes(router, cells):
    """(n, 4) codes of routed cells and their ancestors, None where a level has no cell."""
    return np.where(cells >= 0, router.codes[np.maximum(cells, 0)], None)


def _codes(array):
    """Codes as strings, "" for none, so that arrays compare element by element."""
    return pd.DataFrame(array).fillna("").to_numpy(dtype=str)


def _deepest(cells):
    """Per row of (n, 4) cell indices, the index of the deepest cell (-1: none)."""
    level = np.where(cells >= 0, np.arange(cells.shape[1]), -1).max(axis=1)
    return np.where(level >= 0, cells[np.arange(len(cells)), np.maximum(level, 0)], -1)


def _people(staff):
    return sorted((p["name"], p["phone"]) for p in staff)


def _count_changes(cur, before, after, draft_id, active_id, with_geometry):
    """The cells whose number of incidents differs, by level and code."""
    changed = []
    for level in grid_store.LEVELS:
        counts = pd.DataFrame({"before": pd.Series(before[:, level]).value_counts(),
                               "after": pd.Series(after[:, level]).value_counts()}).fillna(0).astype(int)
        counts = counts[(counts.index != "") & (counts["before"] != counts["after"])]
        changed += [{"level": level, "code": code, "before": int(b), "after": int(a), "difference": int(a - b)}
                    for code, b, a in zip(counts.index, counts["before"], counts["after"])]
    if not changed:
        return []
    # a code's name in the draft, else in the active version, else in the newest version that has it
    cur.execute("select distinct on (code) code, name"
                + (", ST_AsGeoJSON(geom, 7)::json as geometry" if with_geometry else "") +
                "  from grid_cell where code = any(%s)"
                " order by code, version_id = %s desc, version_id = %s desc, version_id desc",
                ([c["code"] for c in changed], draft_id, active_id))
    found = {r["code"]: r for r in cur.fetchall()}
    for c in changed:
        c["name"] = found[c["code"]]["name"] if c["code"] in found else None
        if with_geometry:
            c["geometry"] = found[c["code"]]["geometry"] if c["code"] in found else None
    return sorted(changed, key=lambda c: (c["level"], -abs(c["difference"]), c["code"]))


def _details(cur, router, ids, lon, lat, routed, listed, moved, old_staff, new_staff):
    """The listed open incidents (positions in ``ids``) with their cells and people before and after."""
    if not len(listed):
        return []
    cur.execute(_DETAILS_SQL, (ids[listed].tolist(),))
    now = {r["id"]: r for r in cur.fetchall()}
    chains = routed.cells[listed]
    cur.execute("select id, name from grid_cell where id = any(%s)",
                (router.ids[np.unique(chains[chains >= 0])].tolist(),))
    names = {r["id"]: r["name"] for r in cur.fetchall()}
    out = []
    for p, chain in zip(listed.tolist(), chains.tolist()):
        row = now[int(ids[p])]
        out.append({
            "id": row["public_id"], "category": row["category"], "status": row["status"],
            "lon": float(lon[p]), "lat": float(lat[p]), "change": "cell" if moved[p] else "staff",
            "before": {"version": row["version_id"], "routing_status": row["routing_status"], "cells": row["cells"],
                       "staff": old_staff.get(int(ids[p]), [])},
            "after": {"routing_status": STATUSES[routed.status[p]],
                      "cells": [{"level": level, "code": router.codes[c], "name": names[int(router.ids[c])]}
                                for level, c in enumerate(chain) if c >= 0],
                      "staff": new_staff[p]},
        })
    return out


# --- exports ------------------------------------------------------------------------------------------

CSV_COLUMNS = ("kind", "level", "code", "name", "before", "after", "difference", "id", "category", "status", "lon",
               "lat", "change", "codes_before", "codes_after", "staff_before", "staff_after")


def as_csv(result):
    """The impact as one CSV table: a ``kind`` column says whether a row is an open ``incident`` that moves
    or changes hands (its cells' codes and people before and after, unit grid last) or a ``cell`` whose
    count changes (before, after, difference)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in result["incidents"]:
        last = item["after"]["cells"][-1] if item["after"]["cells"] else {}
        writer.writerow({**item, "kind": "incident", "before": None, "after": None, "level": last.get("level"),
                         "code": last.get("code"), "name": last.get("name"),
                         **{f"codes_{when}": "/".join(c["code"] for c in item[when]["cells"])
                            for when in ("before", "after")},
                         **{f"staff_{when}": "; ".join(f"{p['name']} {p['phone']}" for p in item[when]["staff"])
                            for when in ("before", "after")}})
    for cell in result["cells"]:
        writer.writerow({**cell, "kind": "cell"})
    return out.getvalue()


def as_geojson(result):
    """The impact as one FeatureCollection for a map: the open incidents that move or change hands as points
    (``kind`` "incident"; codes and people before and after) and the cells whose count changes (``kind``
    "cell"; their outline when :func:`impact` was asked ``with_geometry``)."""
    features = [{
        "type": "Feature", "id": item["id"],
        "geometry": {"type": "Point", "coordinates": [item["lon"], item["lat"]]},
        "properties": {"kind": "incident", "category": item["category"], "status": item["status"],
                       "change": item["change"],
                       **{f"codes_{when}": [c["code"] for c in item[when]["cells"]] for when in ("before", "after")},
                       **{f"staff_{when}": item[when]["staff"] for when in ("before", "after")}},
    } for item in result["incidents"]]
    features += [{
        "type": "Feature", "id": f"{cell['level']}:{cell['code']}", "geometry": cell.get("geometry"),
        "properties": {"kind": "cell", **{k: v for k, v in cell.items() if k != "geometry"}},
    } for cell in result["cells"]]
    return {"type": "FeatureCollection", "version": result["version"], "active_version": result["active_version"],
            "summary": result["summary"], "features": features}


# --- activation -----------------------------------------------------------------------------------------

def activate(db, draft_id, *, actor, force=False, reason=None, snap_m=30.0, commit=True):
    """Check a draft, then in one transaction make it the active version, retire the previous one, route the
    open incidents again against it and record the activation.

    Parameters
    ----------
    actor : str
        Who activates.
    force : bool
        Activate although the partition check finds problems; needs ``reason``.
    reason : str, optional
        Why (recorded; required with ``force``).
    commit : bool
        False: do everything, then roll back (a dry run).

    Returns
    -------
    dict
        activated, retired (ids), rerouted (open incidents given a routing against the new version), moved
        (of them, now in other cells or routing status), by_status, problems ({type: count}), forced,
        committed, seconds.

    Raises
    ------
    BadInput
        No actor, or ``force`` without a reason.
    NotFound
        No such version.
    Conflict
        The version is not a draft, has no cells, or another activation is under way; :class:`ProblemsFound`
        when the check finds problems and ``force`` is not given.
    """
    if not isinstance(actor, str) or not actor.strip() or len(actor.strip()) > 100:
        raise BadInput("actor must name who activates (1 to 100 characters)")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise BadInput(f"reason must be text of at most {MAX_REASON} characters")
    reason = (reason or "").strip() or None
    if force and not reason:
        raise BadInput("a forced activation needs a reason: say why the problems may go live")
    started = time.perf_counter()
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute("select pg_try_advisory_xact_lock(hashtext('gridmap activation')) as mine")
        if not cur.fetchone()["mine"]:
            raise Conflict("another activation is under way; look at the versions again once it has finished")
        # What is checked is what goes live: new drafts and imports wait (grid_version), the editor's
        # operations on this draft wait (they lock its row for share), and no cell or staff changes till commit.
        # Taken in this order so that an import holding grid_cell never waits for us on grid_version.
        cur.execute("lock table grid_version in share row exclusive mode")
        cur.execute("select status from grid_version where id = %s for no key update", (draft_id,))
        row = cur.fetchone()
        if row is None:
            raise NotFound(f"grid version {draft_id} does not exist")
        if row["status"] != "draft":
            raise Conflict(f"grid version {draft_id} is {row['status']}; only a draft can be activated")
        cur.execute("lock table grid_cell, cell_staff in share mode")
        problems = {}
        for p in partition_service.check_version(db, draft_id).problems:  # reads what we have locked
            problems[p.type] = problems.get(p.type, 0) + 1
        if problems and not force:
            raise ProblemsFound(draft_id, problems)
        activated, retired = grid_store.activate(cur, draft_id, actor=actor.strip())
        router = GridRouter.from_database(cur, draft_id)
        routed = batch_routing.reroute_with(cur, router, snap_m=snap_m, reason="activation")
        cur.execute("insert into grid_activation (version_id, retired_version_id, actor, forced, reason, problems,"
                    "                             rerouted, moved)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s) returning id",
                    (draft_id, retired and retired["id"], actor.strip(), bool(problems), reason, Json(problems),
                     routed["written"], routed["moved"]))
        record = cur.fetchone()["id"]
        if not commit:
            conn.rollback()
    if commit:
        routed["written"] += _catch_up(db, router, record, snap_m)
    return {"activated": activated["id"], "retired": retired and retired["id"], "rerouted": routed["written"],
            "moved": routed["moved"], "by_status": {k: int(v) for k, v in routed["by_status"].items()},
            "problems": problems, "forced": bool(problems), "committed": commit,
            "seconds": round(time.perf_counter() - started, 3)}


def _catch_up(db, router, record, snap_m):
    """Route the reports stored during the activation against the version it retired (intake reads the
    active version before it stores a report, and waits for nothing of ours): re-routing skips every open
    incident already routed against the new version, so this writes only theirs. Returns how many."""
    with db.connection() as conn, conn.cursor() as cur:
        cur.execute("lock table incident in share mode")  # lets the reports being stored finish first
        late = batch_routing.reroute_with(cur, router, snap_m=snap_m, reason="activation")["written"]
        if late:
            cur.execute("update grid_activation set rerouted = rerouted + %s where id = %s", (late, record))
    return late
