"""Edge matching: the fast first pass of :mod:`gis.partition_checks`.

A partition whose cells share their borders vertex for vertex (what a coverage editor, PostGIS topology or
``shapely.coverage_*`` produce) can be checked without overlaying polygons: every edge segment inside the
covered area belongs to exactly two cells, once with the cell on its left and once on its right. Segments
that break this rule are the few places worth an expensive look. The tables here are plain numpy arrays, so
the edges of 100,000 cells are matched in a fraction of a second.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

__all__ = ["Segments", "segments", "match", "outside_points"]

_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


@dataclass
class Segments:
    """Edge segments of polygons, each oriented so that ``(x0, y0) < (x1, y1)`` lexicographically.

    Attributes
    ----------
    xy : ndarray (n, 4)
        x0, y0, x1, y1.
    owner : ndarray of int
        Index of the polygon (cell) each segment belongs to.
    side : ndarray of int8
        +1 if the polygon lies left of the oriented segment, -1 if right.
    key : ndarray of uint64
        A hash of ``xy``: equal segments have equal keys.
    """

    xy: np.ndarray
    owner: np.ndarray
    side: np.ndarray
    key: np.ndarray

    def take(self, mask):
        return Segments(self.xy[mask], self.owner[mask], self.side[mask], self.key[mask])

    @staticmethod
    def concat(parts):
        return Segments(np.concatenate([p.xy for p in parts]), np.concatenate([p.owner for p in parts]),
                        np.concatenate([p.side for p in parts]), np.concatenate([p.key for p in parts]))


def _hash(words):
    """A 64-bit hash of each row of an (n, k) uint64 array (splitmix-style mixing)."""
    h = words[:, 0] * _MIX[0]
    for j in range(1, words.shape[1]):
        h ^= h >> np.uint64(31)
        h = h * _MIX[1] + words[:, j]
    h ^= h >> np.uint64(29)
    return h * _MIX[2]


def segments(geoms) -> Segments:
    """The edge segments of an array of valid Polygons/MultiPolygons (None and empties are skipped).

    Repeated points give no segment; the polygon's interior side is taken from each ring's orientation
    (exterior rings have the interior on their left when counter-clockwise, holes when clockwise).
    """
    geoms = np.asarray(geoms, dtype=object)
    with np.errstate(over="ignore"):  # uint64 hashing wraps around on purpose
        kinds = shapely.get_type_id(geoms)
        if ((kinds == 3) | (kinds == -1)).all():   # the common case: no MultiPolygon to explode
            part_owner = np.flatnonzero(kinds == 3)
            parts = geoms[part_owner]
        else:
            parts, part_owner = shapely.get_parts(geoms, return_index=True)
        if len(parts) == 0:
            empty = np.zeros(0)
            return Segments(np.zeros((0, 4)), empty.astype(np.intp), empty.astype(np.int8), empty.astype(np.uint64))
        if (shapely.get_num_interior_rings(parts) == 0).all():
            # one ring per polygon (the common case): read the coordinates straight off the polygons and
            # take the orientation from the shoelace sum, rather than extracting every ring
            rings, ring_part, exterior = parts, np.arange(len(parts)), np.ones(len(parts), dtype=bool)
            ccw = None
        else:
            rings, ring_part = shapely.get_rings(parts, return_index=True)
            exterior = np.ones(len(rings), dtype=bool)
            exterior[1:] = ring_part[1:] != ring_part[:-1]   # get_rings lists a polygon's shell first
            ccw = shapely.is_ccw(rings)
        coords, ring_of = shapely.get_coordinates(rings, return_index=True)
        same = ring_of[:-1] == ring_of[1:]
        a, b, ring = coords[:-1][same], coords[1:][same], ring_of[:-1][same]
        if ccw is None:
            first = np.r_[0, np.flatnonzero(~same) + 1]     # each ring's first coordinate
            origin = coords[first][ring]                      # relative to it: no cancellation at 10^6 m
            cross = ((a[:, 0] - origin[:, 0]) * (b[:, 1] - origin[:, 1])
                     - (b[:, 0] - origin[:, 0]) * (a[:, 1] - origin[:, 1]))
            ccw = np.bincount(ring, weights=cross, minlength=len(rings)) > 0
        left = ccw == exterior
        a, b = a + 0.0, b + 0.0   # -0.0 -> 0.0, so that equal coordinates have equal bits
        swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
        real = (a != b).any(axis=1)
        p = np.where(swap[:, None], b, a)[real]
        q = np.where(swap[:, None], a, b)[real]
        xy = np.ascontiguousarray(np.hstack([p, q]))
        side = np.where(left[ring[real]] ^ swap[real], 1, -1).astype(np.int8)
        owner = part_owner[ring_part[ring[real]]]
        return Segments(xy, owner, side, _hash(xy.view(np.uint64)))


def match(seg: Segments, group=None):
    """Pair up equal segments.

    Parameters
    ----------
    seg : Segments
    group : ndarray of int, optional
        Segments only pair within the same group (e.g. the children of one parent).

    Returns
    -------
    matched : ndarray of bool
        True for a segment that has exactly one equal twin, lying on the other side of it: an edge shared
        by two neighbours. False for a lone segment (the border of the union, or a place where
        neighbours' vertices differ) and for segments in a bad run (the same edge twice on the same side,
        or three or more times: the cells overlap there).
    bad : ndarray of bool
        The segments of bad runs.
    """
    n = len(seg.key)
    matched = np.zeros(n, dtype=bool)
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return matched, bad
    key = seg.key
    if group is not None:
        with np.errstate(over="ignore"):
            key = _hash(np.c_[key, np.asarray(group).astype(np.uint64)])
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    lengths = np.diff(np.r_[starts, n])
    # pairs: the commonest run; a hash collision shows as unequal coordinates and stays unmatched
    two = starts[lengths == 2]
    i, j = order[two], order[two + 1]
    same_xy = (seg.xy[i] == seg.xy[j]).all(axis=1)
    if group is not None:
        same_xy &= np.asarray(group)[i] == np.asarray(group)[j]
    opposite = seg.side[i] != seg.side[j]
    ok = same_xy & opposite
    matched[i[ok]] = matched[j[ok]] = True
    bad[i[same_xy & ~opposite]] = bad[j[same_xy & ~opposite]] = True
    for start, length in zip(starts[lengths > 2], lengths[lengths > 2]):   # rare: several cells on one edge
        bad[order[start:start + length]] = True
    return matched, bad


def outside_points(seg: Segments, eps=1e-4):
    """Points just outside the owning polygon, off the middle of each segment (at most ``eps`` away)."""
    p, q = seg.xy[:, :2], seg.xy[:, 2:]
    d = q - p
    length = np.hypot(d[:, 0], d[:, 1])
    step = np.minimum(eps, length / 100.0) / np.where(length > 0, length, 1.0)
    # the left normal of p->q is (-dy, dx); the polygon is on the `side`, so step the other way
    normal = np.c_[-d[:, 1], d[:, 0]] * (-seg.side * step)[:, None]
    return shapely.points((p + q) / 2.0 + normal)
