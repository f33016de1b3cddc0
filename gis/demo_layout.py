"""Where the demo's synthetic cells go: Zhengzhou's layout rules on top of :mod:`gis.demo_partition`.

Real: the district outlines and every street and community name and code.
Synthetic: all geometry below district level. The rules that make it look like a city:

* "Urbanness" (0..1) is the strongest of Gaussian falloffs around the city centre
  (二七塔, radius 11 km), the county seats (3.5 km, peak 0.7) and the development
  zone centres (5 km, peak 0.85). Seeds of street units and communities are
  denser where it is high (density 0.15..1), so cells shrink towards the centres.
* Street units named …街道 sit near the district's urban anchor, towns and
  townships (镇/乡 and the few scenic or industrial areas) around them in larger
  cells. The anchor of a core district is its point nearest the city centre; that
  of a county-level unit (and of 上街区, a satellite town) its seat.
* The street units of the three development zones get no outline of their own:
  they go to the district that contains the zone's centre, clustered around it,
  and that district becomes their parent.
* Within a street unit, communities (社区) sit near the unit's seed, villages (村)
  around them in larger cells.
* Each community is cut along a jittered lattice into unit grids whose size falls
  off with urbanness: ~25,000 m² for a 社区 in the core, ~1 km² in remote villages.

Everything is drawn from ``numpy.random.default_rng([seed, district code])``, one
stream per district, so a build restricted to some districts lays them out as the
full build does (only the vertices on their outer borders can differ).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
import shapely.ops
from pyproj import Transformer

from gis.demo_partition import claim_seeds, dissolve, lattice_seeds, merge_small, subdivide

METRIC_CRS = "EPSG:4547"  # CGCS2000 3-degree Gauss-Krueger, CM 114E

CITY_CENTRE = (113.6654, 34.7566)  # 二七塔 (Erqi Memorial Tower), lon/lat
# Development zones: street units, no outline; placed around these centres (lon/lat).
DEV_ZONES = {
    "410171": ("郑州经济技术开发区", (113.74, 34.71)),
    "410172": ("郑州高新技术产业开发区", (113.55, 34.82)),
    "410173": ("郑州航空港经济综合实验区", (113.84, 34.53)),
}
# Approximate seats (0.01°) of the units that are towns of their own rather than
# parts of the core city; the core districts use their point nearest CITY_CENTRE.
SEATS = {
    "410106": (113.30, 34.81),  # 上街区
    "410122": (113.98, 34.72),  # 中牟县
    "410181": (113.02, 34.75),  # 巩义市
    "410182": (113.38, 34.79),  # 荥阳市
    "410183": (113.39, 34.54),  # 新密市
    "410184": (113.74, 34.40),  # 新郑市
    "410185": (113.05, 34.45),  # 登封市
}

TOWN_WEIGHT = 2.5  # a town/township claims 2.5x the seed cloud of a 街道 (the density adds to that)
CORE_RADIUS_M, SEAT_RADIUS_M, ZONE_RADIUS_M = 11_000.0, 3_500.0, 5_000.0
SEAT_URBANNESS, ZONE_URBANNESS = 0.7, 0.85
MIN_DENSITY = 0.15  # seed density of street units and communities where urbanness is 0 (1 where it is 1)
# Unit grid sizes (m²) at urbanness 1 and 0; log-interpolated in between.
GRID_SIZE_COMMUNITY = (25_000.0, 90_000.0)
GRID_SIZE_VILLAGE = (60_000.0, 1_000_000.0)
GRIDS_PER_COMMUNITY = (3, 30)
GRIDS_PER_VILLAGE = (2, 30)
SMALL_CELL = 0.3  # a unit grid under 0.3x its community's target size is merged into a neighbour
LATTICE_TILT_DEG = 8.0  # Zhengzhou's streets run roughly N-S/E-W


@dataclass
class Level:
    """One level of the partition, in the metric CRS."""

    code: list[str]
    name: list[str]
    parent_code: list[str | None]
    kind: list[str]  # 'regular' or 'special'
    geometry: np.ndarray
    urban: np.ndarray  # bool: 街道 / 社区 / a unit grid of a 社区


@lru_cache(maxsize=1)
def _lonlat_to_metric():
    return Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)  # 0.1 s to build: build once


def _to_metric(lonlat):
    return np.array(_lonlat_to_metric().transform(*lonlat))


def street_rank(name: str) -> int:
    """0 for a 街道, 1 a 镇, 3 a 乡, 2 anything else (scenic area, industrial cluster, new area)."""
    if name.endswith("街道"):
        return 0
    if name.endswith("镇"):
        return 1
    return 3 if name.endswith("乡") else 2


def urbanness(xy: np.ndarray, centres) -> np.ndarray:
    """How urban a place is, 0..1: the strongest of the Gaussian falloffs around the city centre,
    the county seats and the zone centres."""
    out = np.zeros(len(xy))
    for (cx, cy), radius, peak in centres:
        d2 = (xy[:, 0] - cx) ** 2 + (xy[:, 1] - cy) ** 2
        out = np.maximum(out, peak * np.exp(-d2 / radius**2))
    return out


def _interp_size(bounds, u):
    urban, rural = bounds
    return np.exp(np.log(rural) + u * (np.log(urban) - np.log(rural)))


def _ordered(units, rng):
    """Units in placement order: by rank, ties in random order (so codes do not map to distance)."""
    keys = rng.permutation(len(units))
    return [u for _, u in sorted(zip(keys, units), key=lambda t: (t[1][0], t[0]))]


@dataclass
class _Placed:
    """Seeds of one level: who they are, where, and under which parent (an index)."""

    code: list[str]
    name: list[str]
    parent: np.ndarray
    seed: np.ndarray


def _falloffs():
    # Urbanness is a fixed function of place, whichever districts are being built.
    falloffs = [(_to_metric(CITY_CENTRE), CORE_RADIUS_M, 1.0)]
    falloffs += [(_to_metric(ll), SEAT_RADIUS_M, SEAT_URBANNESS) for ll in SEATS.values()]
    falloffs += [(_to_metric(ll), ZONE_RADIUS_M, ZONE_URBANNESS) for _, ll in DEV_ZONES.values()]
    return falloffs


def zone_hosts(dcodes, dpolys) -> dict[str, str]:
    """Development zone code -> code of the district containing the zone's centre (if built)."""
    host = {}
    for zone, (_, lonlat) in DEV_ZONES.items():
        inside = shapely.contains_xy(dpolys, *_to_metric(lonlat))
        if inside.any():
            host[zone] = dcodes[int(np.argmax(inside))]
    return host


def _urban_anchor(code, poly):
    if code in SEATS:
        return _to_metric(SEATS[code])
    near = shapely.ops.nearest_points(poly, shapely.Point(_to_metric(CITY_CENTRE)))[0]
    return np.array([near.x, near.y])


def _place_streets(dcodes, dpolys, streets, rngs, density) -> _Placed:
    """Seeds of the street units: 街道 near the anchors, towns around; zone units around the zone centre."""
    host = zone_hosts(dcodes, dpolys)
    parent_of_area = {c: c for c in dcodes} | host
    by_district = {c: [] for c in dcodes}
    for code, name, area in streets:
        if area in parent_of_area:
            by_district[parent_of_area[area]].append((street_rank(name), code, name, area))
    out = _Placed([], [], [], [])
    for di, d in enumerate(dcodes):
        rng = rngs[d]
        zones = sorted({u[3] for u in by_district[d]} - {d})
        plan = []  # (anchor, weight, units), in claiming order: zone 街道, own 街道, zone towns, own towns
        for urban, weight in ((True, 1.0), (False, TOWN_WEIGHT)):
            for area, anchor in [(z, _to_metric(DEV_ZONES[z][1])) for z in zones] + [(d, _urban_anchor(d, dpolys[di]))]:
                units = [u for u in by_district[d] if u[3] == area and (u[0] == 0) == urban]
                plan.append((anchor, weight, _ordered(units, rng)))
        groups = [(anchor, len(units), weight) for anchor, weight, units in plan]
        for (anchor, _, units), xy in zip(plan, claim_seeds(dpolys[di], groups, rng, density)):
            # Nearest seeds to the lowest ranks: 镇 before 乡.
            xy = xy[np.argsort(((xy - anchor) ** 2).sum(axis=1), kind="stable")]
            for (_, code, name, _), p in zip(units, xy):
                out.code.append(code)
                out.name.append(name)
                out.parent.append(di)
                out.seed.append(p)
    return _Placed(out.code, out.name, np.array(out.parent), np.array(out.seed))


def _place_communities(placed_streets, street_cells, communities, rngs, district_of, falloffs, density) -> _Placed:
    """Seeds of the communities: 社区 near their street unit's seed, villages around."""
    sidx = {c: i for i, c in enumerate(placed_streets.code)}
    by_street = [[] for _ in placed_streets.code]
    for code, name, street in communities:
        if street in sidx:
            by_street[sidx[street]].append((0 if name.endswith("社区") else 1, code, name))
    out = _Placed([], [], [], [])
    for si, anchor in enumerate(placed_streets.seed):
        rng = rngs[district_of[si]]
        u = urbanness(anchor[None, :], falloffs)[0]
        village_weight = 10.0 * 0.4**u  # urban villages are hardly bigger than communities
        units = _ordered(by_street[si], rng)
        plan = [[x for x in units if x[0] == 0], [x for x in units if x[0] == 1]]
        groups = [(anchor, len(plan[0]), 1.0), (anchor, len(plan[1]), village_weight)]
        for members, xy in zip(plan, claim_seeds(street_cells[si], groups, rng, density)):
            for (_, code, name), p in zip(members, xy):
                out.code.append(code)
                out.name.append(name)
                out.parent.append(si)
                out.seed.append(p)
    return _Placed(out.code, out.name, np.array(out.parent), np.array(out.seed))


def _cut_unit_grids(placed, community_cells, rngs, district_of, falloffs):
    """Unit grids of every community on a lattice whose spacing follows urbanness, small leftovers merged.

    Returns
    -------
    cells, parent (community index), code, name, all sorted by code
    """
    urban = np.array([n.endswith("社区") for n in placed.name])
    u = urbanness(placed.seed, falloffs)
    area = shapely.area(community_cells)
    size = np.where(urban, _interp_size(GRID_SIZE_COMMUNITY, u), _interp_size(GRID_SIZE_VILLAGE, u))
    lo = np.where(urban, GRIDS_PER_COMMUNITY[0], GRIDS_PER_VILLAGE[0])
    hi = np.where(urban, GRIDS_PER_COMMUNITY[1], GRIDS_PER_VILLAGE[1])
    target_area = area / np.clip(np.round(area / size), lo, hi)
    seeds, parent, rowcol = [], [], []
    for ci in range(len(placed.code)):
        rng = rngs[district_of[ci]]
        angle = np.deg2rad(rng.uniform(-LATTICE_TILT_DEG, LATTICE_TILT_DEG))
        xy, rc = lattice_seeds(community_cells[ci], np.sqrt(target_area[ci]), angle, rng)
        seeds.append(xy)
        rowcol.append(rc)
        parent.append(np.full(len(xy), ci))
    seeds, parent, rowcol = np.concatenate(seeds), np.concatenate(parent), np.concatenate(rowcol)
    cells = subdivide(community_cells, seeds, parent)
    cells, alive = merge_small(cells, parent, shapely.area(cells) >= SMALL_CELL * target_area[parent])
    cells, parent, rowcol = cells[alive], parent[alive], rowcol[alive]

    # Number west->east, north->south within each community: lattice row from the north, then column.
    order = np.lexsort((rowcol[:, 1], rowcol[:, 0], parent))
    cells, parent = cells[order], parent[order]
    seq = np.arange(len(order)) - np.searchsorted(parent, parent) + 1
    if seq.max() > 999:
        raise RuntimeError("a community got more than 999 unit grids")
    code = [f"{placed.code[p]}{s:03d}" for p, s in zip(parent, seq)]
    name = [f"{placed.name[p]}第{s}网格" for p, s in zip(parent, seq)]
    return cells, parent, code, name


def build_partition(districts, streets, communities, seed: int) -> list[Level]:
    """Lay out the three synthetic levels inside the real districts.

    Parameters
    ----------
    districts : list of (code, name, Polygon)
        Level 0, in the metric CRS, a valid coverage.
    streets : list of (code, name, area_code)
        Level 1 units; ``area_code`` a district code or a development zone code.
        Units of districts not in ``districts`` (and of zones they do not host) are left out.
    communities : list of (code, name, street_code)
        Level 2 units; a name ending in 社区 is a community, anything else a village.
    seed : int

    Returns
    -------
    list of Level
        Levels 0..3; each level is a valid coverage tiling the level above, every
        cell a single polygon.
    """
    dcodes = [c for c, _, _ in districts]
    dpolys = np.array([g for _, _, g in districts])
    rngs = {c: np.random.default_rng([seed, int(c)]) for c in dcodes}
    falloffs = _falloffs()

    def density(xy):
        return MIN_DENSITY + (1.0 - MIN_DENSITY) * urbanness(xy, falloffs)

    st = _place_streets(dcodes, dpolys, streets, rngs, density)
    street_cells = subdivide(dpolys, st.seed, st.parent)
    st_district = [dcodes[p] for p in st.parent]
    co = _place_communities(st, street_cells, communities, rngs, st_district, falloffs, density)
    community_cells = subdivide(street_cells, co.seed, co.parent)
    co_district = [st_district[p] for p in co.parent]
    grid_cells, g_parent, g_code, g_name = _cut_unit_grids(co, community_cells, rngs, co_district, falloffs)

    # Every coarser level becomes the union of its unit grids: one set of faces for all.
    communities_geom = dissolve(grid_cells, g_parent, len(co.code))
    streets_geom = dissolve(communities_geom, co.parent, len(st.code))
    districts_geom = dissolve(streets_geom, st.parent, len(dcodes))
    c_urban = np.array([n.endswith("社区") for n in co.name])
    return [
        Level(dcodes, [n for _, n, _ in districts], [None] * len(dcodes), ["regular"] * len(dcodes),
              districts_geom, np.zeros(len(dcodes), bool)),
        Level(st.code, st.name, st_district, ["regular"] * len(st.code), streets_geom,
              np.array([street_rank(n) == 0 for n in st.name])),
        Level(co.code, co.name, [st.code[p] for p in co.parent], ["regular"] * len(co.code), communities_geom,
              c_urban),
        Level(g_code, g_name, [co.code[p] for p in g_parent], ["regular"] * len(g_code), grid_cells,
              c_urban[g_parent]),
    ]
