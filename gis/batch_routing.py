"""Batch routing: millions of points against one grid, with the answers of the SQL ``route_report()``.

:class:`GridRouter` holds a :class:`~gis.point_index.PointIndex` per level, built from the same
subdivided pieces PostGIS routes on (``grid_cell_part``) or from any polygon file, and follows the SQL
function step by step: the deepest level that covers a point chooses the cell with the lowest code and
the levels above are that cell's ancestors; several cells of that level covering the point make it
``shared_edge``; a GPS accuracy circle reaching other cells makes it ``ambiguous``; outside every cell,
the nearest cell of the deepest level within the snapping distance (``snapped``), else ``unrouted`` with
the nearest district within 5 km (none farther). Distances use the metric of ``local_distance_m()`` in SQL.
"""
import functools
import io
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from gis.errors import BadInput, NotFound
from gis.incidents import ROUTING_STATUSES
from gis.point_index import EARTH_RADIUS_M, PointIndex

STATUSES = ROUTING_STATUSES
ROUTED, SHARED_EDGE, AMBIGUOUS, SNAPPED, UNROUTED = range(5)
_KY = EARTH_RADIUS_M * math.pi / 180
QUEUE_M = 5000.0  # an unrouted report this near a district goes to its platform's queue
MIN_RADIUS_M = 0.001  # accuracy or snapping radii below a millimetre count as none, as in SQL
# A finer bucket grid than PointIndex's default: on the demo (25,708 cells) 130 MB instead of 65 MB for
# about 20 % less time per point, measured on 1M points (0.19 → 0.155 s).
BUCKETS_PER_SEGMENT = 32.0


@dataclass(frozen=True, eq=False)
class Routed:
    """Answers for n points: ``status`` (index into STATUSES), ``chosen`` the index of the cell routed
    to (-1: none), ``cells`` (n, 4) that cell and its ancestors per level (-1: none), ``snap_distance_m``
    (NaN unless snapped), ``inside_several`` (strictly inside two or more cells: the layer overlaps there,
    which a partition never does), and :attr:`candidates` for the points that could belong to several
    cells."""

    status: np.ndarray
    chosen: np.ndarray
    cells: np.ndarray
    snap_distance_m: np.ndarray
    inside_several: np.ndarray
    shared_points: np.ndarray  # points on shared edges, one entry per covering cell, sorted by point
    shared_codes: np.ndarray   # ... and the codes of those cells
    ambiguous: dict            # point → codes its accuracy circle reaches

    @functools.cached_property
    def candidates(self):
        """{point: [codes]} for the points on a shared edge or with an ambiguous accuracy circle."""
        found = {}
        if len(self.shared_points):
            starts = np.flatnonzero(np.r_[True, self.shared_points[1:] != self.shared_points[:-1]])
            groups = np.split(self.shared_codes, starts[1:])
            found = dict(zip(self.shared_points[starts].tolist(), (list(g) for g in groups)))
        found.update(self.ambiguous)
        return found

    def status_counts(self):
        counts = np.bincount(self.status, minlength=len(STATUSES))
        return {name: int(c) for name, c in zip(STATUSES, counts) if c}

    @classmethod
    def concat(cls, parts):
        """The answers for consecutive batches of points, one after the other, as one: what routing them all
        at once gives (every point is routed on its own)."""
        parts = list(parts)
        offsets = np.cumsum([0] + [len(p.status) for p in parts[:-1]])
        ambiguous = {}
        for offset, part in zip(offsets.tolist(), parts):
            ambiguous.update((offset + point, codes) for point, codes in part.ambiguous.items())
        join = (lambda name: np.concatenate([getattr(p, name) for p in parts]))
        return cls(join("status"), join("chosen"), join("cells"), join("snap_distance_m"), join("inside_several"),
                   np.concatenate([p.shared_points + offset for offset, p in zip(offsets, parts)]),
                   join("shared_codes"), ambiguous)


class GridRouter:
    """Routes points against cells given as arrays: ``ids``, ``codes``, ``levels``, ``parents`` (index of
    the parent cell, -1 for none) and the polygons to route on with the index of the cell each stands for
    (several pieces may stand for one cell). Without ``build_index`` it only knows the cells (what writing
    routing records needs: routing on a Dask cluster, whose workers build the index)."""

    def __init__(self, ids, codes, levels, parents, part_geoms, part_cells, *, version_id=None,
                 buckets_per_segment=BUCKETS_PER_SEGMENT, build_index=True):
        self.ids = np.asarray(ids, dtype=np.int64)
        self.codes = np.asarray(codes, dtype=object)
        self.levels = np.asarray(levels, dtype=np.int8)
        self.parents = np.asarray(parents, dtype=np.int64)
        self.version_id = version_id
        if not len(self.ids):
            raise BadInput("there are no cells to route against")
        rank = np.empty(len(self.codes), dtype=np.int64)
        rank[np.argsort(self.codes.astype(str), kind="stable")] = np.arange(len(self.codes))
        part_geoms = np.asarray(part_geoms, dtype=object)
        part_cells = np.asarray(part_cells, dtype=np.int64)
        self._pieces = (part_geoms, part_cells, buckets_per_segment)
        part_levels = self.levels[part_cells]
        self.indexes = {}
        self._parts = {}
        for level in sorted(set(part_levels.tolist()), reverse=True):  # deepest first
            mine = part_levels == level
            if build_index:
                self.indexes[level] = PointIndex(part_geoms[mine], part_cells[mine], rank=rank,
                                                 buckets_per_segment=buckets_per_segment)
            self._parts[level] = (part_geoms[mine], part_cells[mine])
        self._trees = {}
        self.deepest = max(self._parts)
        self.top = min(self._parts)
        # each cell's chain: itself and its ancestors, one column per level (-1: none); the last row, all
        # -1, is what index -1 (no cell) picks
        self.chain = np.full((len(self.ids) + 1, 4), -1, dtype=np.int64)
        current = np.arange(len(self.ids))
        rows = np.arange(len(self.ids))
        while len(current):
            self.chain[rows, self.levels[current]] = current
            up = self.parents[current] >= 0
            rows, current = rows[up], self.parents[current[up]]

    def inputs(self):
        """The constructor's arguments: the same router can be built from them elsewhere (a Dask worker)."""
        part_geoms, part_cells, buckets_per_segment = self._pieces
        return dict(ids=self.ids, codes=self.codes, levels=self.levels, parents=self.parents, part_geoms=part_geoms,
                    part_cells=part_cells, version_id=self.version_id, buckets_per_segment=buckets_per_segment)

    @classmethod
    def from_database(cls, cur, version_id=None, **options):
        """The cells of a version (default: the active one) and their ``grid_cell_part`` pieces;
        ``options`` go to the constructor."""
        with cur.connection.cursor() as plain:  # tuples, whatever cursor the caller uses
            if version_id is None:
                plain.execute("select id from grid_version where status = 'active'")
                row = plain.fetchone()
                if row is None:
                    raise NotFound("there is no active grid version to route against")
                version_id = row[0]
            plain.execute("select id, code, level, parent_id from grid_cell where version_id = %s order by id",
                          (version_id,))
            cells = pd.DataFrame(plain.fetchall(), columns=["id", "code", "level", "parent_id"])
            if cells.empty:
                raise NotFound(f"grid version {version_id} has no cells")
            plain.execute("select cell_id, ST_AsBinary(geom) from grid_cell_part where version_id = %s",
                          (version_id,))
            parts = plain.fetchall()
        position = pd.Series(np.arange(len(cells)), index=cells["id"])
        parents = position.reindex(cells["parent_id"]).fillna(-1).to_numpy(np.int64)
        part_cells = position.reindex([p[0] for p in parts]).to_numpy(np.int64)
        part_geoms = shapely.from_wkb([bytes(p[1]) for p in parts])
        return cls(cells["id"], cells["code"], cells["level"], parents, part_geoms, part_cells,
                   version_id=version_id, **options)

    @classmethod
    def from_polygons(cls, geoms, codes):
        """One level of cells from any polygon layer (codes may repeat: one cell in several rows)."""
        codes = pd.Series(codes, dtype=object).astype(str)
        unique = pd.unique(codes)
        position = pd.Series(np.arange(len(unique)), index=unique)
        n = len(unique)
        return cls(np.arange(n), unique, np.full(n, 3), np.full(n, -1), geoms,
                   position.reindex(codes).to_numpy(np.int64))

    def route(self, lon, lat, accuracy_m=None, snap_m=30.0):
        """Route points given in WGS84; ``accuracy_m`` (array or None) and ``snap_m`` as in SQL."""
        if not self.indexes:
            raise RuntimeError("this GridRouter was made without its index (build_index=False)")
        lon = np.ascontiguousarray(lon, dtype=np.float64)
        lat = np.ascontiguousarray(lat, dtype=np.float64)
        n = len(lon)
        status = np.full(n, UNROUTED, dtype=np.int8)
        chosen = np.full(n, -1, dtype=np.int64)
        snap = np.full(n, np.nan)
        inside_several = np.zeros(n, dtype=bool)
        shared_points, shared_codes = [], []

        left = None  # all points, before the first level
        for level, index in self.indexes.items():  # deepest first
            found = index.locate(lon, lat) if left is None else index.locate(lon[left], lat[left])
            if left is None:
                left = np.arange(n)
            hit = found.label >= 0
            points = left[hit]
            chosen[points] = found.label[hit]
            status[points] = ROUTED
            shared = points[found.count[hit] > 1]
            status[shared] = SHARED_EDGE
            if len(shared):
                point, label, boundary = index.covering(lon[shared], lat[shared])
                shared_points.append(shared[point])
                shared_codes.append(self.codes[label])
                inside = np.bincount(point, weights=~boundary, minlength=len(shared))
                inside_several[shared[inside >= 2]] = True
            left = left[~hit]

        ambiguous = {}
        if accuracy_m is not None:
            ambiguous = self._mark_ambiguous(lon, lat, np.asarray(accuracy_m, dtype=np.float64), status, chosen)

        if len(left) and snap_m >= MIN_RADIUS_M:
            label, dist = self.indexes[self.deepest].nearest(lon[left], lat[left], snap_m)
            near = label >= 0
            chosen[left[near]] = label[near]
            status[left[near]] = SNAPPED
            snap[left[near]] = dist[near]
            left = left[~near]
        if len(left):
            chosen[left], _ = self.indexes[self.top].nearest(lon[left], lat[left], QUEUE_M)

        concat = (lambda parts, dtype: np.concatenate(parts) if parts else np.empty(0, dtype))
        return Routed(status, chosen, self.chain[chosen], snap, inside_several,
                      concat(shared_points, np.int64), concat(shared_codes, object), ambiguous)

    def candidate_codes(self, routed):
        """Per point, the codes it may belong to as ``route_report()`` lists them: several on an edge or
        within the accuracy circle, the cell's own code when routed or snapped, none when unrouted."""
        has_own = (routed.chosen >= 0) & (routed.status != UNROUTED)
        own = np.where(has_own, self.codes[np.maximum(routed.chosen, 0)], None)
        out = [[code] if code is not None else [] for code in own]
        for p, several in routed.candidates.items():
            out[p] = several
        return out

    def _mark_ambiguous(self, lon, lat, accuracy, status, chosen):
        """Mark routed points whose accuracy circle reaches another cell of their level; return their
        candidates."""
        candidates = {}
        todo = np.flatnonzero((status == ROUTED) & (accuracy >= MIN_RADIUS_M))
        for level, (geoms, part_cells) in self._parts.items():
            mine = todo[self.levels[chosen[todo]] == level]
            if not len(mine):
                continue
            if level not in self._trees:
                self._trees[level] = shapely.STRtree(geoms)
            tree = self._trees[level]
            kx = np.cos(np.radians(lat[mine])) * EARTH_RADIUS_M * math.pi / 180
            # a superset: the local metric never shrinks a distance below kx times its length in degrees
            pts, parts = tree.query(shapely.points(lon[mine], lat[mine]), predicate="dwithin",
                                    distance=accuracy[mine] / kx)
            others = part_cells[parts] != chosen[mine[pts]]
            found = {}
            for i, part in zip(pts[others], parts[others]):
                p = mine[i]
                d = local_distance_m(geoms[part], lon[p], lat[p])
                if d <= accuracy[p]:
                    found.setdefault(int(p), set()).add(self.codes[part_cells[part]])
            for p, codes in found.items():
                status[p] = AMBIGUOUS
                candidates[p] = sorted(codes | {self.codes[chosen[p]]})
        return candidates


def local_distance_m(geom, lon, lat):
    """The metric of SQL ``local_distance_m()``: planar metres on a plane around the point."""
    kx = math.cos(math.radians(lat)) * EARTH_RADIUS_M * math.pi / 180
    moved = shapely.transform(geom, lambda c: (c - (lon, lat)) * (kx, _KY))
    return shapely.distance(moved, shapely.Point(0, 0))


# --- stored incidents --------------------------------------------------------------------------------

_ROUTING_COLUMNS = ("incident_id", "status", "district_id", "street_id", "community_id", "grid_id", "candidates",
                    "snap_distance_m")


def route_stored(cur, router, incident_ids, lon, lat, accuracy_m, *, reason, snap_m=30.0, previous=None):
    """Route stored incidents with ``router`` and record a routing row for each (:func:`record_routing`).

    With ``previous`` (a frame of incident_id, version_id, status and ``codes``, their cells' codes joined by
    "/"), only incidents whose version, status or cells change get a row. Returns
    ``{"written": n, "moved": incidents now in other cells or status, "by_status": counts of the rows written}``.
    """
    return record_routing(cur, router, incident_ids, router.route(lon, lat, accuracy_m, snap_m), reason=reason,
                          previous=previous)


def record_routing(cur, router, incident_ids, routed, *, reason, previous=None):
    """The writing half of :func:`route_stored`: ``routed``, the answers of ``router`` for the incidents, as
    routing rows (wherever they were routed: here or on a Dask cluster)."""
    frame = pd.DataFrame({"incident_id": np.asarray(incident_ids, dtype=np.int64),
                          "status": np.asarray(STATUSES, dtype=object)[routed.status]})
    codes = np.full(len(frame), "", dtype=object)
    for level, name in enumerate(("district_id", "street_id", "community_id", "grid_id")):
        index = routed.cells[:, level]
        frame[name] = pd.array(np.where(index >= 0, router.ids[np.maximum(index, 0)], 0), dtype="Int64")
        frame.loc[index < 0, name] = pd.NA
        codes = np.where(index >= 0, codes + "/" + router.codes[np.maximum(index, 0)], codes)
    frame["candidates"] = ["{" + ",".join(c) + "}" for c in router.candidate_codes(routed)]
    frame["snap_distance_m"] = routed.snap_distance_m
    moved = len(frame)
    if previous is not None:
        before = previous.set_index("incident_id").reindex(frame["incident_id"])
        same_place = (before["status"].to_numpy() == frame["status"].to_numpy()) & (before["codes"].to_numpy() == codes)
        moved = int((~same_place).sum())
        frame = frame[~same_place | (before["version_id"].to_numpy() != router.version_id)]
    if frame.empty:
        return {"written": 0, "moved": moved, "by_status": {}}
    buffer = io.StringIO()
    frame[list(_ROUTING_COLUMNS)].to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    cur.execute("create temp table routing_in (incident_id bigint, status routing_status, district_id bigint,"
                " street_id bigint, community_id bigint, grid_id bigint, candidates text[],"
                " snap_distance_m double precision) on commit drop")
    cur.copy_expert("copy routing_in from stdin with (format csv, null '\\N')", buffer)
    # the cells' staff cards, unit grid first, as responsible_staff() puts them together. The cards are those
    # of the cells routed to, named in an array: a join would make PostgreSQL build the card of every cell of
    # every version, four times (7 s against 0.3 s for the 6,000 open incidents of the demo)
    cur.execute(
        "with card as (select k.cell_id, k.staff from cell_staff_card k"
        "               where k.cell_id = any(array(select distinct unnest(array[r.district_id, r.street_id,"
        "                                                                        r.community_id, r.grid_id])"
        "                                             from routing_in r)))"
        " insert into incident_routing (incident_id, reason, version_id, status, district_id, street_id,"
        "                               community_id, grid_id, candidates, snap_distance_m, staff)"
        " select r.incident_id, %s, %s, r.status, r.district_id, r.street_id, r.community_id, r.grid_id,"
        "        r.candidates, r.snap_distance_m,"
        "        coalesce(g.staff, '[]') || coalesce(m.staff, '[]') || coalesce(s.staff, '[]') || coalesce(d.staff, '[]')"
        "   from routing_in r"
        "   left join card g on g.cell_id = r.grid_id"
        "   left join card m on m.cell_id = r.community_id"
        "   left join card s on s.cell_id = r.street_id"
        "   left join card d on d.cell_id = r.district_id"
        "  order by r.incident_id",
        (reason, router.version_id))
    return {"written": len(frame), "moved": moved, "by_status": frame["status"].value_counts().to_dict()}


def route_unrouted(cur, *, reason="import", snap_m=30.0, echo=None):
    """Route, in bulk, every incident that has no routing yet, against the active version."""
    cur.execute("select id, ST_X(geom) as lon, ST_Y(geom) as lat, accuracy_m from incident"
                " where routing_id is null order by id")
    rows = pd.DataFrame(cur.fetchall(), columns=["id", "lon", "lat", "accuracy_m"])
    if rows.empty:
        return {}
    started = time.perf_counter()
    router = GridRouter.from_database(cur)
    counts = route_stored(cur, router, rows["id"], rows["lon"], rows["lat"],
                          rows["accuracy_m"].astype(float).fillna(0).to_numpy(), reason=reason,
                          snap_m=snap_m)["by_status"]
    if echo:
        echo(f"routed {len(rows):,} incidents in {time.perf_counter() - started:.1f} s: {counts}")
    return counts


def reroute(db, *, version_id=None, snap_m=30.0, open_only=True, commit=False, cluster=None):
    """Route incidents again against a version (default: the active one). Each whose version, status or
    cells change gets a new routing row; ``moved`` counts those now in other cells or status. Without
    ``commit`` the transaction is rolled back (a dry run). ``cluster`` (a :class:`gis.dask_routing.DaskRouting`)
    routes on a Dask cluster instead of in this process; the records are the same."""
    with db.connection() as conn, conn.cursor() as cur:
        # routing on a cluster, this process only writes: the workers build the index
        router = GridRouter.from_database(cur, version_id, build_index=cluster is None)
        result = reroute_with(cur, router, snap_m=snap_m, open_only=open_only, cluster=cluster)
        if not commit:
            conn.rollback()
    return {**result, "committed": commit}


_REROUTE_COLUMNS = ["incident_id", "lon", "lat", "accuracy_m", "version_id", "status", "codes"]


def _reroute_query(open_only):
    return ("select i.id, ST_X(i.geom), ST_Y(i.geom), coalesce(i.accuracy_m, 0), i.version_id,"
            "       i.routing_status::text,"
            "       coalesce((select string_agg('/' || c.code, '' order by c.level) from grid_cell c"
            "                  where c.id in (i.district_id, i.street_id, i.community_id, i.grid_id)), '')"
            "  from incident i" + (" where i.status not in ('closed', 'voided')" if open_only else "")
            + " order by i.id")


def reroute_with(cur, router, *, snap_m=30.0, open_only=True, reason="reroute", cluster=None):
    """:func:`reroute` inside the caller's transaction, with the caller's router (activation re-routes in the
    transaction that activates). Returns ``{"considered", "written", "moved", "by_status", "version"}``."""
    if cluster is not None:
        return _reroute_on_cluster(cur, router, cluster, snap_m=snap_m, open_only=open_only, reason=reason)
    with cur.connection.cursor() as plain:  # tuples, whatever cursor the caller uses
        plain.execute(_reroute_query(open_only))
        rows = pd.DataFrame(plain.fetchall(), columns=_REROUTE_COLUMNS)
    result = {"written": 0, "moved": 0, "by_status": {}}
    if not rows.empty:
        result = route_stored(cur, router, rows["incident_id"], rows["lon"], rows["lat"],
                              rows["accuracy_m"].astype(float).to_numpy(), reason=reason, snap_m=snap_m,
                              previous=rows)
    return {"considered": len(rows), **result, "version": router.version_id}


def _reroute_on_cluster(cur, router, cluster, *, snap_m, open_only, reason):
    """:func:`reroute_with` with the routing done by a Dask cluster: the incidents are read in chunks (a
    server-side cursor) and each chunk goes to the cluster as soon as it is read; the answers come back in
    the order read and are written here, by :func:`record_routing`, from the same rows as a local run."""
    fetched = []

    def chunks():
        with cur.connection.cursor(name="reroute_points") as reader:  # tuples, read chunk by chunk
            reader.itersize = cluster.chunk_size
            reader.execute(_reroute_query(open_only))
            while batch := reader.fetchmany(cluster.chunk_size):
                fetched.extend(batch)
                yield (np.array([r[1] for r in batch], dtype=np.float64),
                       np.array([r[2] for r in batch], dtype=np.float64),
                       np.array([float(r[3]) for r in batch], dtype=np.float64))

    routed = cluster.route_chunks(router, chunks(), snap_m)
    rows = pd.DataFrame(fetched, columns=_REROUTE_COLUMNS)
    result = {"written": 0, "moved": 0, "by_status": {}}
    if not rows.empty:
        result = record_routing(cur, router, rows["incident_id"], routed, reason=reason, previous=rows)
    return {"considered": len(rows), **result, "version": router.version_id}
