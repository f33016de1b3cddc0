"""Coordinate reference systems: parsing CRS specs and moving coordinates between them.

GridMap stores EPSG:4326. Input arrives as WGS84/CGCS2000 (GPS, national datum), as projected
CGCS2000 Gauss-Krüger zones (survey data), or in the obfuscated datums of Chinese web maps:
GCJ-02 (AMap/Gaode, Tencent) and BD-09 (Baidu). PROJ knows neither of the latter, so they are
implemented here from their public formulas; everything with an EPSG code goes through pyproj.
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import pyproj
import shapely

from gis.errors import BadInput

__all__ = ["CrsSpec", "WGS84", "parse_crs", "to_wgs84", "from_wgs84", "transform_geometries",
           "metric_crs_for", "area_m2"]

_ACCEPTED = ('"EPSG:<code>" or a bare EPSG code (e.g. "EPSG:4547", "4326"), "wgs84", '
             '"cgcs2000", "gcj02" or "bd09"')
_ALIASES = {"wgs84": 4326, "cgcs2000": 4490}
_EPSG_TEXT = re.compile(r"(?:epsg:)?(\d{1,6})")

# GCJ-02 parameters: the Krasovsky 1940 ellipsoid the published formulas are written for.
_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
_TOLERANCE_DEG = 1e-9  # ~0.1 mm: far below anything a phone SDK reports
_MAX_ITER = 30

_ALBERS_CHINA = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +ellps=GRS80 +units=m +no_defs"


@dataclass(frozen=True)
class CrsSpec:
    """A parsed CRS.

    Attributes
    ----------
    name : str
        ``"EPSG:<code>"``, ``"gcj02"`` or ``"bd09"``.
    kind : str
        ``"epsg"``, ``"gcj02"`` or ``"bd09"``.
    epsg : int or None
        None for GCJ-02 and BD-09.
    """

    name: str
    kind: str
    epsg: int | None = None

    @property
    def is_wgs84_like(self) -> bool:
        """True for EPSG:4326 and EPSG:4490: CGCS2000 agrees with WGS84 to centimetres."""
        return self.epsg in (4326, 4490)

    @property
    def is_geographic(self) -> bool:
        """True if coordinates are longitude/latitude degrees (GCJ-02 and BD-09 are)."""
        return self.epsg is None or _pyproj_crs(self.epsg).is_geographic


WGS84 = CrsSpec("EPSG:4326", "epsg", 4326)  # what GridMap stores


@functools.lru_cache(maxsize=256)
def _pyproj_crs(code: int) -> pyproj.CRS:
    return pyproj.CRS.from_epsg(code)


def _epsg_spec(code: int) -> CrsSpec:
    try:
        crs = _pyproj_crs(code)
    except pyproj.exceptions.CRSError:
        raise BadInput(f"EPSG:{code} is not a CRS known to PROJ; use {_ACCEPTED}") from None
    if not (crs.is_geographic or crs.is_projected):
        raise BadInput(f"EPSG:{code} ({crs.name}) is not a horizontal CRS; use {_ACCEPTED}")
    return CrsSpec(f"EPSG:{code}", "epsg", code)


def parse_crs(spec) -> CrsSpec:
    """Parse a CRS spec into a :class:`CrsSpec`.

    Parameters
    ----------
    spec : str, int, pyproj.CRS or CrsSpec
        Text (case-insensitive): ``"EPSG:4547"``, ``"4326"``, ``"wgs84"``, ``"cgcs2000"``,
        ``"gcj02"`` or ``"bd09"``; or an EPSG code, a pyproj CRS that has one, or a CrsSpec.

    Raises
    ------
    BadInput
        For anything else, including EPSG codes PROJ does not know and non-horizontal CRSs.
    """
    if isinstance(spec, CrsSpec):
        return spec
    if isinstance(spec, pyproj.CRS):
        code = spec.to_epsg()
        if code is None:
            raise BadInput(f"CRS {spec.name!r} has no EPSG code; use {_ACCEPTED}")
        return _epsg_spec(code)
    if isinstance(spec, int) and not isinstance(spec, bool):  # e.g. an SRID read from PostGIS
        return _epsg_spec(spec)
    if not isinstance(spec, str):
        raise BadInput(f"CRS must be text, got {type(spec).__name__}; use {_ACCEPTED}")
    text = spec.strip().lower()
    if text in ("gcj02", "bd09"):
        return CrsSpec(text, text)
    if text in _ALIASES:
        return _epsg_spec(_ALIASES[text])
    match = _EPSG_TEXT.fullmatch(text)
    if match:
        return _epsg_spec(int(match.group(1)))
    raise BadInput(f"unknown CRS {spec!r}; use {_ACCEPTED}")


# --- GCJ-02 and BD-09 (all functions take and return 1-D float arrays) ---------------------

def _in_china(lon, lat):
    # The reference implementations only shift inside this rough box; matching them keeps
    # coordinates abroad untouched and our output equal to theirs.
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _gcj_offset(lon, lat):
    """GCJ-02 minus WGS84, in degrees, at WGS84 (lon, lat)."""
    x, y = lon - 105.0, lat - 35.0
    shared = 20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)
    north = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
             + (shared + 20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)
                + 160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0)) * 2.0 / 3.0)
    east = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (shared + 20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)
               + 150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0)) * 2.0 / 3.0)
    # north/east are metres; turn them into degrees with the Krasovsky meridian and
    # prime-vertical radii of curvature.
    phi = np.radians(lat)
    w = 1.0 - _EE * np.sin(phi) ** 2
    meridian = _A * (1.0 - _EE) / (w * np.sqrt(w))
    normal = _A / np.sqrt(w)
    return np.degrees(east / (normal * np.cos(phi))), np.degrees(north / meridian)


def _wgs_to_gcj(lon, lat):
    inside = _in_china(lon, lat)
    lon, lat = lon.copy(), lat.copy()
    dlon, dlat = _gcj_offset(lon[inside], lat[inside])  # only where used: no warnings for NaN/inf
    lon[inside] += dlon
    lat[inside] += dlat
    return lon, lat


def _gcj_to_bd(lon, lat):
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd_to_gcj_approx(lon, lat):
    # The usual closed form; not an exact inverse of _gcj_to_bd, only a starting point.
    x, y = lon - 0.0065, lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _wgs_to_bd(lon, lat):
    inside = _in_china(lon, lat)
    lon, lat = lon.copy(), lat.copy()
    lon[inside], lat[inside] = _gcj_to_bd(*_wgs_to_gcj(lon[inside], lat[inside]))
    return lon, lat


def _invert(forward, target_x, target_y, x, y):
    """Solve forward(x, y) == target by fixed-point iteration from (x, y).

    The forward maps are the identity plus an offset whose slope is of order 1e-3 (a few
    hundred metres per degree), so each step shrinks the error about a thousandfold and
    4-5 steps reach the tolerance.
    """
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        dx, dy = fx - target_x, fy - target_y
        x, y = x - dx, y - dy
        # written as "not >" so that NaN coordinates count as converged
        if not ((np.abs(dx) > _TOLERANCE_DEG).any() or (np.abs(dy) > _TOLERANCE_DEG).any()):
            break
    return x, y


# errstate: a NaN or infinite input should come out NaN/inf, not raise a RuntimeWarning.
@np.errstate(invalid="ignore")
def _gcj_to_wgs(lon, lat):
    return _invert(_wgs_to_gcj, lon, lat, lon, lat)


@np.errstate(invalid="ignore")
def _bd_to_wgs(lon, lat):
    return _invert(_wgs_to_bd, lon, lat, *_bd_to_gcj_approx(lon, lat))


# --- plumbing -----------------------------------------------------------------------------

def _identity(x, y):
    return x.copy(), y.copy()


@functools.lru_cache(maxsize=64)
def _transformer(src: int, dst: int) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(_pyproj_crs(src), _pyproj_crs(dst), always_xy=True)


def _pyproj_fn(src: int, dst: int):
    return _transformer(src, dst).transform  # returns new float arrays for array input


_TO_WGS = {"gcj02": _gcj_to_wgs, "bd09": _bd_to_wgs}
_FROM_WGS = {"gcj02": _wgs_to_gcj, "bd09": _wgs_to_bd}


def _converter(src: CrsSpec, dst: CrsSpec):
    """A function mapping 1-D coordinate arrays from src to dst."""
    if src == dst or (src.is_wgs84_like and dst.is_wgs84_like):
        return _identity
    if src.kind == dst.kind == "epsg":
        return _pyproj_fn(src.epsg, dst.epsg)
    if src.kind == "epsg":
        to_wgs = _identity if src.is_wgs84_like else _pyproj_fn(src.epsg, 4326)
    else:
        to_wgs = _TO_WGS[src.kind]
    if dst.kind == "epsg":
        from_wgs = _identity if dst.is_wgs84_like else _pyproj_fn(4326, dst.epsg)
    else:
        from_wgs = _FROM_WGS[dst.kind]
    return lambda x, y: from_wgs(*to_wgs(x, y))


def _convert(x, y, src, dst):
    x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    shape = x.shape
    out_x, out_y = _converter(parse_crs(src), parse_crs(dst))(x.ravel(), y.ravel())
    if not shape:
        return float(out_x[0]), float(out_y[0])
    return out_x.reshape(shape), out_y.reshape(shape)


def to_wgs84(x, y, crs):
    """Convert coordinates in ``crs`` to WGS84 longitude/latitude.

    Parameters
    ----------
    x, y : float or array_like
        Longitude/latitude for geographic CRSs, easting/northing otherwise.
    crs : str or CrsSpec
        Anything :func:`parse_crs` accepts.

    Returns
    -------
    lon, lat : floats for scalar input, else arrays of the broadcast input shape.
    """
    return _convert(x, y, crs, WGS84)


def from_wgs84(lon, lat, crs):
    """Convert WGS84 longitude/latitude to ``crs``; the inverse of :func:`to_wgs84`."""
    return _convert(lon, lat, WGS84, crs)


def transform_geometries(geoms, src, dst="EPSG:4326"):
    """Transform a shapely geometry, or an array of them, from ``src`` to ``dst``.

    All coordinates go through one vectorised call; Z values are kept as they are and
    missing geometries (None) stay None.
    """
    fn = _converter(parse_crs(src), parse_crs(dst))

    def apply(x, y, z=None):
        x, y = fn(x, y)
        return (x, y) if z is None else (x, y, z)

    return shapely.transform(geoms, apply, include_z=None, interleaved=False)


def metric_crs_for(lon: float, lat: float) -> str:
    """The CGCS2000 3-degree Gauss-Krüger CRS whose central meridian is nearest to ``lon``.

    Returns an ``"EPSG:4534"`` (CM 75°E) … ``"EPSG:4554"`` (CM 135°E) code, in metres.

    Raises
    ------
    BadInput
        If the point is not within the zones' coverage (73.5°E–136.5°E), where a
        Gauss-Krüger zone would distort lengths badly.
    """
    lon, lat = float(lon), float(lat)
    if not (73.5 <= lon <= 136.5 and -90.0 <= lat <= 90.0):
        raise BadInput(f"({lon}, {lat}) is outside the CGCS2000 Gauss-Krüger zones (73.5–136.5°E)")
    central = min(max(3 * math.floor(lon / 3.0 + 0.5), 75), 135)
    return f"EPSG:{4534 + (central - 75) // 3}"


@functools.lru_cache(maxsize=1)
def _albers_transformer() -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(_pyproj_crs(4326), pyproj.CRS(_ALBERS_CHINA), always_xy=True)


def area_m2(geoms):
    """Areas in m² of EPSG:4326 geometries, via an Albers equal-area projection for China.

    Edges are taken as straight in the projection; for grid cells (a few km) this differs
    from geodesic edges by far less than 0.1 %.

    Returns
    -------
    float or ndarray of float, like the input (NaN for missing geometries).
    """
    transformer = _albers_transformer()
    projected = shapely.transform(geoms, lambda x, y: transformer.transform(x, y), interleaved=False)
    return shapely.area(projected)
