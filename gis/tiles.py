"""Mapbox vector tiles of grid cells with their incident counts, built by PostGIS in one statement.

A tile ``z/x/y`` (XYZ, Web Mercator) holds the cells of one level of a grid version that reach into it or
its buffer (64 of 4096 units: the usual MVT margin against seams), in one layer ``cells``, each with the incidents routed to it that match the filters counted. Incidents are
matched by their routing at the tile's level (``district_id`` … ``grid_id``): by cell id when they were
routed against the version the tile shows, by cell code when routed against another one (the code carries
over between versions, as in :mod:`gis.evaluation`).

>>> filters = parse_filters({"since": "2026-11-01", "status": "open,overdue", "category": "01"})
>>> with db.cursor() as cur:
...     body = cell_tile(cur, TileAddress(3, 14, 13364, 6502), filters)   # b"" when no cell is there
"""
import datetime as dt
import re
from dataclasses import dataclass

from gis.errors import BadInput, NotFound
from gis.incidents import CHINA_TIME, CLOSED_STATES, OPEN_STATES

MAX_ZOOM = 22
EXTENT = 4096   # ST_AsMVTGeom's default
BUFFER = 64     # in tile units: enough that strokes along the tile edge do not show seams
LAYER = "cells"
# The incident column holding its routing at each level; only these names ever reach the SQL text.
LEVEL_COLUMNS = ("district_id", "street_id", "community_id", "grid_id")
STATUS_WORDS = ("open", "overdue", "closed")
_CATEGORY = re.compile(r"^[0-9]{2}([0-9]{2})?$")


@dataclass(frozen=True)
class TileAddress:
    """A tile of one grid level; checked on construction."""

    level: int
    z: int
    x: int
    y: int

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
    since, until = _time(args, "since"), _time(args, "until")
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


def _time(args, name):
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{name} must be an ISO 8601 date or date-time; got {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=CHINA_TIME)


def _listed(args, name):
    return [part.strip() for part in (args.get(name) or "").split(",") if part.strip()]


# One statement per tile. The tile's envelope is taken to EPSG:4326 (exactly a lon/lat box: Web Mercator
# maps meridians and parallels to straight lines) so that the cells' GiST index picks the candidates. Only
# the bounding-box test (&&) here: an ST_Intersects as well made the planner guess one row and pick nested
# loops that took minutes on big tiles; ST_AsMVTGeom clips and drops the cells that miss the buffered tile.
# `same_code` lists, for every cell of the tile, itself and the cells of other versions with its code and
# level: incidents routed against those versions count here too. The other versions come as a constant
# list, so that the planner sees the usual case (no other version) as empty and never scans grid_cell.
_TILE_SQL = """
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
    -- incidents by the cell they were routed to, fetched by the level's index on a list of cell ids
    select i.{column} as routed_id,
           count(*) as n,
           count(*) filter (where i.status not in ('closed', 'voided')) as n_open,
           count(*) filter (where i.status in ('dispatched', 'in_progress') and i.due_at < now()) as n_overdue
      from incident i
     where i.{column} = any(array(select routed_id from same_code))
       and (%(since)s::timestamptz is null or i.reported_at >= %(since)s::timestamptz)
       and (%(until)s::timestamptz is null or i.reported_at < %(until)s::timestamptz)
       and (not %(by_category)s or i.category = any(%(subclasses)s::text[])
            or left(i.category, 2) = any(%(classes)s::text[]))
       and (not %(by_status)s or i.status = any(%(states)s::text[])
            or (%(overdue)s and i.status in ('dispatched', 'in_progress') and i.due_at < now()))
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


_VERSION_SQL = """
select v.id, array(select o.id from grid_version o where o.id <> v.id order by o.id) as others
  from grid_version v
 where v.id = coalesce(%(version)s::int, (select id from grid_version where status = 'active'))
"""


def tile_query(address, filters, version_id, other_versions=()):
    """The SQL text and its parameters for one tile (for the tile itself and for EXPLAIN)."""
    sql = _TILE_SQL.format(column=LEVEL_COLUMNS[address.level])
    params = dict(z=address.z, x=address.x, y=address.y, level=address.level, version=version_id,
                  others=list(other_versions),
                  since=filters.since, until=filters.until,
                  by_category=bool(filters.subclasses or filters.classes),
                  subclasses=list(filters.subclasses), classes=list(filters.classes),
                  by_status=filters.by_status, states=list(filters.states), overdue=filters.overdue,
                  extent=EXTENT, buffer=BUFFER, margin=BUFFER / EXTENT, layer=LAYER)
    return sql, params


def cell_tile(cur, address, filters=TileFilters(), version_id=None):
    """One tile as MVT bytes; ``b""`` when no cell of the level touches it.

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
    # z10 tile's 1.6 s on the demo city; for this transaction only
    cur.execute("set local jit = off")
    cur.execute(*tile_query(address, filters, version["id"], version["others"]))
    row = cur.fetchone()
    return bytes(row["mvt"]) if row and row["mvt"] is not None else b""
