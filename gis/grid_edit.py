"""Editing a draft grid version, one operation at a time, as the planners' editor does.

Every operation runs in one transaction, refuses a stale copy, and returns what it changed and the problems
the changed cells now take part in (the incremental check of :mod:`gis.partition_service`):

- :func:`new_draft`: a draft copied from a version (the active one by default), cells, parents and staff;
- :func:`save_cell`: a cell's geometry, name, kind or population; :func:`create_cell`, :func:`delete_cell`;
- :func:`split_cell` along a drawn line, :func:`merge_cells` into one;
- :func:`move_vertex`: a vertex moved in every cell of the version that has it — a boundary shared by
  neighbours (and by their parents) moves for all of them, so the move makes no gap and no overlap.

Stale copies: every cell has a ``revision`` that the database bumps on each change (sql/011_planner.sql); an
operation names the revisions it edited and is refused with :class:`Conflict` (409) and the cells as they
are now when one has moved on. Who and why: the operation sets ``gridmap.actor``, ``gridmap.reason`` and
``gridmap.operation`` for its transaction, and the database logs each changed cell in ``grid_edit`` with
them, as it does for edits made in QGIS.
"""
import json
from contextlib import contextmanager

import psycopg2
import psycopg2.errors
import shapely
import shapely.ops
from psycopg2.extras import RealDictCursor

from gis import grid_store, partition_service, problem_report
from gis.access import CITY_SCOPE
from gis.errors import BadInput, Conflict, Forbidden, NotFound

KINDS = ("regular", "special")
VERTEX_TOLERANCE_DEG = 1e-7  # ~1 cm: vertices this close are the same vertex of neighbouring cells

_CELLS_SQL = """
select c.id, c.code, c.name, c.level, c.kind, c.population, c.revision, c.area_m2, p.code as parent_code,
       ST_AsGeoJSON(c.geom, 8)::json as geometry, coalesce(k.staff, '[]') as staff
  from grid_cell c left join grid_cell p on p.id = c.parent_id left join cell_staff_card k on k.cell_id = c.id
 where c.version_id = %s and c.code = any(%s)
 order by c.level, c.code
"""


def new_draft(db, *, actor, source_version=None, note=""):
    """A draft with every cell (parents mapped by code) and staff assignment of ``source_version``."""
    with _editing(db) as cur:
        source = grid_store.resolve_version(cur, source_version)
        _as(cur, actor, note or f"draft from version {source['id']}", "new-draft")
        draft = grid_store.create_draft(cur, created_by=actor, note=note or f"from version {source['id']}",
                                        source=f"version {source['id']}")
        for level in grid_store.LEVELS:  # parents first, so that each level finds its parents' new ids
            cur.execute("""insert into grid_cell (version_id, level, code, name, parent_id, kind, population,
                                                  attributes, geom)
                           select %(new)s, c.level, c.code, c.name, np.id, c.kind, c.population, c.attributes, c.geom
                             from grid_cell c
                             left join grid_cell op on op.id = c.parent_id
                             left join grid_cell np on np.version_id = %(new)s and np.code = op.code
                            where c.version_id = %(old)s and c.level = %(level)s""",
                        {"new": draft["id"], "old": source["id"], "level": level})
        cur.execute("""insert into cell_staff (cell_id, staff_id, post)
                       select n.id, s.staff_id, s.post
                         from cell_staff s join grid_cell o on o.id = s.cell_id
                         join grid_cell n on n.version_id = %s and n.code = o.code
                        where o.version_id = %s""", (draft["id"], source["id"]))
        counts = grid_store.cell_counts(cur, draft["id"])
    return {**draft, "counts": counts}


def save_cell(db, version_id, code, *, revision, actor, reason="", geometry=None, name=None, kind=None,
              population=None, new_code=None, staff=None, scope=CITY_SCOPE):
    """Change one cell; only the fields given change. Returns :func:`_outcome` of it.

    ``new_code``: a new code (of the same length: the level stays); ``staff``: the cell's people, replacing
    those it had, as ``[{"post", "name", "phone"}]`` (posts of the cell's level).
    """
    fields = {}
    if new_code is not None and new_code != code:
        if not isinstance(new_code, str) or not new_code.isdigit() or len(new_code) != len(code):
            raise BadInput(f"code must be {len(code)} digits, as the level's codes are")
        fields["code"] = new_code
    if staff is not None and (not isinstance(staff, list) or not all(isinstance(p, dict) for p in staff)):
        raise BadInput('staff must be a list of {"post", "name", "phone"}')
    if geometry is not None:
        fields["geom"] = _polygon(geometry)
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise BadInput("name must be a non-empty string")
        fields["name"] = name.strip()
    if kind is not None:
        if kind not in KINDS:
            raise BadInput(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        fields["kind"] = kind
    if population is not None:
        fields["population"] = _population(population)
    if not fields and staff is None:
        raise BadInput("nothing to change: give geometry, name, kind, population, new_code or staff")
    with _editing(db, scope, version_id) as cur:
        cells = _lock(cur, version_id, {code: revision})
        _as(cur, actor, reason, "edit")
        if fields.get("code"):
            cur.execute("select 1 from grid_cell where version_id = %s and code = %s", (version_id, fields["code"]))
            if cur.fetchone():
                raise Conflict(f"version {version_id} has a cell {fields['code']} already")
        if fields:
            _update(cur, version_id, code, fields)
        now = fields.get("code", code)
        if staff is not None:
            cur.execute("delete from cell_staff where cell_id = %s", (cells[code]["id"],))
            grid_store.assign_staff(cur, version_id, [{**person, "cell_code": now} for person in staff])
    # a new code: the editor drops the cell under its old one
    return {**_outcome(db, version_id, [now]), "removed": [code] if now != code else []}


def create_cell(db, version_id, *, code, name, geometry, actor, reason="", kind="regular", population=None,
                parent_code=None, scope=CITY_SCOPE):
    """A new cell; its level follows from its code, its parent from ``parent_code`` or its place."""
    geom = _polygon(geometry)
    if not isinstance(code, str) or not code.isdigit():
        raise BadInput("code must be a string of digits")
    if not isinstance(name, str) or not name.strip():
        raise BadInput("name must be a non-empty string")
    if kind not in KINDS:
        raise BadInput(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    population = None if population is None else _population(population)
    with _editing(db, scope, version_id) as cur:
        _lock(cur, version_id, {})
        cur.execute("select 1 from grid_cell where version_id = %s and code = %s", (version_id, code))
        if cur.fetchone():
            raise Conflict(f"version {version_id} has a cell {code} already")
        parent_id = None
        if parent_code is not None:
            cur.execute("select id from grid_cell where version_id = %s and code = %s", (version_id, parent_code))
            row = cur.fetchone()
            if row is None:
                raise BadInput(f"parent {parent_code} is not a cell of version {version_id}")
            parent_id = row["id"]
        _as(cur, actor, reason, "create")
        cur.execute("""insert into grid_cell (version_id, code, name, kind, population, parent_id, geom)
                       values (%s, %s, %s, %s, %s, %s, ST_SetSRID(ST_GeomFromWKB(%s), 4326))""",
                    (version_id, code, name.strip(), kind, population, parent_id, shapely.to_wkb(geom)))
    return _outcome(db, version_id, [code])


def delete_cell(db, version_id, code, *, revision, actor, reason="", scope=CITY_SCOPE):
    """Remove a cell (and its staff assignments); one with children is refused by the database."""
    with _editing(db, scope, version_id) as cur:
        cells = _lock(cur, version_id, {code: revision})
        _as(cur, actor, reason, "delete")
        cur.execute("delete from cell_staff where cell_id = %s", (cells[code]["id"],))
        cur.execute("delete from grid_cell where id = %s", (cells[code]["id"],))
    return {"cells": [], "removed": [code], "problems": _hole_left(db, version_id, cells[code])}


def split_cell(db, version_id, code, line, *, revision, actor, reason="", new_code=None, new_name=None,
               scope=CITY_SCOPE):
    """Cut a cell in two along ``line`` (GeoJSON LineString crossing it from edge to edge).

    The cell keeps its code, staff and the larger part; the other part becomes a new cell (``new_code``, or
    the next free code among its siblings), and the cell's children go to the part holding most of them.
    """
    cutter = _line(line)
    with _editing(db, scope, version_id) as cur:
        cells = _lock(cur, version_id, {code: revision})
        cell = cells[code]
        parts = shapely.ops.split(shapely.geometry.shape(cell["geometry"]), cutter)
        parts = sorted(shapely.get_parts(parts), key=lambda g: -g.area)
        if len(parts) != 2:
            raise BadInput(f"the line must cross cell {code} once from edge to edge, cutting it in two; "
                           f"it cuts it in {len(parts)}")
        new_code = new_code or _next_code(cur, version_id, cell)
        _as(cur, actor, reason, "split")
        _update(cur, version_id, code, {"geom": shapely.MultiPolygon([parts[0]])})
        cur.execute("""insert into grid_cell (version_id, code, name, level, kind, population, parent_id, geom)
                       select version_id, %s, %s, level, kind, null, parent_id, ST_SetSRID(ST_GeomFromWKB(%s), 4326)
                         from grid_cell where id = %s""",
                    (new_code, new_name or f"{cell['name']}（分）", shapely.to_wkb(shapely.MultiPolygon([parts[1]])),
                     cell["id"]))
        _reparent_children(cur, version_id, [code, new_code])
    return _outcome(db, version_id, [code, new_code])


def merge_cells(db, version_id, revisions, *, actor, reason="", keep=None, scope=CITY_SCOPE):
    """Merge cells of one level and one parent into the one kept (``keep``: the first code by default).

    ``revisions``: ``{code: revision}`` of every cell merged. The others' children move to the kept cell;
    the others and their staff assignments go.
    """
    if len(revisions) < 2:
        raise BadInput("name at least two cells to merge")
    keep = keep or next(iter(revisions))
    if keep not in revisions:
        raise BadInput(f"the cell kept, {keep}, must be one of those merged")
    with _editing(db, scope, version_id) as cur:
        cells = _lock(cur, version_id, revisions)
        if len({(c["level"], c["parent_code"]) for c in cells.values()}) != 1:
            raise BadInput("only cells of the same level and the same parent can be merged")
        union = shapely.union_all([shapely.geometry.shape(c["geometry"]) for c in cells.values()])
        if union.geom_type != "Polygon":
            raise BadInput("the cells do not form one piece: merge neighbours only")
        gone = [c["id"] for code, c in cells.items() if code != keep]
        _as(cur, actor, reason, "merge")
        cur.execute("update grid_cell set parent_id = %s where parent_id = any(%s)", (cells[keep]["id"], gone))
        cur.execute("delete from cell_staff where cell_id = any(%s)", (gone,))
        cur.execute("delete from grid_cell where id = any(%s)", (gone,))
        _update(cur, version_id, keep, {"geom": shapely.MultiPolygon([union])})
    removed = [c for code, c in cells.items() if code != keep]
    return {**_outcome(db, version_id, [keep]), "removed": [c["code"] for c in removed]}


def move_vertex(db, version_id, source, target, *, actor, reason="", revisions=None, scope=CITY_SCOPE):
    """Move the vertex at ``source`` ([lon, lat]) to ``target`` in every cell of the version that has it.

    ``revisions``: ``{code: revision}`` of the cells the editor showed; any of them changed since → 409.
    """
    source, target = _point(source, "from"), _point(target, "to")
    with _editing(db, scope, version_id) as cur:
        _lock(cur, version_id, revisions or {})
        cur.execute("""select code from grid_cell
                        where version_id = %s and ST_DWithin(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s)
                          for update""", (version_id, *source, VERTEX_TOLERANCE_DEG))
        near = [r["code"] for r in cur.fetchall()]
        cells = _read(cur, version_id, near)
        moved = {}
        for code, cell in cells.items():
            geom = shapely.geometry.shape(cell["geometry"])
            coords = shapely.get_coordinates(geom)
            hit = (abs(coords[:, 0] - source[0]) <= VERTEX_TOLERANCE_DEG) & \
                  (abs(coords[:, 1] - source[1]) <= VERTEX_TOLERANCE_DEG)
            if hit.any():
                coords[hit] = target
                new = shapely.set_coordinates(geom, coords)
                if not new.is_valid:
                    raise BadInput(f"moving the vertex makes cell {code} invalid "
                                   f"({shapely.is_valid_reason(new)}); nothing was changed")
                moved[code] = new
        if not moved:
            raise BadInput(f"no cell of version {version_id} has a vertex at {source[0]}, {source[1]}")
        _as(cur, actor, reason, "move-vertex")
        for code, geom in moved.items():
            _update(cur, version_id, code, {"geom": geom})
    return _outcome(db, version_id, sorted(moved, key=lambda c: (len(c), c)))


# --- plumbing -----------------------------------------------------------------------------------------


@contextmanager
def _editing(db, scope=CITY_SCOPE, version_id=None):
    """One transaction; the database's own refusals (a delete leaving children, a bad code) become 409s.

    For an editor with a scope smaller than the city (:mod:`gis.access`), every cell the transaction changed
    — as the database's edit log of this transaction tells, so that neighbours moved along, children
    re-parented and cells created count too — must have been inside the scope before or be inside it after,
    and every cell still there must be inside it after; else Forbidden, and nothing is changed."""
    try:
        with db.cursor() as cur:
            before = scope.cell_codes(cur, version_id)
            yield cur
            if before is not None:
                _check_scope(cur, scope, version_id, before)
    except (psycopg2.IntegrityError, psycopg2.errors.RaiseException) as exc:
        raise Conflict(f"the database refused the edit: {exc.diag.message_primary}") from None


def _check_scope(cur, scope, version_id, before):
    cur.execute("""select distinct e.cell_code, exists (select 1 from grid_cell c
                                                        where c.version_id = e.version_id and c.code = e.cell_code)
                                                  as still_there
                     from grid_edit e where e.version_id = %s and e.xact = pg_current_xact_id()""", (version_id,))
    changed = cur.fetchall()
    after = scope.cell_codes(cur, version_id)
    outside = sorted(r["cell_code"] for r in changed
                     if (r["still_there"] and r["cell_code"] not in after)
                     or (not r["still_there"] and r["cell_code"] not in before))
    if outside:
        raise Forbidden(f"the edit would change cell {', '.join(outside)}, outside your scope ({scope}); "
                        "nothing was changed")


def _as(cur, actor, reason, operation):
    """Who, why and what, for the database's edit log of this transaction."""
    if not isinstance(actor, str) or not actor.strip():
        raise BadInput("actor must name who edits (until users sign in)")
    grid_store.edits_by(cur, actor.strip(), operation, reason)


def _lock(cur, version_id, revisions):
    """Lock the version's row and the named cells; refuse a version that is not a draft, a missing cell or a
    revision that moved on. Returns the cells as :func:`_read` does."""
    cur.execute("select 1 from grid_version where id = %s for share", (version_id,))
    grid_store.require_draft(cur, version_id)  # (NotFound when there is no such version)
    if not revisions:
        return {}
    cur.execute("select code from grid_cell where version_id = %s and code = any(%s) order by code for update",
                (version_id, list(revisions)))
    cells = _read(cur, version_id, list(revisions))
    missing = [code for code in revisions if code not in cells]
    if missing:
        raise NotFound(f"version {version_id} has no cell {', '.join(missing)}")
    stale = [code for code, rev in revisions.items() if cells[code]["revision"] != rev]
    if stale:
        raise Conflict(f"cell {', '.join(stale)} changed since you loaded it (now at revision "
                       f"{', '.join(str(cells[c]['revision']) for c in stale)}): load it again and redo your edit",
                       details=[as_feature(cells[c]) for c in stale])
    return cells


def _read(cur, version_id, codes):
    cur.execute(_CELLS_SQL, (version_id, list(codes)))
    return {r["code"]: dict(r) for r in cur.fetchall()}


def _update(cur, version_id, code, fields):
    columns = ", ".join(f"{name} = ST_SetSRID(ST_GeomFromWKB(%s), 4326)" if name == "geom" else f"{name} = %s"
                        for name in fields)
    values = [shapely.to_wkb(v) if name == "geom" else v for name, v in fields.items()]
    cur.execute(f"update grid_cell set {columns} where version_id = %s and code = %s", (*values, version_id, code))


def _reparent_children(cur, version_id, codes):
    """Each child of the named cells goes to the one of them holding the largest share of it."""
    cur.execute("""update grid_cell k set parent_id = best.id
                     from (select distinct on (k2.id) k2.id as child, p.id
                             from grid_cell k2
                             join grid_cell p on p.version_id = k2.version_id and p.code = any(%(codes)s)
                            where k2.version_id = %(v)s
                              and k2.parent_id in (select id from grid_cell where version_id = %(v)s
                                                     and code = any(%(codes)s))
                            order by k2.id, ST_Area(ST_Intersection(k2.geom, p.geom)) desc, p.code) best
                    where k.id = best.child and k.parent_id is distinct from best.id""",
                {"v": version_id, "codes": list(codes)})


def _next_code(cur, version_id, cell):
    """The next free code among the cell's siblings: its parent's code and one more than the highest suffix."""
    cur.execute("""select max(code) as top from grid_cell
                    where version_id = %s and level = %s and left(code, %s) = left(%s, %s)""",
                (version_id, cell["level"], len(cell["code"]) - 3, cell["code"], len(cell["code"]) - 3))
    top = cur.fetchone()["top"]
    suffix = int(top[-3:]) + 1
    if suffix > 999:
        raise BadInput(f"no free code left beside {cell['code']}: give new_code")
    return top[:-3] + f"{suffix:03d}"


def _population(value):
    """A whole number of residents that the column (an integer) can hold."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
        raise BadInput("population must be a whole number from 0 to 2,147,483,647")
    return value


def _polygon(geometry):
    geom = geometry if isinstance(geometry, shapely.Geometry) else _shape(geometry)
    if geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    if geom.geom_type != "MultiPolygon" or geom.is_empty:
        raise BadInput("geometry must be a Polygon or MultiPolygon")
    if not geom.is_valid:
        raise BadInput(f"geometry is not valid: {shapely.is_valid_reason(geom)}")
    return geom


def _line(value):
    geom = _shape(value)
    if geom.geom_type != "LineString" or geom.is_empty:
        raise BadInput("line must be a GeoJSON LineString")
    return geom


def _shape(value):
    try:
        return shapely.geometry.shape(value)
    except Exception as exc:  # shapely raises several types for malformed GeoJSON
        raise BadInput(f"not valid GeoJSON: {exc}") from None


def _point(value, name):
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not (-180 <= value[0] <= 180 and -90 <= value[1] <= 90)):
        raise BadInput(f"{name} must be [longitude, latitude] in degrees")
    return float(value[0]), float(value[1])


def as_feature(cell):
    """A cell as the editor gets it: a GeoJSON Feature with its revision."""
    props = {k: cell[k] for k in ("code", "name", "level", "kind", "population", "parent_code", "revision",
                                  "staff")}
    return {"type": "Feature", "id": cell["code"], "geometry": cell["geometry"],
            "properties": {**props, "area_m2": round(float(cell["area_m2"]), 1)}}


def _outcome(db, version_id, codes):
    """The changed cells as they are now, and the problems they take part in."""
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cells = _read(cur, version_id, codes)
    return {"cells": [as_feature(cells[c]) for c in codes if c in cells],
            "problems": _problems(db, version_id, [cells[c] for c in codes if c in cells])}


def _problems(db, version_id, cells):
    """The incremental check of each changed cell, deduplicated."""
    features, seen = [], set()
    for cell in cells:
        result = partition_service.check_edited_cell(db, version_id, cell["code"],
                                                     shapely.geometry.shape(cell["geometry"]), level=cell["level"])
        for feature in problem_report.as_geojson(result)["features"]:
            key = json.dumps(feature, sort_keys=True)
            if key not in seen:
                seen.add(key)
                features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def _hole_left(db, version_id, cell, min_area_m2=1.0):
    """The gap a deleted cell leaves: its outline less the cells of its level that still cover it."""
    with db.cursor() as cur:
        cur.execute("""select ST_AsGeoJSON(h, 8)::json as geometry, ST_Area(h::geography) as area_m2
                         from (select ST_Difference(g, coalesce((select ST_Union(c.geom) from grid_cell c
                                                                  where c.version_id = %(v)s and c.level = %(l)s
                                                                    and c.geom && g), 'POLYGON EMPTY')) as h
                                 from (select ST_SetSRID(ST_GeomFromGeoJSON(%(g)s), 4326) as g) s) d""",
                    {"v": version_id, "l": cell["level"], "g": json.dumps(cell["geometry"])})
        hole = cur.fetchone()
    features = []
    if hole["area_m2"] and hole["area_m2"] >= min_area_m2:
        features.append({"type": "Feature", "geometry": hole["geometry"], "properties": {
            "type": "gap", "level": cell["level"], "codes": [cell["code"]], "area_m2": round(hole["area_m2"], 3),
            "width_m": None, "detail": f"left by deleting cell {cell['code']}"}})
    return {"type": "FeatureCollection", "features": features}


def cells_geojson(db, version_id, *, codes=None, level=None, bbox=None, limit=5000, scope=CITY_SCOPE):
    """Cells of a version as editor features (revision included): named by ``codes``, or those of ``level``
    in ``bbox`` (min_lon, min_lat, max_lon, max_lat); at most ``limit``, ``truncated`` says when more. Only
    those inside ``scope``."""
    with db.cursor() as cur:
        grid_store.get_version(cur, version_id)
        inside = scope.cell_ids(cur, version_id)
        if codes is not None:
            cells = list(_read(cur, version_id, codes).values())
            if inside is not None:
                inside = set(inside)
                cells = [c for c in cells if c["id"] in inside]
        else:  # (the scope before the limit: a scoped planner gets its own cells, whatever else is in view)
            cur.execute(_CELLS_SQL.replace("c.code = any(%s)",
                                           "(%s::smallint is null or c.level = %s) and c.geom && "
                                           "ST_MakeEnvelope(%s, %s, %s, %s, 4326)"
                                           " and (%s::bigint[] is null or c.id = any(%s::bigint[]))") + " limit %s",
                        (version_id, level, level, *(bbox or (-180, -90, 180, 90)), inside, inside, limit + 1))
            cells = [dict(r) for r in cur.fetchall()]
    truncated = len(cells) > limit
    return {"type": "FeatureCollection", "version": version_id, "truncated": truncated,
            "features": [as_feature(c) for c in cells[:limit]]}


def edits(db, version_id, limit=100):
    """The version's edit log, newest first (who, when, what, why)."""
    with db.cursor() as cur:
        grid_store.get_version(cur, version_id)
        cur.execute("""select id, at, actor, operation, action, cell_code, cell_level, reason
                         from grid_edit where version_id = %s order by id desc limit %s""", (version_id, limit))
        return cur.fetchall()
