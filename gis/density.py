"""Incident density per cell of one grid level, and the class breaks of a choropleth map of it.

Cells are counted by the rules of the map's vector tiles (:mod:`gis.tiles`): the same filters
(:func:`gis.tiles.parse_filters`, :data:`gis.tiles.FILTER_SQL`), and incidents matched by their routing
at the level, by cell id when routed against the version shown and by cell code when routed against
another one. The command room's legend (``GET /api/v1/map/classes``) and the daily report map
(:mod:`gis.map_export`) both classify what :func:`cell_counts` returns.

>>> filters = tiles.parse_filters({"since": "2026-11-16", "category": "01"})
>>> with db.cursor() as cur:
...     answer = classes(cur, 3, filters, "per_km2", "fisher_jenks", 5)
>>> [round(b, 1) for b in answer["breaks"]]   # upper bounds of the classes, ascending (the demo city)
[11.6, 38.1, 73.8, 310.0, 490.8]
>>> answer["counts"], answer["total"]           # unit grids per class; incidents
([24343, 1078, 221, 64, 2], 2216)
"""
import threading
import warnings
from bisect import bisect_left
from operator import itemgetter

import numpy as np

from gis.errors import BadInput, NotFound
from gis.access import CITY_SCOPE, subtree_ids
from gis.tiles import FILTER_SQL, LEVEL_COLUMNS, SCOPE_CELLS_SQL, TileFilters, filter_params

# measure → (Chinese, English) name, as the legends show it
MEASURES = {
    "count": ("事件数", "incidents"),
    "per_km2": ("每平方公里事件数", "incidents per km²"),
    "per_1000": ("每千人事件数", "incidents per 1,000 residents"),
}
# scheme → mapclassify's classifier
SCHEMES = {"quantiles": "Quantiles", "fisher_jenks": "FisherJenks", "natural_breaks": "NaturalBreaks",
           "equal_interval": "EqualInterval"}
K_RANGE = range(2, 10)
# Exact Fisher-Jenks is O(n²): ~70 ms for 5,000 values, seconds for the demo's 25,708 unit grids. Above
# this, mapclassify's FisherJenksSampled classifies a random sample (10 %, at most 1,000 values, always
# holding the min and max).
FISHER_JENKS_EXACT_MAX = 5000
# Sampled Fisher-Jenks and natural breaks (k-means) draw from numpy's global random state: seeded here so
# that the same counts always give the same map; the lock keeps two threads from reseeding each other.
_SEED = 20261123
_RANDOM = threading.Lock()

_VERSION_SQL = """
select v.id, array(select o.id from grid_version o where o.id <> v.id order by o.id) as others,
       (select p.level from grid_cell p where p.version_id = v.id and p.code = %(parent)s) as parent_level
  from grid_version v
 where v.id = coalesce(%(version)s::int, (select id from grid_version where status = 'active'))
"""

# One aggregate of the matching incidents by the cell they were routed to (`routed`): for a whole level it
# reads every matching incident once (the level's index, or the reported_at index with a period), under a
# parent cell only those of its cells, fetched by the level's index. Incidents routed against other
# versions count for the cell with the same code and level (as in gis.tiles); `x` sums them. No CTE of
# the cells: the planner then knows how many rows come out, and keeps to hash joins.
_CELLS_SQL = """
with routed as (
    select i.{column} as routed_id,
           count(*) as n,
           count(*) filter (where i.status not in ('closed', 'voided')) as n_open,
           count(*) filter (where i.status in ('dispatched', 'in_progress') and i.due_at < now()) as n_overdue
      from incident i
     where {routed} and {filters}
     group by i.{column}
)
select c.id, c.code, c.name, c.level, c.area_m2 / 1e6 as area_km2, c.population,
       (coalesce(r.n, 0) + coalesce(x.n, 0))::int as count,
       (coalesce(r.n_open, 0) + coalesce(x.n_open, 0))::int as open,
       (coalesce(r.n_overdue, 0) + coalesce(x.n_overdue, 0))::int as overdue
  from grid_cell c
  left join routed r on r.routed_id = c.id
  left join ({other}) x on x.code = c.code
 where c.version_id = %(version)s and c.level = %(level)s{within} and {in_scope}
"""
_OTHER = """select o.code, sum(r.n) as n, sum(r.n_open) as n_open, sum(r.n_overdue) as n_overdue
               from grid_cell o join routed r on r.routed_id = o.id
              where o.version_id = any(%(others)s::int[]) and o.level = %(level)s
              group by o.code"""
# With a single version: nothing, and `routed`, used once, is inlined rather than materialized (-12 ms).
_NO_OTHER = "select null::text as code, 0::bigint as n, 0::bigint as n_open, 0::bigint as n_overdue where false"
_ROUTED_ALL = "i.{column} is not null"
# the cells under the parent and those of other versions with their codes
_ROUTED_UNDER = """i.{column} in (
           select k.id from grid_cell k
            where k.version_id = any(%(others)s::int[] || %(version)s) and k.level = %(level)s
              and k.code in (select c.code from grid_cell c
                              where c.version_id = %(version)s and c.level = %(level)s{within}))"""
# The cells under the parent cell, down its parent_id chain (gis.access.subtree_ids: a list, not a
# recursive query, so that the planner knows how many there are).
_WITHIN_SQL = """
       and c.id = any(%(under)s::bigint[])"""


def cell_counts(cur, level, filters=TileFilters(), version_id=None, parent_code=None, *, scope=CITY_SCOPE):
    """Every cell of a level inside ``scope`` (:mod:`gis.access`) with the incidents that match the filters.

    Parameters
    ----------
    cur : cursor
        A dict cursor (``RealDictCursor``).
    level : int
        0 district … 3 unit grid.
    filters : gis.tiles.TileFilters
    version_id : int, optional
        The grid version; the active one by default.
    parent_code : str, optional
        Only the cells of ``level`` under this cell (its children, or theirs), e.g. a street's unit grids.

    Returns
    -------
    list of dict
        By code: ``id``, ``code``, ``name``, ``level``, ``area_km2``, ``population`` (None when unknown),
        ``count`` (matching incidents), ``open`` and ``overdue`` (of the matching incidents).

    Raises
    ------
    BadInput
        A level outside 0–3, or a parent cell that is not above ``level``.
    NotFound
        No such version (or none active), or no cell ``parent_code`` in it.
    """
    level = _level(level)
    cur.execute(_VERSION_SQL, {"version": version_id, "parent": parent_code})
    version = cur.fetchone()
    if version is None:
        raise NotFound(f"grid version {version_id} does not exist" if version_id is not None
                       else "no grid version is active yet; name one with version=")
    if parent_code is not None:
        if version["parent_level"] is None:
            raise NotFound(f"no cell {parent_code} in grid version {version['id']}")
        if version["parent_level"] >= level:
            raise BadInput(f"cell {parent_code} is at level {version['parent_level']}: "
                           f"it has no cells of level {level} under it")
    # as for the tiles: the plan's costs can exceed jit_above_cost, and compiling then takes ~300 ms
    cur.execute("set local jit = off")
    # a plain cursor in the same transaction: RealDictRow costs ~100 ms more for the 25,708 unit grids
    with cur.connection.cursor() as plain:
        under = None
        if parent_code is not None:
            scope.require_cell(cur, version["id"], parent_code)  # (NotFound outside the scope)
            under = subtree_ids(cur, version["id"], parent_code)
        # under a parent inside the scope every cell is inside: no second list to test them against
        scope_cells = scope.cell_ids(cur, version["id"]) if parent_code is None else None
        plain.execute(*cells_query(level, filters, version["id"], version["others"], parent_code, scope,
                                   scope_cells, under))
        names = [column.name for column in plain.description]
        # ordered here: an `order by c.code` sorted 25,708 wide rows in ~15 ms, Python sorts them in ~5
        return sorted((dict(zip(names, row)) for row in plain), key=itemgetter("code"))


def cells_query(level, filters, version_id, other_versions=(), parent_code=None, scope=CITY_SCOPE,
                scope_cells=None, under=None):
    """The SQL text and its parameters of :func:`cell_counts` (for it and for EXPLAIN)."""
    column, within = LEVEL_COLUMNS[level], _WITHIN_SQL if parent_code is not None else ""
    routed = (_ROUTED_ALL if parent_code is None else _ROUTED_UNDER).format(column=column, within=within)
    sql = _CELLS_SQL.format(column=column, routed=routed, filters=FILTER_SQL, within=within,
                            other=_OTHER if other_versions else _NO_OTHER, in_scope=SCOPE_CELLS_SQL)
    return sql, dict(version=version_id, others=list(other_versions), level=level, parent=parent_code,
                     **filter_params(filters, scope), scope_cells=scope_cells, under=under)


def measure_values(rows, measure):
    """The measure of each row of :func:`cell_counts`, in order; None where it is unknown.

    ``count``: the matching incidents; ``per_km2``: per km² of the cell; ``per_1000``: per 1,000 residents
    (None for cells whose population is unknown or 0: they are left out of the classification).
    """
    _measure(measure)
    if measure == "count":
        return [row["count"] for row in rows]
    if measure == "per_km2":
        return [row["count"] / row["area_km2"] if row["area_km2"] else None for row in rows]
    return [row["count"] * 1000 / row["population"] if row["population"] else None for row in rows]


def class_breaks(values, scheme="quantiles", k=5):
    """The upper bounds of at most ``k`` classes of the values, ascending, with mapclassify.

    Parameters
    ----------
    values : sequence of float or None
        None values are left out.
    scheme : str
        ``quantiles``, ``fisher_jenks`` (sampled beyond 5,000 values: see ``FISHER_JENKS_EXACT_MAX``),
        ``natural_breaks`` (k-means, seeded) or ``equal_interval``.
    k : int
        2 to 9.

    Returns
    -------
    list of float
        A value ``v`` is in the first class whose bound is ≥ ``v``; the last bound is the maximum. Fewer
        than ``k`` bounds when values repeat (never two equal bounds): at most ``k`` distinct values get a
        class each. When every value is whole, bounds are rounded down (the same classes, readable).
        ``[0]`` when there are no values.

    >>> class_breaks(range(1, 11), "quantiles", 5)
    [2, 4, 6, 8, 10]
    """
    if scheme not in SCHEMES:
        raise BadInput(f"scheme {scheme!r} is not one of {', '.join(SCHEMES)}")
    if not isinstance(k, int) or k not in K_RANGE:
        raise BadInput(f"k must be a whole number from {K_RANGE.start} to {K_RANGE.stop - 1}; got {k!r}")
    y = np.array([v for v in values if v is not None], dtype=float)
    distinct = np.unique(y)
    if distinct.size == 0:
        return [0]
    whole = bool(np.all(y == np.floor(y)))
    if distinct.size <= k:
        bins = distinct
    else:
        import mapclassify  # here: importing it takes ~2.5 s (numba, scikit-learn), for every web worker

        name = "FisherJenksSampled" if scheme == "fisher_jenks" and y.size > FISHER_JENKS_EXACT_MAX else SCHEMES[scheme]
        classifier = getattr(mapclassify, name)
        with _RANDOM, warnings.catch_warnings():
            # quantiles of skewed counts (mostly 0) coincide: mapclassify warns that it makes fewer
            # classes; that is the answer wanted here
            warnings.filterwarnings("ignore", "Not enough unique values", UserWarning)
            state = np.random.get_state()
            np.random.seed(_SEED)
            try:
                bins = classifier(y, k=k).bins
            finally:
                np.random.set_state(state)
    bins = np.unique(np.floor(bins) if whole else bins)
    return [int(b) for b in bins] if whole else [float(b) for b in bins]


def class_of(value, breaks):
    """The index of the class of ``value`` (the first bound ≥ it); None for None."""
    return None if value is None else min(bisect_left(breaks, value), len(breaks) - 1)


def classify(rows, measure="count", scheme="quantiles", k=5):
    """Class breaks of rows of :func:`cell_counts` and what a legend says of them.

    Returns
    -------
    dict
        ``measure``, ``scheme``, ``k``, ``breaks`` (see :func:`class_breaks`), ``counts`` (cells per
        class), ``cells`` (all cells), ``classified`` (cells with a value), ``total`` (incidents in all
        cells), ``max`` (the largest value; None when no cell has one).
    """
    values = measure_values(rows, measure)
    breaks = class_breaks(values, scheme, k)
    counts = [0] * len(breaks)
    for value in values:
        if value is not None:
            counts[class_of(value, breaks)] += 1
    known = [v for v in values if v is not None]
    return {"measure": measure, "scheme": scheme, "k": k, "breaks": breaks, "counts": counts,
            "cells": len(rows), "classified": len(known), "total": sum(row["count"] for row in rows),
            "max": max(known) if known else None}


def classes(cur, level, filters=TileFilters(), measure="count", scheme="quantiles", k=5, version_id=None,
            parent_code=None, *, scope=CITY_SCOPE):
    """:func:`classify` of :func:`cell_counts`, with the ``level``: the body of ``GET /api/v1/map/classes``.

    Under a ``parent_code`` it also lists the ``codes`` of the cells classified, so that the map can grey
    out the others without guessing the tree from the codes.
    Measure, scheme and k are checked before the database is asked (:class:`gis.errors.BadInput`).
    """
    _measure(measure)
    class_breaks([], scheme, k)
    rows = cell_counts(cur, level, filters, version_id, parent_code, scope=scope)
    body = {"level": level, **classify(rows, measure, scheme, k)}
    if parent_code is not None or not scope.is_city:
        body["codes"] = [row["code"] for row in rows]
    return body


def _level(level):
    if not isinstance(level, int) or not 0 <= level <= 3:
        raise BadInput(f"level must be between 0 (district) and 3 (unit grid); got {level!r}")
    return level


def _measure(measure):
    if measure not in MEASURES:
        raise BadInput(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
