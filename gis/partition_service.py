"""Partition checks and repairs on what is stored or about to be imported.

The spatial work is in :mod:`gis.partition_checks` and :mod:`gis.partition_repair`, on geometries in
metres; this module fetches cells from PostGIS (or a file), projects them to the Gauss-Krüger zone of
their centre, and writes repairs back to a draft version in one transaction.
"""
from dataclasses import dataclass, field

import numpy as np
import shapely
from psycopg2.extras import RealDictCursor
from shapely.geometry.base import GEOMETRY_TYPES

from gis import crs as gcrs
from gis import grid_import, grid_store
from gis.errors import BadInput, Conflict, NotFound
from gis.partition_checks import Cells, Tolerances, check_cell, check_level, check_partition
from gis.partition_geometry import as_multipolygon
from gis.partition_repair import apply_repairs, propose_repairs

REPAIRABLE = ("gap", "overlap", "sliver")


@dataclass
class CheckResult:
    """Problems found in a version or a file; geometries in ``metric_crs``."""

    subject: str          # "version 3" or a file name
    levels: list
    cell_count: int
    problems: list
    metric_crs: str
    tol: Tolerances
    repairs: list = field(default_factory=list)

    def geometries_wgs84(self, problems):
        """The problems' geometries in EPSG:4326 (None where a problem has none)."""
        geoms = np.array([p.geometry for p in problems], dtype=object)
        present = np.flatnonzero(~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)) if len(geoms) else []
        out = np.full(len(geoms), None, dtype=object)
        if len(present):
            out[present] = gcrs.transform_geometries(geoms[present], self.metric_crs, "EPSG:4326")
        return out


# --- versions -----------------------------------------------------------------------------------------

def check_version(db, version_id=None, *, level=None, tol=Tolerances()):
    """Check one level of a version against its parent level, or every level (``level=None``)."""
    with db.cursor() as cur:
        version = grid_store.resolve_version(cur, version_id)
        wanted = grid_store.LEVELS if level is None else sorted({grid_store.check_level(level), max(level - 1, 0)})
        levels, metric = load_levels(cur, version["id"], wanted)
    if level is None:
        problems = check_partition(levels, tol=tol)
    else:
        if level not in levels:
            raise NotFound(f"version {version['id']} has no level-{level} cells")
        problems = check_level(levels[level], levels.get(level - 1) if level else None, tol=tol)
    count = sum(len(c.codes) for lvl, c in levels.items() if level is None or lvl == level)
    return CheckResult(f"version {version['id']}", sorted(levels) if level is None else [level], count,
                       problems, metric, tol)


def load_levels(cur, version_id, levels):
    """``({level: Cells}, metric CRS)`` of a version, geometries projected to metres."""
    with cur.connection.cursor() as plain:  # tuples: a third faster than dict rows for 100k cells
        plain.execute(
            """select c.level, c.code, p.code as parent_code, ST_AsBinary(c.geom) as wkb
                 from grid_cell c left join grid_cell p on p.id = c.parent_id
                where c.version_id = %s and c.level = any(%s) order by c.level, c.code""",
            (version_id, list(levels)),
        )
        rows = [{"level": r[0], "code": r[1], "parent_code": r[2], "wkb": r[3]} for r in plain.fetchall()]
    if not rows:
        return {}, "EPSG:4547"
    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows])
    metric = metric_crs_of(geoms)
    geoms = to_metric(geoms, metric)
    level_of = np.array([r["level"] for r in rows])
    codes = np.array([r["code"] for r in rows], dtype=object)
    parents = np.array([r["parent_code"] for r in rows], dtype=object)
    return {
        int(lvl): Cells(codes[level_of == lvl], geoms[level_of == lvl], int(lvl),
                        parents[level_of == lvl] if lvl > 0 else None)
        for lvl in np.unique(level_of)
    }, metric


# Edges are straight in EPSG:4326, where cells are stored, but bow slightly once projected: a 9 km edge
# along a parallel bows about 1 m in Gauss-Krüger, so a vertex lying on it in degrees would seem to stick
# out by a metre. Edges cut to at most this many degrees (~100 m) bow by well under a millimetre.
MAX_SEGMENT_DEG = 0.001


def to_metric(geoms_wgs84, metric):
    """EPSG:4326 geometries projected to ``metric``, their long edges cut first so that they stay straight."""
    return gcrs.transform_geometries(shapely.segmentize(geoms_wgs84, MAX_SEGMENT_DEG), "EPSG:4326", metric)


def metric_crs_of(geoms_wgs84):
    """The CGCS2000 Gauss-Krüger zone of the geometries' centre: lengths and areas there are in metres."""
    x0, y0, x1, y1 = shapely.total_bounds(geoms_wgs84)
    return gcrs.metric_crs_for((x0 + x1) / 2, (y0 + y1) / 2)


# --- files ----------------------------------------------------------------------------------------------

def check_file(path, *, layer=None, code_field="code", name_field=None, src_crs=None, level=None,
               tol=Tolerances()):
    """The same checks on a polygon file before anything is imported; a file has no parents, so its gaps
    are the holes inside the union of its cells."""
    frame, src = grid_import.read_frame(path, layer=layer, src_crs=src_crs)
    columns = [c for c in frame.columns if c != "geometry"]
    for name, option in ((code_field, "--code-field"), (name_field, "--name-field")):
        if name is not None and name not in frame.columns:
            raise BadInput(f"{path} has no field {name!r}; give {option}, one of: {', '.join(columns)}")
    codes = np.array([("" if v is None else str(v).strip()) for v in frame[code_field]], dtype=object)
    geoms = frame.geometry.to_numpy()
    kinds = shapely.get_type_id(geoms[~shapely.is_missing(geoms)])
    if len(kinds) == 0 or not np.isin(kinds, [3, 6]).any():
        found = sorted({GEOMETRY_TYPES[k] for k in kinds}) or ["no geometry"]
        raise BadInput(f"{path} is not a partition: it holds {', '.join(found)} features and no polygons")
    wgs84 = grid_import.to_wgs84(path, geoms, codes, src)
    metric = metric_crs_of(wgs84[~shapely.is_missing(wgs84)])
    cells = Cells(codes, to_metric(wgs84, metric), level, None)
    problems = check_level(cells, None, tol=tol)
    return CheckResult(getattr(path, "name", str(path)), [level], len(codes), problems, metric, tol)


# --- the incremental check ----------------------------------------------------------------------------

def check_edited_cell(db, version_id, code, geometry_wgs84, *, level=None, parent_code=None, tol=Tolerances(),
                      margin_m=200.0):
    """Problems that one edited (or new) cell takes part in, against its neighbours as stored."""
    if not isinstance(code, str) or not code.isdigit():
        raise BadInput("code must be a string of digits")
    with db.cursor() as cur:
        grid_store.get_version(cur, version_id)
        cur.execute("""select c.level, p.code as parent_code from grid_cell c left join grid_cell p on p.id = c.parent_id
                        where c.version_id = %s and c.code = %s""", (version_id, code))
        stored = cur.fetchone()
        if level is None:
            if stored is None:
                raise BadInput(f"cell {code} is not in version {version_id}: give its level for a new cell")
            level = stored["level"]
        grid_store.check_level(level)
        parent_code = parent_code or (stored and stored["parent_code"])
        metric = gcrs.metric_crs_for(*shapely.centroid(shapely.envelope(geometry_wgs84)).coords[0])
        # Neighbours: cells of the level near the new or the old outline; parents: the cell's own when it is
        # known, else every cell one level up nearby.
        cur.execute(
            """with area as (
                    select ST_Expand(ST_Envelope(ST_Collect(g)), %(margin)s / 111000.0) as box from (
                        select ST_SetSRID(ST_GeomFromWKB(%(wkb)s), 4326) as g
                        union all select geom from grid_cell where version_id = %(v)s and code = %(code)s) s)
                select c.level, c.code, p.code as parent_code, ST_AsBinary(c.geom) as wkb
                  from grid_cell c left join grid_cell p on p.id = c.parent_id, area
                 where c.version_id = %(v)s and c.geom && area.box
                   and (c.level = %(level)s or (c.level = %(level)s - 1
                        and (%(parent)s::text is null or c.code = %(parent)s)))""",
            {"margin": margin_m, "wkb": shapely.to_wkb(geometry_wgs84), "v": version_id, "code": code,
             "level": level, "parent": parent_code},
        )
        rows = cur.fetchall()
    geoms = to_metric(shapely.from_wkb([bytes(r["wkb"]) for r in rows]), metric) if rows else np.array([], dtype=object)

    def cells_of(lvl):
        idx = [i for i, r in enumerate(rows) if r["level"] == lvl]
        return Cells(np.array([rows[i]["code"] for i in idx], dtype=object),
                     np.array([geoms[i] for i in idx], dtype=object), lvl,
                     np.array([rows[i]["parent_code"] for i in idx], dtype=object) if lvl else None)
    edited = to_metric(geometry_wgs84, metric)
    parents = cells_of(level - 1) if level else None
    problems = check_cell(code, edited, cells_of(level), parents, tol=tol)
    return CheckResult(f"cell {code} of version {version_id}", [level], 1, problems, metric, tol)


# --- repairs ----------------------------------------------------------------------------------------------

def repair_version(db, version_id, *, level=None, commit=False, tol=Tolerances()):
    """Propose repairs of gaps, overlaps and slivers, level by level from the top; with ``commit`` write
    them to the draft. Returns ``(CheckResult with .repairs, CheckResult of the re-check)``."""
    levels_to_fix = [grid_store.check_level(level)] if level is not None else [1, 2, 3]
    with db.connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        version = grid_store.get_version(cur, version_id)
        if commit and version["status"] != "draft":
            raise Conflict(f"version {version_id} is {version['status']}: only a draft can be repaired "
                           "(a dry run shows the proposals)")
        all_repairs, found = [], []
        metric = "EPSG:4547"
        for lvl in levels_to_fix:
            levels, metric = load_levels(cur, version_id, [max(lvl - 1, 0), lvl])
            if lvl not in levels:
                continue
            cells, parents = levels[lvl], levels.get(lvl - 1) if lvl else None
            problems = [p for p in check_level(cells, parents, tol=tol) if p.type in REPAIRABLE]
            repairs = propose_repairs(cells, parents, problems, tol=tol)
            found += problems
            all_repairs += repairs
            _write_repairs(cur, version_id, lvl, cells, repairs, metric, tol)
        result = CheckResult(f"version {version_id}", levels_to_fix, 0, found, metric, tol, all_repairs)
        recheck = []
        for lvl in levels_to_fix:
            levels, metric = load_levels(cur, version_id, [max(lvl - 1, 0), lvl])
            if lvl in levels:
                recheck += [p for p in check_level(levels[lvl], levels.get(lvl - 1) if lvl else None, tol=tol)
                            if p.type in REPAIRABLE]
        after = CheckResult(f"version {version_id} after the repairs", levels_to_fix, 0, recheck, metric, tol)
        if not commit:
            conn.rollback()
    return result, after


def _write_repairs(cur, version_id, level, cells, repairs, metric, tol):
    """Write the repaired cells back in EPSG:4326; a cell merged away hands its children to its heir."""
    changes = apply_repairs(cells, repairs, tol=tol)
    old = dict(zip(cells.codes, cells.geoms))
    reshaped = {code: g for code, g in changes.items()
                if g is not None and not shapely.equals_exact(g, old.get(code), 0.0)}
    if reshaped:
        cur.execute("select code, ST_AsBinary(geom) as wkb from grid_cell where version_id = %s and level = %s",
                    (version_id, level))
        stored = shapely.from_wkb([bytes(r["wkb"]) for r in cur.fetchall()])
        tree = shapely.STRtree(stored)
        geoms = gcrs.transform_geometries(np.array(list(reshaped.values()), dtype=object), metric, "EPSG:4326")
        for code, geom in zip(reshaped, geoms):
            geom = _back_in_place(geom, stored[tree.query(geom)])
            cur.execute("update grid_cell set geom = ST_SetSRID(ST_GeomFromWKB(%s), 4326) "
                        "where version_id = %s and level = %s and code = %s",
                        (shapely.to_wkb(geom), version_id, level, code))
    heirs = {step[1]: step[2] for r in repairs for step in r.steps if step[0] == "merge"}
    for code in [c for c, g in changes.items() if g is None]:
        heir = heirs.get(code)
        while heir in heirs:  # merged into a cell that was merged away in its turn
            heir = heirs[heir]
        cur.execute("""update grid_cell set parent_id = (select id from grid_cell where version_id = %(v)s and code = %(heir)s)
                        where parent_id = (select id from grid_cell where version_id = %(v)s and code = %(code)s)""",
                    {"v": version_id, "heir": heir, "code": code})
        cur.execute("delete from grid_cell where version_id = %s and code = %s", (version_id, code))


# Snapping distance back in degrees (~1 mm): a repaired edge that follows a neighbour's edge takes that
# neighbour's very vertices, not their round trip through the metric CRS.
SNAP_DEG = 1e-8


def _back_in_place(geom, neighbours):
    """A repaired cell back in EPSG:4326 as a clean MultiPolygon: the vertices that the metric round trip
    added on straight edges removed, the rest snapped onto the stored neighbours' vertices."""
    geom = shapely.simplify(geom, SNAP_DEG / 10, preserve_topology=True)
    if len(neighbours):
        geom = shapely.snap(geom, shapely.multipoints(shapely.get_coordinates(neighbours)), SNAP_DEG)
    # Parts smaller than a snapping step are what is left of a collapsed spike, not land.
    return as_multipolygon(shapely.make_valid(geom), min_part_area=SNAP_DEG ** 2)
