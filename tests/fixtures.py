"""Tiny hand-drawn partitions that make the hard cases obvious.

A square "district" 410105 near Zhengzhou, cut in two streets (west, east), each in two communities
(south, north), each in two unit grids (west, east half) — every level tiles its parent exactly.
"""
import warnings

import geopandas as gpd
import pyogrio
import shapely
from shapely.geometry import LineString, Point, Polygon, box

from gis import crs

X0, Y0, X1, Y1 = 113.60, 34.70, 113.70, 34.80
XM, YM = (X0 + X1) / 2, (Y0 + Y1) / 2


def cells(level):
    """``[(code, name, parent_code, polygon)]`` of one level of the fixture partition."""
    if level == 0:
        return [("410105", "金水区", None, box(X0, Y0, X1, Y1))]
    if level == 1:
        return [("410105001", "西街道", "410105", box(X0, Y0, XM, Y1)),
                ("410105002", "东街道", "410105", box(XM, Y0, X1, Y1))]
    if level == 2:
        out = []
        for street, name, _, _ in cells(1):
            x0, _, x1, _ = street_bounds(street)
            out.append((street + "001", name + "南社区", street, box(x0, Y0, x1, YM)))
            out.append((street + "002", name + "北社区", street, box(x0, YM, x1, Y1)))
        return out
    out = []
    for community, name, _, poly in cells(2):
        x0, y0, x1, y1 = poly.bounds
        xm = (x0 + x1) / 2
        out.append((community + "001", name + "第1网格", community, box(x0, y0, xm, y1)))
        out.append((community + "002", name + "第2网格", community, box(xm, y0, x1, y1)))
    return out


def street_bounds(code):
    return (X0, Y0, XM, Y1) if code.endswith("001") else (XM, Y0, X1, Y1)


def frame(level, rows=None):
    rows = cells(level) if rows is None else rows
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows], "parent": [r[2] for r in rows]},
        geometry=[r[3] for r in rows], crs="EPSG:4326",
    )


def write(path, level, *, driver=None, to_crs=None, rows=None, layer=None, crs_label="EPSG:4326"):
    """Write one level to ``path``; ``to_crs`` moves the coordinates (EPSG:n, gcj02, bd09) and
    ``crs_label`` is what the file claims (None: no CRS at all)."""
    gdf = frame(level, rows)
    if to_crs:
        gdf = gdf.set_geometry(crs.transform_geometries(gdf.geometry.to_numpy(), "EPSG:4326", to_crs))
        if to_crs.upper().startswith("EPSG"):
            crs_label = to_crs
    gdf = gdf.set_crs(crs_label, allow_override=True)
    with warnings.catch_warnings():
        if crs_label is None:  # a file without a CRS is what the test wants
            warnings.filterwarnings("ignore", "'crs' was not provided")
        pyogrio.write_dataframe(gdf, path, driver=driver, layer=layer)
    return path


# Crosses itself at ((X0 + XM) / 2, YM).
BOW_TIE = Polygon([(X0, Y0), (XM, Y1), (XM, Y0), (X0, Y1), (X0, Y0)])
POINT = Point(XM, YM)
LINE = LineString([(X0, Y0), (X1, Y1)])


def geometry_area_m2(geom):
    return float(crs.area_m2(shapely.multipolygons([geom]) if geom.geom_type == "Polygon" else geom))


# --- metric partitions for the partition checks -------------------------------------------------------------
# Two 200 m communities side by side (level 2) near (500000, 3800000) in a Gauss-Krüger zone, each cut into
# four 100 m unit grids (level 3) numbered west→east, north→south. Each defect below changes a copy.

import numpy as np  # noqa: E402  (appended section)

from gis.partition_checks import Cells  # noqa: E402

MX, MY = 500_000.0, 3_800_000.0
M_STREET = "410105001"
M_COMMUNITIES = ("410105001001", "410105001002")


def metric_parents():
    """The two communities, level 2."""
    geoms = [box(MX, MY, MX + 200, MY + 200), box(MX + 200, MY, MX + 400, MY + 200)]
    return Cells(np.array(M_COMMUNITIES, dtype=object), np.array(geoms, dtype=object), 2,
                 np.array([M_STREET] * 2, dtype=object))


def metric_children():
    """Eight 100 m unit grids, level 3: ``<community>001`` NW, ``002`` NE, ``003`` SW, ``004`` SE."""
    codes, geoms, parents = [], [], []
    for k, community in enumerate(M_COMMUNITIES):
        x0 = MX + 200 * k
        for seq, (dx, dy) in enumerate([(0, 100), (100, 100), (0, 0), (100, 0)], start=1):
            codes.append(f"{community}{seq:03d}")
            geoms.append(box(x0 + dx, MY + dy, x0 + dx + 100, MY + dy + 100))
            parents.append(community)
    return Cells(np.array(codes, dtype=object), np.array(geoms, dtype=object), 3, np.array(parents, dtype=object))


def metric_geom(code):
    """The clean geometry of one unit grid of :func:`metric_children`."""
    cells = metric_children()
    return cells.geoms[list(cells.codes).index(code)]


def with_cells(cells, replace=None, add=(), drop=()):
    """A copy of ``cells`` with geometries replaced ({code: geom}), cells added ([(code, geom, parent)])
    and cells dropped (codes)."""
    replace = replace or {}
    rows = [(c, replace.get(c, g), p) for c, g, p in zip(cells.codes, cells.geoms, cells.parent_codes)
            if c not in drop]
    rows += list(add)
    geoms = np.empty(len(rows), dtype=object)
    geoms[:] = [r[1] for r in rows]
    return Cells(np.array([r[0] for r in rows], dtype=object), geoms, cells.level,
                 np.array([r[2] for r in rows], dtype=object))


# A = the NW grid of the west community, B its east neighbour (same parent), C the grid south of A,
# E the NW grid of the east community (B's east neighbour across the community border).
A, B, C, D = (f"{M_COMMUNITIES[0]}{s:03d}" for s in (1, 2, 3, 4))
E = f"{M_COMMUNITIES[1]}001"


def point_gap():
    """A 5 cm square notch cut from A's south-east corner, where A, B, C and D meet: a real gap."""
    notch = box(MX + 99.95, MY + 100, MX + 100, MY + 100.05)
    return with_cells(metric_children(), {A: metric_geom(A).difference(notch)})


def shifted(dx):
    """A moved ``dx`` metres east: an overlap with B and a gap towards the community's west edge."""
    return with_cells(metric_children(), {A: shapely.affinity.translate(metric_geom(A), xoff=dx)})


def gap_2m():
    """A's east edge pulled 2 m west: a 2 m × 100 m gap between A and B."""
    return with_cells(metric_children(), {A: box(MX, MY + 100, MX + 98, MY + 200)})


def poke_5m():
    """A bump of A, 5 m deep and 20 m long, into B: a 100 m² overlap."""
    bump = box(MX + 100, MY + 140, MX + 105, MY + 160)
    return with_cells(metric_children(), {A: metric_geom(A).union(bump)})


# Crosses itself at (MX + 50, MY + 150): the outline of A drawn as a bow-tie.
M_BOW_TIE = Polygon([(MX, MY + 100), (MX + 100, MY + 200), (MX + 100, MY + 100), (MX, MY + 200), (MX, MY + 100)])


def two_part():
    """A and B in two parts each: a 10 m wide strip across the middle of A is given to B (far from B's
    own square), so A is left with two halves."""
    west, east = box(MX, MY + 100, MX + 45, MY + 200), box(MX + 55, MY + 100, MX + 100, MY + 200)
    strip = box(MX + 45, MY + 100, MX + 55, MY + 200)
    return with_cells(metric_children(), {A: shapely.MultiPolygon([west, east]), B: metric_geom(B).union(strip)})


def sliver_cell():
    """A 0.5 m wide strip cut off A's west side as a cell of its own (50 m², 0.5 m wide)."""
    strip = box(MX, MY + 100, MX + 0.5, MY + 200)
    return with_cells(metric_children(), {A: box(MX + 0.5, MY + 100, MX + 100, MY + 200)},
                      add=[(f"{M_COMMUNITIES[0]}005", strip, M_COMMUNITIES[0])])


def spill_3m():
    """B stretched 3 m east over the community border into E: a 300 m² spill, and an overlap with E."""
    return with_cells(metric_children(), {B: box(MX + 100, MY + 100, MX + 203, MY + 200)})
