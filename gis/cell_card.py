"""A grid cell's card for the command room: who answers for it, and what is going on in it.

>>> with db.cursor() as cur:
...     card(cur, "410105001", parse_filters({"since": "2026-11-01"}))["counts"]["open"]

Incidents count here by the same rules as on the map's tiles (:mod:`gis.tiles`): routed to the cell at its
level, in this version or, by code, in another one; filtered by time, category and status alike.
"""
from gis import grid_store
from gis.access import CITY_SCOPE
from gis.errors import NotFound
from gis.tiles import FILTER_SQL, LEVEL_COLUMNS, TileFilters, filter_params

UNIT_KINDS = ("district", "street", "community", "grid")  # the worklist's word for each level
TOP_CATEGORIES = 5

_CELL_SQL = """
select c.id, c.version_id, c.code, c.name, c.level, c.kind, c.population,
       round((c.area_m2 / 1e6)::numeric, 4)::float8 as area_km2,
       array[ST_XMin(c.geom), ST_YMin(c.geom), ST_XMax(c.geom), ST_YMax(c.geom)] as bbox,
       (select count(*) from grid_cell k where k.parent_id = c.id)::int as children,
       coalesce((select k.staff from cell_staff_card k where k.cell_id = c.id), '[]') as staff,
       array(select o.id from grid_cell o where o.code = c.code and o.level = c.level) as same_code
  from grid_cell c
 where c.version_id = %(version)s and c.code = %(code)s
"""

# The cell's line of parents, district first: the breadcrumbs of the drill-down.
_ANCESTORS_SQL = """
with recursive up as (
    select p.id, p.code, p.name, p.level, p.parent_id from grid_cell p
     where p.id = (select parent_id from grid_cell where id = %(id)s)
    union all
    select p.id, p.code, p.name, p.level, p.parent_id from grid_cell p join up on p.id = up.parent_id
)
select id, code, name, level from up order by level
"""

_TALLY_SQL = """
select i.status, i.category, s.name_zh, s.name_en, count(*)::int as n,
       count(*) filter (where i.status in ('dispatched', 'in_progress') and i.due_at < now())::int as overdue
  from incident i
  left join event_subclass s on s.code = i.category
 where i.{column} = any(%(same_code)s) and {filters}
 group by i.status, i.category, s.name_zh, s.name_en
"""


def card(cur, code, filters=TileFilters(), version_id=None, *, scope=CITY_SCOPE):
    """A cell's card: identity, parents, staff with phones, counts by status, top categories.

    Parameters
    ----------
    cur : cursor
    code : str
        The cell's code (unique within a version).
    filters : TileFilters
        Which incidents count (the map's filters).
    version_id : int, optional
        The active version by default.

    Returns
    -------
    dict
        ``id, version_id, code, name, level, kind, population, area_km2, bbox`` (lon/lat), ``children``,
        ``ancestors`` (district first), ``staff``, ``counts`` (``total, open, overdue, closed, voided`` and
        ``by_status``), ``top_categories`` (``code, name_zh, name_en, count``, most first), ``unit`` (the
        worklist's ``kind:code``).

    Raises
    ------
    NotFound
        No such version, or no cell of that code in it inside ``scope`` (:mod:`gis.access`).
    """
    version = grid_store.resolve_version(cur, version_id)
    scope.require_cell(cur, version["id"], code)
    cur.execute(_CELL_SQL, {"version": version["id"], "code": code})
    cell = cur.fetchone()
    if cell is None:
        raise NotFound(f"grid version {version['id']} has no cell with code {code!r}")
    cell = dict(cell)
    same_code = cell.pop("same_code")
    cur.execute(_ANCESTORS_SQL, {"id": cell["id"]})
    cell["ancestors"] = [dict(r) for r in cur.fetchall()]
    cur.execute(_TALLY_SQL.format(column=LEVEL_COLUMNS[cell["level"]], filters=FILTER_SQL),
                {**filter_params(filters, scope), "same_code": same_code})
    rows = cur.fetchall()
    by_status, by_category = {}, {}
    for r in rows:
        by_status[r["status"]] = by_status.get(r["status"], 0) + r["n"]
        entry = by_category.setdefault(r["category"], {"code": r["category"], "name_zh": r["name_zh"],
                                                       "name_en": r["name_en"], "count": 0})
        entry["count"] += r["n"]
    closed, voided = by_status.get("closed", 0), by_status.get("voided", 0)
    total = sum(by_status.values())
    cell["counts"] = {"total": total, "open": total - closed - voided, "overdue": sum(r["overdue"] for r in rows),
                      "closed": closed, "voided": voided, "by_status": by_status}
    cell["top_categories"] = sorted(by_category.values(), key=lambda c: (-c["count"], c["code"]))[:TOP_CATEGORIES]
    cell["unit"] = f"{UNIT_KINDS[cell['level']]}:{cell['code']}"
    return cell
