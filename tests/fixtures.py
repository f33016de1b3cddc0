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
