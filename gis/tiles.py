"""Mapbox vector tiles of grid cells with their incident counts, built by PostGIS in one statement.

A tile ``z/x/y`` (XYZ, Web Mercator) holds the cells of one level of a grid version that reach into it or
its buffer (64 of 4096 units: the usual MVT margin against seams), in one layer ``cells``, each with the
incidents routed to it that match the filters counted. Incidents are matched by their routing at the tile's
level (``district_id`` … ``grid_id``): by cell id when they were routed against the version the tile shows,
by cell code when routed against another one (the code carries over between versions, as in
:mod:`gis.evaluation`).

Each level has tiles from :data:`MIN_ZOOM` on, where its cells are big enough to see. A tile's ``crs`` is
``wgs84`` (the usual tiling, OpenStreetMap and most base maps) or ``gcj02``: the Web Mercator tiling of
AMap/Gaode base maps, whose coordinates are GCJ-02; the cells are shifted into it so that they line up.

>>> filters = parse_filters({"since": "2026-11-01", "status": "open,overdue", "category": "01"})
>>> with db.cursor() as cur:
...     body = cell_tile(cur, TileAddress(3, 14, 13364, 6502), filters)   # b"" when no cell is there
...     amap = cell_tile(cur, TileAddress(3, 14, 13364, 6502, crs="gcj02"), filters)
"""
import datetime as dt
import math
import re
from dataclasses import dataclass

import numpy as np

from gis import crs as crs_mod
from gis.access import CITY_SCOPE
from gis.errors import BadInput, NotFound
from gis.incidents import CLOSED_STATES, OPEN_STATES, parse_time

MAX_ZOOM = 22
EXTENT = 4096   # ST_AsMVTGeom's default
BUFFER = 64     # in tile units: enough that strokes along the tile edge do not show seams
LAYER = "cells"
# The incident column holding its routing at each level; only these names ever reach the SQL text.
LEVEL_COLUMNS = ("district_id", "street_id", "community_id", "grid_id")
LEVEL_NAMES = ("district", "street", "community", "unit grid")
# The least zoom of each level's tiles: where its median cell is 16 px across or more (and its smallest
# tenth 8 px or more), big enough to see and to click. Measured on the Zhengzhou demo (median side 22.7 km,
# 4.7 km, 1.3 km, 267 m): at these zooms the median cell is 22, 19, 21 and 17 px across, one zoom less it
# is half that. The map page takes them as its layers' minzoom (webmap/map_page.py); below its zoom a
# unit-grid tile held up to 25,000 cells and took a quarter of a second.
MIN_ZOOM = (7, 9, 11, 13)
TILE_CRS = ("wgs84", "gcj02")
STATUS_WORDS = ("open", "overdue", "closed")
_CATEGORY = re.compile(r"^[0-9]{2}([0-9]{2})?$")


@dataclass(frozen=True)
class TileAddress:
    """A tile of one grid level in one tiling (``crs``: ``wgs84`` or ``gcj02``); checked on construction.

    Raises
    ------
    BadInput
        A level, zoom or x/y out of range, a zoom below the level's :data:`MIN_ZOOM` (the message names it,
        so that a client learns where the level starts), an unknown ``crs``.
    """

    level: int
    z: int
    x: int
    y: int
    crs: str = "wgs84"

    def __post_init__(self):
        if not 0 <= self.level <= 3:
            raise BadInput(f"level must be between 0 (district) and 3 (unit grid); got {self.level}")
        if not 0 <= self.z <= MAX_ZOOM:
            raise BadInput(f"zoom z must be between 0 and {MAX_ZOOM}; got {self.z}")
        top = 2 ** self.z - 1
        for name in ("x", "y"):
            value = getattr(self, name)
            if not 0 <= value <= top:
                raise BadInput(f"{name} must be between 0 and {top} at zoom {self.z}; got {value}")
        if self.z < MIN_ZOOM[self.level]:
            raise BadInput(f"level {self.level} ({LEVEL_NAMES[self.level]}) tiles start at zoom "
                           f"{MIN_ZOOM[self.level]}, where its cells become big enough to see; got zoom {self.z}")
        if self.crs not in TILE_CRS:
            raise BadInput(f"crs must be one of {', '.join(TILE_CRS)}; got {self.crs!r}")


@dataclass(frozen=True)
class TileFilters:
    """Which incidents are counted. Empty tuples and None mean no filter."""

    since: dt.datetime | None = None   # reported_at >= since
    until: dt.datetime | None = None   # reported_at < until
    subclasses: tuple = ()             # 4-digit category codes
    classes: tuple = ()                # 2-digit class codes: every subclass of the class
    states: tuple = ()                 # workflow states (status)
    overdue: bool = False              # also: dispatched or in progress, past due_at

    @property
    def by_status(self):
        return bool(self.states) or self.overdue


def parse_filters(args):
    """The map's filters from query parameters (any mapping of strings) → :class:`TileFilters`.

    Parameters
    ----------
    args : mapping
        ``since``, ``until``: ISO 8601 dates or date-times, China time unless they carry an offset;
        ``since`` inclusive, ``until`` exclusive. ``category``: subclass (4-digit) or class (2-digit) codes,
        comma-separated. ``status``: ``open`` (every state before closed), ``overdue`` (dispatched or in
        progress past its deadline), ``closed``, or workflow states, comma-separated; any of them matches.

    Raises
    ------
    BadInput
        A date that cannot be read, dates in the wrong order, a malformed category, an unknown status.
    """
    since, until = parse_time(args.get("since"), "since"), parse_time(args.get("until"), "until")
    if since and until and since > until:
        raise BadInput(f"dates in the wrong order: since {since.isoformat()} is after until {until.isoformat()}")
    subclasses, classes = [], []
    for code in _listed(args, "category"):
        if not _CATEGORY.match(code):
            raise BadInput(f"category {code!r} is not a subclass (4 digits) or class (2 digits) code")
        (classes if len(code) == 2 else subclasses).append(code)
    states, overdue = [], False
    known = OPEN_STATES + CLOSED_STATES
    for word in _listed(args, "status"):
        if word == "open":
            states += OPEN_STATES
        elif word == "overdue":
            overdue = True
        elif word in known:
            states.append(word)
        else:
            raise BadInput(f"status {word!r} is not one of open, overdue, {', '.join(known)}")
    return TileFilters(since, until, tuple(subclasses), tuple(classes), tuple(dict.fromkeys(states)), overdue)


def _listed(args, name):
    return [part.strip() for part in (args.get(name) or "").split(",") if part.strip()]


# The incidents (alias ``i``) that the filters let through; its parameters come from filter_params().
# Shared with gis.density, so that the map's tiles and its class breaks count by the same rules.
FILTER_SQL = """(%(since)s::timestamptz is null or i.reported_at >= %(since)s::timestamptz)
       and (%(until)s::timestamptz is null or i.reported_at < %(until)s::timestamptz)
       and (not %(by_category)s or i.category = any(%(subclasses)s::text[])
            or left(i.category, 2) = any(%(classes)s::text[]))
       and (not %(by_status)s or i.status = any(%(states)s::text[])
            or (%(overdue)s and i.status in ('dispatched', 'in_progress') and i.due_at < now()))
       and (%(department)s::text is null
            or i.category in (select code from event_subclass where department_code = %(department)s::text))"""
# The cells (alias ``c``) inside the asker's scope: %(scope_cells)s is None for the whole city, else the ids
# of gis.access.Scope.cell_ids (a constant list, so the usual city-wide case costs nothing).
SCOPE_CELLS_SQL = "(%(scope_cells)s::bigint[] is null or c.id = any(%(scope_cells)s::bigint[]))"


def filter_params(filters, scope=CITY_SCOPE):
    """The bound parameters of :data:`FILTER_SQL` for a :class:`TileFilters` and the asker's scope (its
    department's subclasses only, for a department's handlers)."""
    return dict(since=filters.since, until=filters.until, department=scope.department,
                by_category=bool(filters.subclasses or filters.classes),
                subclasses=list(filters.subclasses), classes=list(filters.classes),
                by_status=filters.by_status, states=list(filters.states), overdue=filters.overdue)


# One statement per tile. The candidates are the cells whose bounding box meets the buffered tile's lon/lat
# box (tile_placement), through the cells' GiST index; ST_AsMVTGeom clips them, and only those left (`cell`)
# are counted: a district's box reaches into many tiles its outline misses (a z16 tile over two districts
# counted the 43,246 incidents of three, 30,104 now). Only the bounding-box test (&&) in SQL: an
# ST_Intersects as well made the planner guess one row and pick nested loops that took minutes on big tiles.
# `clipped` is materialized so that ST_AsMVTGeom runs once per cell: inlined, the planner evaluated it in
# the filter and again in the output (641 unit grids at z13: 4.8 ms → 2.6 ms).
# {geom} is the cell's geometry in the tile's Web Mercator: ST_Transform per tile rather than a stored
# EPSG:3857 copy, which would save 0.8 ms of the 15 ms of the biggest tile (641 cells, 4,505 points), not
# worth a second geometry column on every cell. ST_Simplify by half a tile unit (1/32 px, so neighbours
# simplified apart stay within a unit of each other) before ST_AsMVTGeom, which snaps to units but keeps
# the points in between: over the map's tiles the same time and 11 % fewer bytes; districts, streets and
# communities at their lower zooms 30–62 % fewer (a district tile at z7 9.2 → 3.5 kB).
# `same_code` lists, for every cell of the tile, itself and the cells of other versions with its code and
# level: incidents routed against those versions count here too. The other versions come as a constant
# list, so that the planner sees the usual case (no other version) as empty and never scans grid_cell.
# `routed` reads only columns of the level's covering index (sql/010_tiles.sql): an index-only scan.
_TILE_SQL = """
with clipped as materialized (
    select c.id, c.code, c.name, c.level, c.area_m2, c.population,
           ST_AsMVTGeom(ST_Simplify({geom}, %(tolerance)s, true), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                        %(extent)s, %(buffer)s, true) as geom
      from grid_cell c
     where c.version_id = %(version)s and c.level = %(level)s
       and c.geom && ST_MakeEnvelope(%(west)s, %(south)s, %(east)s, %(north)s, 4326)
       and {in_scope}
), cell as (
    select * from clipped where geom is not null
), same_code as (
    select c.id as routed_id, c.id as cell_id from cell c
    union all
    select o.id, c.id
      from cell c
      join grid_cell o on o.version_id = any(%(others)s::int[]) and o.code = c.code and o.level = c.level
), routed as (
    -- incidents by the cell they were routed to, fetched by the level's index on a list of cell ids
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
           c.geom
      from cell c
      left join tally t on t.cell_id = c.id
)
select ST_AsMVT(feature, %(layer)s, %(extent)s, 'geom', 'id') as mvt
  from feature
"""
_MERCATOR = "ST_Transform(c.geom, 3857)"
_SHIFTED = "ST_Affine(ST_Transform(c.geom, 3857), %(a)s, %(b)s, %(d)s, %(e)s, %(xoff)s, %(yoff)s)"

_RADIUS = 6378137.0             # EPSG:3857's sphere
_HALF_WORLD = math.pi * _RADIUS  # the tiling's origin is (-_HALF_WORLD, _HALF_WORLD), as ST_TileEnvelope's


def tile_bounds(z, x, y, margin=0.0):
    """Web Mercator bounds ``(xmin, ymin, xmax, ymax)`` of XYZ tile ``z/x/y`` widened by ``margin`` tile
    widths on every side, as ``ST_TileEnvelope(z, x, y, margin => margin)`` (in the tile's own tiling)."""
    size = 2 * _HALF_WORLD / 2 ** z
    return (-_HALF_WORLD + (x - margin) * size, _HALF_WORLD - (y + 1 + margin) * size,
            -_HALF_WORLD + (x + 1 + margin) * size, _HALF_WORLD - (y - margin) * size)


def to_mercator(lon, lat):
    """Longitude/latitude (degrees, arrays) → Web Mercator metres, as PostGIS's ST_Transform(…, 3857)."""
    return np.radians(lon) * _RADIUS, _RADIUS * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))


def from_mercator(x, y):
    """Web Mercator metres (arrays) → longitude/latitude degrees; the inverse of :func:`to_mercator`."""
    return np.degrees(np.asarray(x) / _RADIUS), np.degrees(2 * np.arctan(np.exp(np.asarray(y) / _RADIUS)) - np.pi / 2)


def tile_placement(address):
    """Which cells a tile takes and how they are moved onto it.

    A GCJ-02 tile is a tile of the same XYZ tiling over GCJ-02 longitudes and latitudes. GCJ-02 is WGS84
    plus a smooth offset (a few hundred metres, varying by about 1e-3 m per m), so over one tile the map
    from the cells' WGS84 Web Mercator to GCJ-02 Web Mercator is affine to a third of a pixel: it is fitted
    by least squares on a 3 × 3 grid of points of the buffered tile, taken back to WGS84 with
    :func:`gis.crs.to_wgs84`. Measured against the exact transform on a 33 × 33 grid per tile, 300 random
    tiles over China per zoom: at most 5.4 of 4,096 units (0.34 px of a 256-px tile) at z11, where the
    formula's terms with a period of 1/3° are about a tile wide; 2.7 units at z8, 0.83 at z14, 0.05 at z18
    (tests/test_tiles.py checks 0.4 px at z8–18; a corner fit alone reached 6.1 units). Outside China
    GCJ-02 is WGS84 and the map is the identity.

    Parameters
    ----------
    address : TileAddress

    Returns
    -------
    box : tuple of float
        ``(west, south, east, north)``, WGS84 degrees: the buffered tile, or for GCJ-02 the box of its
        WGS84 preimage's nine grid points (the preimage's edges bow out of it by 1.8 units at most, in the
        outer part of the 64-unit buffer: nothing reaching into the tile is missed).
    affine : tuple of float or None
        ``(a, b, d, e, xoff, yoff)``: ST_Affine's 2-D arguments, x' = a·x + b·y + xoff, y' = d·x + e·y +
        yoff, from WGS84 to GCJ-02 Web Mercator; None for a WGS84 tile.
    """
    x0, y0, x1, y1 = tile_bounds(address.z, address.x, address.y, BUFFER / EXTENT)
    if address.crs == "wgs84":
        (west, east), (south, north) = from_mercator([x0, x1], [y0, y1])
        return (float(west), float(south), float(east), float(north)), None
    gx, gy = (v.ravel() for v in np.meshgrid(np.linspace(x0, x1, 3), np.linspace(y0, y1, 3)))
    lon, lat = crs_mod.to_wgs84(*from_mercator(gx, gy), "gcj02")
    wx, wy = to_mercator(lon, lat)
    cx, cy = wx.mean(), wy.mean()  # centred: a fit on raw coordinates (~1e7 m) loses digits
    design = np.column_stack([wx - cx, wy - cy, np.ones_like(wx)])
    (a, b, c), (d, e, f) = (np.linalg.lstsq(design, target, rcond=None)[0] for target in (gx, gy))
    box = (lon.min(), lat.min(), lon.max(), lat.max())
    return tuple(map(float, box)), tuple(map(float, (a, b, d, e, c - a * cx - b * cy, f - d * cx - e * cy)))


_VERSION_SQL = """
select v.id, array(select o.id from grid_version o where o.id <> v.id order by o.id) as others
  from grid_version v
 where v.id = coalesce(%(version)s::int, (select id from grid_version where status = 'active'))
"""


def tile_query(address, filters, version_id, other_versions=(), scope=CITY_SCOPE, scope_cells=None):
    """The SQL text and its parameters for one tile (for the tile itself and for EXPLAIN); ``scope_cells``
    are the ids of the cells of ``scope`` (:meth:`gis.access.Scope.cell_ids`), None for the whole city."""
    box, affine = tile_placement(address)
    sql = _TILE_SQL.format(column=LEVEL_COLUMNS[address.level], filters=FILTER_SQL, in_scope=SCOPE_CELLS_SQL,
                           geom=_MERCATOR if affine is None else _SHIFTED)
    params = dict(z=address.z, x=address.x, y=address.y, level=address.level, version=version_id,
                  others=list(other_versions), **filter_params(filters, scope), scope_cells=scope_cells,
                  **dict(zip(("west", "south", "east", "north"), box)),
                  **dict(zip(("a", "b", "d", "e", "xoff", "yoff"), affine or ())),
                  tolerance=2 * _HALF_WORLD / 2 ** address.z / EXTENT / 2,  # half a tile unit, in metres
                  extent=EXTENT, buffer=BUFFER, layer=LAYER)
    return sql, params


def cell_tile(cur, address, filters=TileFilters(), version_id=None, *, scope=CITY_SCOPE):
    """One tile as MVT bytes; ``b""`` when no cell of the level touches it. Only the cells and incidents
    inside ``scope`` (:mod:`gis.access`) are in it.

    Parameters
    ----------
    cur : cursor
    address : TileAddress
    filters : TileFilters
    version_id : int, optional
        The grid version to show; the active one by default (:class:`gis.errors.NotFound` if none).

    Returns
    -------
    bytes
        Layer ``cells``; feature id the cell id; properties ``code``, ``name``, ``level``, ``area_km2``,
        ``population`` (absent when unknown), ``count`` (matching incidents), ``per_km2``, ``open`` and
        ``overdue`` (of the matching incidents).
    """
    cur.execute(_VERSION_SQL, {"version": version_id})
    version = cur.fetchone()
    if version is None:
        raise NotFound(f"grid version {version_id} does not exist" if version_id is not None
                       else "no grid version is active yet; name one with version=")
    # a tile is a short query whose plan costs look big at low zooms: compiling it (JIT) took ~1 s of a
    # z10 tile's 1.6 s on the demo city; for this transaction only. No parallel workers either: ST_AsMVTGeom's
    # declared cost made a parallel scan of grid_cell look cheaper than its GiST index (a z13 unit-grid
    # tile 17.5 → 5.9 ms), and a map asks for a screenful of tiles at once, which keeps the cores busy.
    cur.execute("set local jit = off")
    cur.execute("set local max_parallel_workers_per_gather = 0")
    cur.execute(*tile_query(address, filters, version["id"], version["others"], scope,
                            scope.cell_ids(cur, version["id"])))
    row = cur.fetchone()
    return bytes(row["mvt"]) if row and row["mvt"] is not None else b""
