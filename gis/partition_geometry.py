"""Width measures, overlays with a safety net and geometry clean-up, for :mod:`gis.partition_checks`.

All geometry is planar, in metres.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np
import shapely

# Erosions (buffers) are fast on ordinary pieces but can take minutes on a comb of thousands of teeth; the
# maximum inscribed circle is the other way round (a second on a 200 km sliver, milliseconds on a comb).
# Polygons with more vertices than this are measured with the circle.
_BIG = 2000

# Floating-point overlays can return garbage on near-degenerate input (a polygon with a vertex a few
# nanometres from its own edge came out "intersecting" the whole of a neighbour). Snap-rounding to a grid
# is robust but can be a thousand times slower (50,000 collinear vertices along a neighbour's edge: 10 s),
# so overlays run in floating point and are redone on this grid (metres) only where the result fails a
# sanity check. 1 µm is far below any noise.
GRID_M = 1e-6
_CHECK_WIDTH = 1e-4   # parts narrower than this (2A/P) are overlay dust: not worth checking

__all__ = ["lower_width", "upper_width", "wider_than", "widths", "shared_length", "polygonal", "as_multipolygon", "check_geometries",
           "polygon_pieces", "overlay", "plausible", "prepared", "GRID_M"]

# --- widths ------------------------------------------------------------------------------------------------
#
# The width of a polygon is the diameter of its largest inscribed circle. Two cheap bounds frame it:
# the circle lies inside, so width <= 2 * sqrt(A / pi); and every point lies within the inradius r of
# the boundary, whose inner parallel curves are never longer than the perimeter P (for a polygon with at
# most one hole), so A <= P * r, i.e. width >= 2A/P. Only pieces the bounds cannot decide need an erosion.

def lower_width(geoms):
    """2A/P: a lower bound of the width for polygons with at most one hole (NaN where it is not one)."""
    area, perimeter = shapely.area(geoms), shapely.length(geoms)
    holes = _max_holes(geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(perimeter > 0, 2.0 * area / perimeter, 0.0)
    return np.where(holes <= 1, lower, np.nan)


def upper_width(geoms):
    """2 sqrt(A / pi): an upper bound of the width."""
    return 2.0 * np.sqrt(shapely.area(geoms) / np.pi)


def _max_holes(geoms):
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype=int)
    if len(geoms) == 0:
        return out
    kinds = shapely.get_type_id(geoms)
    if ((kinds == 3) | (kinds == -1)).all():
        return np.maximum(shapely.get_num_interior_rings(geoms), 0)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if len(parts):
        holes = shapely.get_num_interior_rings(parts)
        np.maximum.at(out, owner, np.where(holes < 0, 0, holes))
    return out


def wider_than(geoms, width):
    """True where a polygon is wider than ``width`` somewhere (an erosion by width/2 leaves something).

    A piece exactly ``width`` wide is not wider: a shift of exactly 1 cm is noise whatever the last bits
    of its coordinates say (the erosion goes a millionth further).
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms), dtype=bool)
    if len(geoms) == 0:
        return out
    if width <= 0:
        return shapely.area(geoms) > 0
    width = width * (1 + 1e-6) + 1e-9
    lower = lower_width(geoms)
    out[lower > width] = True
    undecided = ~out & (upper_width(geoms) > width)
    if not undecided.any():
        return out
    big = undecided & (shapely.get_num_coordinates(geoms) > _BIG)
    small = undecided & ~big
    if small.any():
        out[small] = ~shapely.is_empty(shapely.buffer(geoms[small], -width / 2.0, quad_segs=8))
    for i in np.flatnonzero(big):
        out[i] = _mic_width(geoms[i], width / 100.0) > width
    return out


def _mic_width(geom, tolerance):
    """Diameter of the largest inscribed circle, within 2 * tolerance."""
    return 2.0 * (shapely.length(shapely.maximum_inscribed_circle(geom, tolerance)) + tolerance / 2.0)


def widths(geoms, precision=0.001):
    """Widths (diameter of the largest inscribed circle) of polygons, to about ``precision`` (relative).

    Bisects, for all polygons at once, the erosion distance that empties them, between the bounds above:
    ``shapely.maximum_inscribed_circle`` gives the same figure but is 30 times slower on the ring- and
    strip-shaped pieces that gaps and overlaps are. Polygons of many vertices use the circle (see _BIG).
    """
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    if len(geoms) == 0:
        return out
    hi = np.maximum(upper_width(geoms), 1e-12)
    lo = np.nan_to_num(lower_width(geoms), nan=0.0)
    lo = np.clip(np.where(lo > 0, lo * 0.999, hi * 1e-9), 1e-12, hi)
    big = shapely.get_num_coordinates(geoms) > _BIG
    for i in np.flatnonzero(big):
        out[i] = _mic_width(geoms[i], max(lo[i], 1e-9) * precision)
    small = np.flatnonzero(~big)
    if not len(small):
        return out
    g, lo, hi = geoms[small], lo[small], hi[small]
    spread = float(np.log(hi / lo).max())
    steps = int(np.clip(np.ceil(np.log2(max(spread, 1e-9) / np.log1p(precision))), 1, 60))
    for _ in range(steps):
        mid = np.sqrt(lo * hi)
        gone = shapely.is_empty(shapely.buffer(g, -mid / 2.0, quad_segs=8))
        hi = np.where(gone, mid, hi)
        lo = np.where(gone, lo, mid)
    out[small] = np.sqrt(lo * hi)
    return out


def shared_length(lines, geoms, eps):
    """Length of each line (or polygon boundary) lying within ``eps`` of the matching geometry.

    Used to find the neighbour that shares the longest border with a piece; the small buffer absorbs the
    last-digit differences that overlay operations leave between coordinates that should be equal.
    """
    lines = np.asarray(lines, dtype=object)
    lines = np.where(shapely.get_dimensions(lines) == 2, shapely.boundary(lines), lines)
    near = shapely.buffer(shapely.boundary(geoms), eps, quad_segs=1)
    return shapely.length(shapely.intersection(lines, near))


# --- making geometries fit for overlays ----------------------------------------------------------------------

_MAX_COORD = 1e10        # metres; anything beyond is not a projected CRS (or is garbage)
_REASON = re.compile(r"^(.*?)\[\s*(\S+)\s+(\S+)(?:\s+\S+)?\s*\]$")


def polygonal(geom):
    """The polygonal part of a geometry as one valid Polygon/MultiPolygon, or None."""
    if geom is None or geom.is_empty:
        return None
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = shapely.get_parts(geom)
    parts = parts[np.isin(shapely.get_type_id(parts), (3, 6)) & ~shapely.is_empty(parts)]
    if len(parts) == 0:
        return None
    with np.errstate(all="ignore"):
        out = parts[0] if len(parts) == 1 else shapely.union_all(parts)
    return None if out.is_empty else out


def as_multipolygon(geom, min_part_area=0.0):
    """The polygonal part of ``geom`` as a MultiPolygon — what the grid store holds — empty when there is
    none; parts of at most ``min_part_area`` are dropped."""
    poly = polygonal(geom)
    parts = np.array([], dtype=object) if poly is None else shapely.get_parts(poly)
    if min_part_area:
        parts = parts[shapely.area(parts) > min_part_area]
    return shapely.multipolygons(parts)


def _location(reason):
    """"Self-intersection[x y]" -> ("Self-intersection at (x, y)", Point)."""
    match = _REASON.match(reason)
    if not match:
        return reason, None
    try:
        x, y = float(match.group(2)), float(match.group(3))
    except ValueError:
        return match.group(1), None
    if not (np.isfinite(x) and np.isfinite(y)):
        return match.group(1), None
    return f"{match.group(1)} at ({x:,.2f}, {y:,.2f})", shapely.Point(x, y)


def check_geometries(geoms):
    """Check each geometry on its own and make a working copy fit for overlays.

    Returns
    -------
    work : ndarray of object
        A valid 2-D Polygon/MultiPolygon per entry, or None where nothing polygonal is left (missing,
        empty, a point or line, a collapsed ring, coordinates out of range). Invalid polygons are fixed
        with ``make_valid(method="structure")`` so that their overlaps and gaps are still found.
    findings : list of ``(index, type, geometry, detail, area)``
        Types ``invalid``, ``empty`` and ``multipart``; the geometry is where to look (a point for an
        invalid polygon: the location GEOS names).
    """
    raw = np.asarray(geoms, dtype=object).ravel()
    work = np.full(len(raw), None, dtype=object)
    findings = []
    is_geom = shapely.is_geometry(raw)
    garbage = np.zeros(len(raw), dtype=bool)
    if not is_geom.all():
        garbage = ~is_geom & np.array([g is not None for g in raw], dtype=bool)
        for i in np.flatnonzero(garbage):
            findings.append((i, "invalid", None, f"a {type(raw[i]).__name__}, not a geometry", None))
    g_all = np.where(is_geom, raw, None)
    missing = shapely.is_missing(g_all) | shapely.is_empty(g_all)
    for i in np.flatnonzero(missing & ~garbage):
        findings.append((i, "empty", None, "the cell has no geometry", None))
    present = np.flatnonzero(~missing)
    if len(present) == 0:
        return work, findings
    g = g_all[present]
    if shapely.has_z(g).any():
        g = shapely.force_2d(g)
    kind = shapely.get_type_id(g)
    bounds = shapely.bounds(g)
    sane = np.isfinite(bounds).all(axis=1) & (np.abs(bounds) < _MAX_COORD).all(axis=1)
    for j in np.flatnonzero(~sane):
        findings.append((present[j], "invalid", None,
                         "coordinates are not finite metres (NaN, infinite or beyond 10⁷ km)", None))
    is_polygon = sane & np.isin(kind, (3, 6))
    valid = np.zeros(len(g), dtype=bool)
    valid[is_polygon] = shapely.is_valid(g[is_polygon])
    work[present[valid]] = g[valid]
    with np.errstate(all="ignore"):
        for j in np.flatnonzero(sane & ~is_polygon):
            name = shapely.geometry.base.GEOMETRY_TYPES[kind[j]]
            findings.append((present[j], "invalid", shapely.point_on_surface(g[j]), f"a {name}, not a polygon", None))
            if kind[j] == 7:   # a collection: what is polygonal in it still takes part in the checks
                work[present[j]] = polygonal(shapely.make_valid(g[j], method="structure", keep_collapsed=False))
        broken = np.flatnonzero(is_polygon & ~valid)
        if len(broken):
            reasons = shapely.is_valid_reason(g[broken])
            fixed = shapely.make_valid(g[broken], method="structure", keep_collapsed=False)
            for j, reason, fix in zip(broken, reasons, fixed):
                text, point = _location(reason)
                work[present[j]] = polygonal(fix)
                if work[present[j]] is None:
                    text += "; nothing of it has an area"
                findings.append((present[j], "invalid", point, text, None))
    for j in np.flatnonzero(valid & (shapely.get_num_geometries(g) > 1)):
        areas = np.sort(shapely.area(shapely.get_parts(g[j])))[::-1]
        listed = ", ".join(f"{a:,.1f} m²" for a in areas[:5]) + (" …" if len(areas) > 5 else "")
        findings.append((present[j], "multipart", g[j], f"in {len(areas)} parts: {listed}", float(areas.sum())))
    return work, findings


def polygon_pieces(geoms, noise_m):
    """The polygons inside each geometry that are wider than the noise.

    Returns ``(pieces, owner)``: owner is the index into ``geoms`` of each piece.
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.array([], dtype=object), np.array([], dtype=np.intp)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if len(parts) == 0:
        return parts, owner
    keep = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
    parts, owner = parts[keep], owner[keep]
    if len(parts):
        keep = wider_than(parts, noise_m)
        parts, owner = parts[keep], owner[keep]
    return parts, owner


# --- overlays with a safety net --------------------------------------------------------------------------------

_OPS = {"intersection": shapely.intersection, "difference": shapely.difference, "union": shapely.union}


def overlay(kind, a, b):
    """``shapely.<kind>(a, b)`` (vectorised) for "intersection", "difference" or "union" of polygonal
    geometries: in floating point, redone on the :data:`GRID_M` grid where GEOS fails or the result is
    implausible (see :func:`plausible`)."""
    fn = _OPS[kind]
    a, b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    a, b = a.ravel(), b.ravel()
    with np.errstate(all="ignore"):
        try:
            out = np.asarray(fn(a, b), dtype=object).ravel()
        except shapely.errors.GEOSException:
            return np.asarray(fn(a, b, grid_size=GRID_M), dtype=object).ravel()
        bad = ~plausible(kind, a, b, out)
        if bad.any():
            out[bad] = fn(a[bad], b[bad], grid_size=GRID_M)
    return out


def plausible(kind, a, b, out):
    """Whether each overlay result is consistent with its inputs: the area within bounds, and a point inside
    each of its (not hair-thin) polygons where it must be - in both inputs for an intersection, in ``a`` and
    outside ``b`` for a difference, in either for a union."""
    area_a, area_b, area = shapely.area(a), shapely.area(b), shapely.area(out)
    area_a, area_b, area = (np.nan_to_num(x, nan=0.0) for x in (area_a, area_b, area))
    slack = 1e-9 * (area_a + area_b) + 1e-6
    if kind == "intersection":
        ok = area <= np.minimum(area_a, area_b) + slack
    elif kind == "difference":
        ok = (area <= area_a + slack) & (area >= area_a - area_b - slack)
    else:
        ok = (area <= area_a + area_b + slack) & (area >= np.maximum(area_a, area_b) - slack)
    parts, owner = shapely.get_parts(out, return_index=True)
    if len(parts):
        keep = np.isin(shapely.get_type_id(parts), (3, 6))
        keep[keep] = ~(lower_width(parts[keep]) < _CHECK_WIDTH)    # NaN (several holes): check it
        parts, owner = parts[keep], owner[keep]
    if len(parts):
        pts = shapely.point_on_surface(parts)
        in_a, in_b = shapely.covers(a[owner], pts), shapely.covers(b[owner], pts)
        if kind == "intersection":
            good = in_a & in_b
        elif kind == "difference":
            good = in_a & ~shapely.contains(b[owner], pts)
        else:
            good = in_a | in_b
        ok[owner[~good]] = False
    return ok


@contextmanager
def prepared(geoms):
    """Prepare the geometries (spatial indexes for fast predicates) for the duration of a ``with`` block,
    and drop the preparation again where it was not there before: the caller's objects are left as they came
    (preparing 100,000 cells and keeping them so would hold on to their indexes)."""
    geoms = np.asarray(geoms, dtype=object)
    fresh = geoms[~shapely.is_missing(geoms) & ~shapely.is_prepared(geoms)]
    shapely.prepare(fresh)
    try:
        yield geoms
    finally:
        shapely.destroy_prepared(fresh)
