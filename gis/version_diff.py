"""What changed between two grid versions: cells added, removed, reshaped, renamed or otherwise modified.

Cells are matched by (code, level), in one SQL statement (:data:`DIFF_SQL`). A matched pair is
*reshaped* when its geometries really differ, judged piece by piece:

* Identical coordinates (``a.geom = b.geom``, a byte comparison) are unchanged without any overlay: the
  usual case, a new version imported from the same files with a few cells edited.
* Otherwise both differences are computed (``ST_Difference`` each way: what the cell gained, what it lost)
  and cut into pieces; a piece counts when it covers at least ``min_area_m2`` (1 m²) *and* is on average
  wider than ``noise_m`` (1 cm; 2·area/perimeter, the lower bound of a piece's width that
  :mod:`gis.partition_checks` uses too). The cell is reshaped when any piece counts, and its gained and lost
  geometries are those pieces.

Why not ``ST_Equals``, nor one threshold on the symmetric difference's area: ``ST_Equals`` is exact, so the
same boundaries exported and imported again (7 decimals in GeoJSON, a round trip through GCJ-02 or a
Gauss-Krüger zone) would show every cell reshaped. A threshold on the total area does not scale with the
cell: the demo with every vertex moved by 0.1 mm leaves 12 m² on average around a district (130 km of
boundary), and 1 m² would call 264 districts, streets and communities reshaped (this test: none), while a
real 1 m shift of a 1 m stretch of edge is no more. Noise is thin and real edits are not, so the test is on
width, as for the partition checks' overlaps and gaps.

Attribute changes are compared as stored: name (*renamed*), kind, population and the parent's code
(*modified*). A cell that is both reshaped and renamed is reported once, as reshaped; ``changed`` lists
every attribute that differs.
"""
from gis import grid_store
from gis.access import CITY_SCOPE, CODE_LEVELS

CHANGES = ("added", "removed", "reshaped", "renamed", "modified")

# The pieces of ``ST_Difference({0}, {1})`` that count, collected, and their area. The bounds in degrees come
# first because they are cheap: k = 111,700 m is more than a degree of latitude or longitude anywhere, so a
# piece they drop is smaller or thinner in metres too; the ellipsoidal area and perimeter are then computed for
# the few pieces left (on the demo with every cell moved by 0.1 mm, 1.8 s instead of 2.8 s).
PIECES_SQL = """
    select ST_Multi(ST_Collect(x.geom)) as geom, sum(x.m2) as m2 from (
        select d.geom, ST_Area(d.geom::geography) as m2, ST_Perimeter(d.geom::geography) as perimeter
          from ST_Dump(case when p.moved then ST_Difference(p.{0}, p.{1}) end) d
         where ST_Area(d.geom) * 111700 ^ 2 >= %(min_area_m2)s
           and 2 * ST_Area(d.geom) * 111700 > %(noise_m)s * ST_Perimeter(d.geom)
        offset 0) x
     where x.m2 >= %(min_area_m2)s and 2 * x.m2 > %(noise_m)s * x.perimeter"""

DIFF_SQL = """
with a as (
    select c.code, c.level, c.name, c.kind, c.population, p.code as parent_code, c.geom, c.area_m2
      from grid_cell c left join grid_cell p on p.id = c.parent_id
     where c.version_id = %(a)s and (%(level)s::smallint is null or c.level = %(level)s)
), b as (
    select c.code, c.level, c.name, c.kind, c.population, p.code as parent_code, c.geom, c.area_m2
      from grid_cell c left join grid_cell p on p.id = c.parent_id
     where c.version_id = %(b)s and (%(level)s::smallint is null or c.level = %(level)s)
), pairs as (
    select coalesce(b.code, a.code) as code, coalesce(b.level, a.level) as level, a.name as name_a, b.name as name_b,
           a.kind as kind_a, b.kind as kind_b, a.population as population_a, b.population as population_b,
           a.parent_code as parent_a, b.parent_code as parent_b, a.geom as geom_a, b.geom as geom_b,
           a.area_m2 as area_a, b.area_m2 as area_b,
           -- overlays only where the coordinates are not the very same
           a.geom is not null and b.geom is not null and not (a.geom = b.geom) as moved
      from a full join b on b.code = a.code and b.level = a.level
), shapes as (
    select p.*, gained.geom as gained, gained.m2 as gained_m2, lost.geom as lost, lost.m2 as lost_m2
      from pairs p
     cross join lateral ({gained}) gained
     cross join lateral ({lost}) lost
), diffed as (
    select s.*,
           case when geom_a is null then 'added'
                when geom_b is null then 'removed'
                when gained is not null or lost is not null then 'reshaped'
                when name_a <> name_b then 'renamed'
                when (kind_a, population_a, parent_a) is distinct from (kind_b, population_b, parent_b) then 'modified'
                else 'unchanged' end as change
      from shapes s
)
select (select coalesce(json_agg(json_build_object(
               'change', change, 'code', code, 'level', level, 'name', coalesce(name_b, name_a),
               'area_before_m2', area_a, 'area_after_m2', area_b, 'gained_m2', gained_m2, 'lost_m2', lost_m2,
               'changed', case when change in ('added', 'removed') then '{}'::jsonb else jsonb_strip_nulls(
                   jsonb_build_object(
                       'name', case when name_a <> name_b then jsonb_build_array(name_a, name_b) end,
                       'kind', case when kind_a <> kind_b then jsonb_build_array(kind_a, kind_b) end,
                       'population', case when population_a is distinct from population_b
                                          then jsonb_build_array(population_a, population_b) end,
                       'parent_code', case when parent_a is distinct from parent_b
                                           then jsonb_build_array(parent_a, parent_b) end)) end,
               'geometry', ST_AsGeoJSON(coalesce(geom_b, geom_a), 7)::json,
               'gained', ST_AsGeoJSON(gained, 7)::json, 'lost', ST_AsGeoJSON(lost, 7)::json)
               order by level, code), '[]'::json)
          from diffed where change <> 'unchanged') as changes,
       (select json_object_agg(change, n) from (select change, count(*) as n from diffed group by change) s) as counts
""".replace("{gained}", PIECES_SQL.format("geom_b", "geom_a")).replace("{lost}", PIECES_SQL.format("geom_a", "geom_b"))


def diff(cur, a, b, level=None, *, min_area_m2=1.0, noise_m=0.01, scope=CITY_SCOPE):
    """The changes from version ``a`` to version ``b``.

    Parameters
    ----------
    cur : cursor
        A RealDictCursor.
    a, b : int
        Version ids, the earlier and the later (any two: drafts too, to preview an import).
    level : int, optional
        Only this level (0–3).
    min_area_m2, noise_m : float
        A piece of a cell's gained or lost area counts when it covers at least ``min_area_m2`` and is on
        average wider than ``noise_m`` (see the module's notes).

    Returns
    -------
    dict
        ``a``, ``b``, ``level``, ``counts`` (``{change: n}`` for every change and ``unchanged``) and
        ``changes``: dicts with change, code, level, name, area_before_m2, area_after_m2, area_change_m2,
        area_change_pct, gained_m2, lost_m2, changed (``{field: [before, after]}``) and the GeoJSON
        geometries ``geometry`` (the cell in ``b``, or in ``a`` when removed), ``gained`` and ``lost``.

    Raises
    ------
    NotFound
        When either version does not exist.

    Only the cells inside ``scope`` (:mod:`gis.access`) in either version are compared and counted.
    """
    for version_id in (a, b):
        grid_store.get_version(cur, version_id)
    if level is not None:
        grid_store.check_level(level)
    # as for the tiles: the lateral overlays' estimated costs pass jit_above_cost, and compiling takes ~0.6 s
    cur.execute("set local jit = off")
    cur.execute(DIFF_SQL, {"a": a, "b": b, "level": level, "min_area_m2": min_area_m2, "noise_m": noise_m})
    row = cur.fetchone()
    changes = [_with_area_change(c) for c in row["changes"]]
    counts = dict.fromkeys(CHANGES + ("unchanged",), 0) | (row["counts"] or {})
    if not scope.is_city:
        inside = {code for code in scope.cell_codes(cur, a) | scope.cell_codes(cur, b)
                  if level is None or CODE_LEVELS[len(code)] == level}  # (a code's length is its level)
        changes = [c for c in changes if c["code"] in inside]
        counts = dict.fromkeys(CHANGES, 0) | {"unchanged": len(inside) - len(changes)}
        for c in changes:
            counts[c["change"]] += 1
    return {"a": a, "b": b, "level": level, "counts": counts, "changes": changes}


def _with_area_change(change):
    before, after = change["area_before_m2"], change["area_after_m2"]
    delta = (after or 0.0) - (before or 0.0)
    change.update(
        area_before_m2=_round(before, 1), area_after_m2=_round(after, 1), area_change_m2=round(delta, 1),
        area_change_pct=round(100 * delta / before, 2) if before else None,
        gained_m2=_round(change["gained_m2"], 1), lost_m2=_round(change["lost_m2"], 1),
    )
    return change


def _round(value, digits):
    return None if value is None else round(value, digits)


def as_geojson(result):
    """A diff as a GeoJSON FeatureCollection (a dict), EPSG:4326.

    One feature per changed cell, with properties change, code, name, level, area_before_m2,
    area_after_m2, area_change_m2, area_change_pct, changed, gained_m2 and lost_m2. A reshaped cell is
    followed by features ``gained`` and ``lost`` (when not empty) with the same keys: the cell's code, name
    and level, ``area_change_m2`` the piece's area (positive gained, negative lost), the other areas null.
    The collection carries ``versions`` ([a, b]), ``level`` and ``counts``.
    """
    features = []
    for c in result["changes"]:
        props = {k: c[k] for k in ("change", "code", "name", "level", "area_before_m2", "area_after_m2",
                                   "area_change_m2", "area_change_pct", "changed", "gained_m2", "lost_m2")}
        features.append({"type": "Feature", "id": c["code"], "geometry": c["geometry"], "properties": props})
        for part, sign in (("gained", 1), ("lost", -1)):
            if c[part] is not None:
                features.append({"type": "Feature", "id": f"{c['code']}:{part}", "geometry": c[part], "properties": {
                    **dict.fromkeys(props), "change": part, "code": c["code"], "name": c["name"], "level": c["level"],
                    "area_change_m2": sign * c[f"{part}_m2"], "changed": {}}})
    return {"type": "FeatureCollection", "versions": [result["a"], result["b"]], "level": result["level"],
            "counts": result["counts"], "features": features}
