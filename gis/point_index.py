"""Exact point location among polygons: which polygons cover each of millions of points.

The batch routing engine. :class:`PointIndex` answers, for every point, the polygons that cover it with
the same answers as PostGIS ``ST_Covers(polygon, point)``, whose point-in-polygon test is a winding
number over the ring segments with an exact zero test for "on the boundary":

* for a ring and a point P, walk its segments (x1, y1) -> (x2, y2), skipping zero-length ones;
  ``side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)`` in float64, in exactly this order;
* ``side == 0`` with P inside the segment's bounding box (inclusive): P is ON the ring;
* otherwise ``y1 <= py < y2 and side > 0`` adds one to the winding number, ``y2 <= py < y1 and
  side < 0`` takes one off; a ring holds P strictly when the winding number is not zero;
* a polygon covers P when P is on its exterior ring, or inside it and then, hole by hole in order, the
  first hole that is not "outside" decides: P strictly inside it is not covered, P on its ring is
  covered (on the boundary); a MultiPolygon covers P when one of its polygons does.

The answer is per *label*: several polygons may stand for one label (the pieces of a cell cut by
``ST_Subdivide``) and labels are ranked (lower rank wins a tie). A label's ``boundary`` flag is True iff
it covers P but none of its polygons holds P strictly inside.

How it is fast
--------------
A uniform grid of buckets (about 8 per segment) covers the layer. Walking every segment row by row marks
the buckets it passes through, conservatively: with a margin far above rounding errors and far below a
bucket. A bucket no segment of polygon ``p`` touches is wholly inside or wholly outside ``p``, so its
status for ``p`` is computed once, at build time, from the bucket's centre with the exact test. Buckets
that no segment touches and that at most one label covers keep that label in one int32, so most points
are answered with one lookup. Every other bucket gets a self-contained block: in rank order, the labels
covering it whole and, for each polygon whose boundary passes through it, that polygon's segments in the
bucket's grid row (minus those wholly to the west, which cannot matter), so testing a point reads a few
consecutive cache lines and runs PostGIS's formula on a handful of segments.

Batches of many points are first put in order of tiles of 16 x 16 buckets (a counting sort), so that the
index is read in cache-sized pieces; the kernels run in parallel over points (numba ``prange``).

``nearest`` searches the buckets in square rings around the point: a polygon's boundary only passes
through buckets whose block lists it, so the rings stop as soon as they are farther than the best
distance found (or than the maximum distance).

Numba compiles the kernels on first use (about 15 s) and caches them beside this module; later
processes load them in a fraction of a second.
"""
from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np
import shapely
from numba import njit, prange

from gis.errors import BadInput

__all__ = ["PointIndex", "Located", "EARTH_RADIUS_M"]

EARTH_RADIUS_M = 6371008.8

# Status of a point against one polygon (the order matters: a label keeps the highest of its pieces).
_OUTSIDE, _BOUNDARY, _INSIDE = 0, 1, 2

# Grid resolution: about this many buckets per segment, within these limits. Finer buckets leave fewer
# points needing an exact test but cost memory and build time. On a city's 25,708 unit grids (155,000
# segments) 8 per segment gives 1.2 million buckets of which a fifth need a block, 65 MB in all, and
# locates a million random points in about 70 ms on two cores (4 per segment: 47 MB, about 10% slower).
BUCKETS_PER_SEGMENT = 8.0
MAX_BUCKETS = 1 << 24
MIN_BUCKETS = 64
# The build lists, per bucket, every polygon whose bounding box holds it (a city grid: about 4 million
# pairs); layers of large polygons piled on one another are refused beyond this (1 GB of int32).
MAX_ROOM = 1 << 28
# Batches of at least TILE_MIN_POINTS points are answered tile by tile (2**TILE_SHIFT buckets square):
# in random order they would miss the cache at nearly every step (1M random points on two cores: 83 ms
# unsorted, 64 ms sorted, the sort included).
TILE_SHIFT = 4
TILE_MIN_POINTS = 4096

# Numba's "workqueue" threading layer (its fallback when neither OpenMP nor TBB is there) must not be
# entered by two threads at once: it aborts the process. The web app serves requests from several
# threads, so the parallel kernels take turns (each uses every core anyway).
_KERNEL_LOCK = threading.Lock()
# Below this many points the kernels run on the calling thread alone: handing one point to the thread pool
# costs more than answering it, and the pool's threads spin while they wait. A web worker routing one
# report beside other busy processes: 1.6 ms of CPU per point with the pool, 0.26 ms without (measured).
PARALLEL_MIN_POINTS = 1024



@contextmanager
def _kernels(n):
    """Hold _KERNEL_LOCK for a kernel call on n points, on this thread alone below PARALLEL_MIN_POINTS."""
    with _KERNEL_LOCK:
        if n >= PARALLEL_MIN_POINTS:
            yield
            return
        threads = numba.get_num_threads()
        numba.set_num_threads(1)  # for this thread's launches only
        try:
            yield
        finally:
            numba.set_num_threads(threads)


_NO_I64 = np.empty(0, np.int64)
_NO_I32 = np.empty(0, np.int32)
_NO_BOOL = np.empty(0, np.bool_)

_POLYGON, _MULTIPOLYGON = 3, 6
_TYPE_NAMES = {-1: "a missing geometry (None)", 0: "a Point", 1: "a LineString", 2: "a LinearRing",
               4: "a MultiPoint", 5: "a MultiLineString", 7: "a GeometryCollection"}


@dataclass(frozen=True, eq=False)
class Located:
    """The answer of :meth:`PointIndex.locate`, one entry per point.

    ``label``: the covering label with the lowest rank, -1 if none covers (int64);
    ``count``: how many distinct labels cover the point (int32);
    ``boundary``: the chosen label covers the point only on boundaries (no polygon of that label holds
    it strictly inside) (bool).
    """

    label: np.ndarray
    count: np.ndarray
    boundary: np.ndarray

    def __len__(self):
        return len(self.label)


# --- numba kernels -------------------------------------------------------------------------------------
#
# Every bucket index is computed by the one formula ``int((v - origin) * inverse_size)`` (or its clamped
# variant at build time): it is monotone in v, which is what makes the conservative marking sound.
#
# Layout. ``codes[b]`` (int32 per bucket): >= 0 the key of the one label covering the whole bucket, -1
# nothing, <= -2 a block of ``blocks`` (float64) at offset o = -2 - code, self-contained so that a point
# reads a few consecutive cache lines: blocks[o] = number of entries, then per entry, in rank order,
# (label key, n) followed by n segments (x1, y1, x2, y2, ring) of that polygon in the bucket's grid row,
# in ring order (ring 0 the exterior); n = -1 when the polygon covers the bucket whole. Segments wholly
# to the west of the bucket are left out (they cannot matter to its points), and so are polygons left
# with none. At build time ``bands`` holds each polygon's segments per grid row (the same rows of 5).
#
# Why that is exact. (1) A segment whose y-range misses ``py`` neither holds P nor changes the winding
# number (by the formula's own conditions), so only P's grid row matters. (2) A segment wholly west of P
# does neither: P is not in its box, and for an upward one (x2 - x1) * (py - y1) <= (px - x1) * (y2 - y1)
# also holds for the rounded operands and products (rounding is monotone), so side <= 0 (symmetrically
# for a downward one). (3) For a point farther than eps from every segment of polygon p, the rounded
# formula gives the true winding number (|side| is at least eps times the segment's height, far above
# its rounding error), so p's status is the same all over a bucket that no segment of p comes within eps
# of, and equal to the status of its centre.
#
# The hot helper that takes an array is compiled without reference counting (``_nrt=False``): numba would
# otherwise increment and decrement (atomically) the count of the array at every call, which made the
# exact test several times slower and stopped two threads from scaling.

@njit(cache=True)
def _clamped_index(v, v0, inv, n):
    f = (v - v0) * inv
    if f < 0.0:
        return 0
    if f >= n:
        return n - 1
    return int(f)


@njit(cache=True)
def _row_columns(x1, y1, x2, y2, r, gx0, gy0, h, inv_w, ncols, eps):
    """First and last column of grid row ``r`` that the segment passes through (margin ``eps``)."""
    ylo = min(y1, y2)
    yhi = max(y1, y2)
    xlo = min(x1, x2)
    xhi = max(x1, x2)
    ya = max(gy0 + r * h - eps, ylo)
    yb = min(gy0 + (r + 1) * h + eps, yhi)
    if y1 == y2 or ya > yb:
        xa = xlo
        xb = xhi
    else:
        slope = (x2 - x1) / (y2 - y1)
        u = x1 + (ya - y1) * slope
        v = x1 + (yb - y1) * slope
        # clamping is monotone, so xa <= xb still holds
        xa = min(max(min(u, v), xlo), xhi)
        xb = max(min(max(u, v), xhi), xlo)
    return _clamped_index(xa - eps, gx0, inv_w, ncols), _clamped_index(xb + eps, gx0, inv_w, ncols)


@njit(cache=True, _nrt=False)
def _status(px, py, q, n, seg):
    """PostGIS's test of P against one polygon, given the polygon's segments in P's grid row
    (``seg[q + 5 * i: q + 5 * i + 5]`` for i < n, as x1, y1, x2, y2, ring).

    Every segment is evaluated with PostGIS's formula, without branches (segments whose y-range misses
    ``py`` contribute nothing by the formula itself). A ring's verdict is taken when the next ring
    starts, in the order PostGIS takes them: the exterior first (on it: boundary; winding number 0:
    outside), then each hole (on it: boundary; inside it: outside). A ring with no segment in the row
    has winding number 0. Returns _OUTSIDE, _BOUNDARY or _INSIDE.
    """
    if n <= 0 or seg[q + 4] != 0.0:          # no exterior segment in this row: outside the exterior
        return _OUTSIDE
    cur = 0.0
    wn = 0
    on = False
    for j in range(q, q + 5 * n, 5):
        ring = seg[j + 4]
        if ring != cur:
            if on:
                return _BOUNDARY
            if cur == 0.0:
                if wn == 0:
                    return _OUTSIDE
            elif wn != 0:                     # strictly inside a hole
                return _OUTSIDE
            cur = ring
            wn = 0
        x1 = seg[j]
        y1 = seg[j + 1]
        x2 = seg[j + 2]
        y2 = seg[j + 3]
        side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
        on |= ((side == 0.0) & (min(x1, x2) <= px) & (px <= max(x1, x2))
               & (min(y1, y2) <= py) & (py <= max(y1, y2)))
        wn += (np.int64((y1 <= py) & (py < y2) & (side > 0.0))
               - np.int64((y2 <= py) & (py < y1) & (side < 0.0)))
    if on:
        return _BOUNDARY
    if cur == 0.0:
        return _INSIDE if wn != 0 else _OUTSIDE
    return _OUTSIDE if wn != 0 else _INSIDE


@njit(cache=True, parallel=True)
def _tile_order(x, y, grid, shift, n_slices):
    """The points ordered by tiles of 2**shift x 2**shift buckets (a counting sort, one slice of the
    points per thread): (order, x, y in that order), so that the queries walk the index in cache-sized
    pieces instead of jumping all over it."""
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    n = x.shape[0]
    ntc = (ncols >> shift) + 1
    n_tiles = ((nrows >> shift) + 1) * ntc + 1
    tile = np.empty(n, np.int32)
    start = np.zeros((n_slices, n_tiles), np.int64)
    for sl in prange(n_slices):
        for i in range(sl * n // n_slices, (sl + 1) * n // n_slices):
            fc = (x[i] - gx0) * inv_w
            fr = (y[i] - gy0) * inv_h
            t = n_tiles - 1                   # outside the grid (and NaN)
            if fc >= 0.0 and fc < ncols and fr >= 0.0 and fr < nrows:
                t = (int(fr) >> shift) * ntc + (int(fc) >> shift)
            tile[i] = t
            start[sl, t] += 1
    total = 0
    for t in range(n_tiles):
        for sl in range(n_slices):
            c = start[sl, t]
            start[sl, t] = total
            total += c
    perm = np.empty(n, np.int64)
    xs = np.empty(n, np.float64)
    ys = np.empty(n, np.float64)
    for sl in prange(n_slices):
        for i in range(sl * n // n_slices, (sl + 1) * n // n_slices):
            t = tile[i]
            j = start[sl, t]
            perm[j] = i
            xs[j] = x[i]
            ys[j] = y[i]
            start[sl, t] = j + 1
    return perm, xs, ys


@njit(cache=True, parallel=True)
def _query_kernel(xs, ys, perm, mode, index, grid, key_label, out_label, out_count, out_bnd, offsets, pair_key,
                  pair_bnd):
    """Point ii is (xs[ii], ys[ii]) and answers for perm[ii]. mode 0: locate into out_*; mode 1: number
    of covering labels into offsets; mode 2: the covering (key, boundary) pairs from offsets[i] on."""
    codes, blocks = index
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    for ii in prange(xs.shape[0]):
        i = perm[ii]
        px = xs[ii]
        py = ys[ii]
        first = -1
        first_bnd = False
        count = 0
        pos = offsets[i] if mode == 2 else 0
        fc = (px - gx0) * inv_w
        fr = (py - gy0) * inv_h
        if fc >= 0.0 and fc < ncols and fr >= 0.0 and fr < nrows and math.isfinite(px) and math.isfinite(py):
            code = codes[int(fr) * ncols + int(fc)]
            if code >= 0:
                first = code
                count = 1
                if mode == 2:
                    pair_key[pos] = code
                    pair_bnd[pos] = False
            elif code <= -2:
                o = -2 - code
                m = int(blocks[o])
                q = o + 1
                cur_key = -1
                cur = _OUTSIDE
                for e in range(m + 1):
                    # the pieces of one label are next to each other: close a label when the key changes
                    k = int(blocks[q]) if e < m else -2
                    if k != cur_key:
                        if cur != _OUTSIDE:
                            if first < 0:
                                first = cur_key
                                first_bnd = cur == _BOUNDARY
                            if mode == 2:
                                pair_key[pos + count] = cur_key
                                pair_bnd[pos + count] = cur == _BOUNDARY
                            count += 1
                        if e == m:
                            break
                        cur_key = k
                        cur = _OUTSIDE
                    n = int(blocks[q + 1])
                    q += 2
                    if cur != _INSIDE:
                        st = _INSIDE if n < 0 else _status(px, py, q, n, blocks)
                        if st > cur:
                            cur = st
                    if n > 0:
                        q += 5 * n
        if mode == 0:
            out_label[i] = key_label[first] if first >= 0 else -1
            out_count[i] = count
            out_bnd[i] = first_bnd
        elif mode == 1:
            offsets[i] = count


@njit(cache=True)
def _segment_distance(ax, ay, bx, by):
    """Distance from the origin to the segment a-b."""
    dx = bx - ax
    dy = by - ay
    den = dx * dx + dy * dy
    t = -(ax * dx + ay * dy) / den if den > 0.0 else 0.0
    if t <= 0.0:
        return math.sqrt(ax * ax + ay * ay)
    if t >= 1.0:
        return math.sqrt(bx * bx + by * by)
    cx = ax + t * dx
    cy = ay + t * dy
    return math.sqrt(cx * cx + cy * cy)


@njit(cache=True, parallel=True)
def _nearest_kernel(xs, ys, perm, max_d, index, grid, key_label, out_label, out_dist):
    """For points covered by nothing: the nearest polygon boundary within max_d metres (see
    PointIndex.nearest), searched in square rings of buckets around the point."""
    codes, blocks = index
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    none = 2147483647
    for ii in prange(xs.shape[0]):
        i = perm[ii]
        px = xs[ii]
        py = ys[ii]
        kx = math.cos(math.radians(py)) * EARTH_RADIUS_M * math.pi / 180.0
        ky = EARTH_RADIUS_M * math.pi / 180.0
        step = min(w * kx, h * ky)
        r0 = int(math.floor(min(max((py - gy0) * inv_h, -4e9), 4e9)))
        c0 = int(math.floor(min(max((px - gx0) * inv_w, -4e9), 4e9)))
        # rings around (r0, c0), from the first that meets the grid
        k_first = max(max(-r0, r0 - (nrows - 1)), max(-c0, c0 - (ncols - 1)), 0)
        k_last = max(max(r0, nrows - 1 - r0), max(c0, ncols - 1 - c0))
        best = np.inf
        best_key = none
        for k in range(k_first, k_last + 1):
            if k >= 2:
                # every point of ring k is at least k - 1 buckets away in x or in y
                lower = ((k - 1) - 1e-6) * step
                if lower > best or lower > max_d:
                    break
            for r in range(max(r0 - k, 0), min(r0 + k, nrows - 1) + 1):
                if r == r0 - k or r == r0 + k:     # a whole row of the ring
                    c = max(c0 - k, 0)
                    c_last = min(c0 + k, ncols - 1)
                    c_step = 1
                else:                              # only its two ends
                    c = c0 - k
                    c_last = c0 + k
                    c_step = 2 * k
                while c <= c_last:
                    if c >= 0 and c < ncols:
                        code = codes[r * ncols + c]
                        if code <= -2:             # some boundary passes through this bucket
                            o = -2 - code
                            q = o + 1
                            for e in range(int(blocks[o])):
                                pk = int(blocks[q])
                                n = int(blocks[q + 1])
                                q += 2
                                # n < 0: covers the bucket whole, its boundary is elsewhere
                                for j in range(q, q + 5 * n, 5):
                                    x1 = blocks[j]
                                    y1 = blocks[j + 1]
                                    x2 = blocks[j + 2]
                                    y2 = blocks[j + 3]
                                    gap = max(max(min(x1, x2) - px, px - max(x1, x2)) * kx,
                                              max(min(y1, y2) - py, py - max(y1, y2)) * ky)
                                    if gap > max_d or gap > best or (gap == best and pk >= best_key):
                                        continue
                                    dist = _segment_distance((x1 - px) * kx, (y1 - py) * ky,
                                                             (x2 - px) * kx, (y2 - py) * ky)
                                    if dist < best or (dist == best and pk < best_key):
                                        best = dist
                                        best_key = pk
                                if n > 0:
                                    q += 5 * n
                    c += c_step
        if best <= max_d and best_key != none:
            out_label[i] = key_label[best_key]
            out_dist[i] = best


@njit(cache=True)
def _bucket_ranges(part_box, grid, eps):
    """Each polygon's range of rows and columns (its bounding box grown by eps), and per bucket the
    number of polygons whose range holds it (room enough for the bucket's list)."""
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    n = part_box.shape[0]
    ranges = np.empty((n, 4), np.int64)
    room = np.zeros(nrows * ncols, np.int32)
    for p in range(n):
        r0 = _clamped_index(part_box[p, 1] - eps, gy0, inv_h, nrows)
        r1 = _clamped_index(part_box[p, 3] + eps, gy0, inv_h, nrows)
        c0 = _clamped_index(part_box[p, 0] - eps, gx0, inv_w, ncols)
        c1 = _clamped_index(part_box[p, 2] + eps, gx0, inv_w, ncols)
        ranges[p, 0] = r0
        ranges[p, 1] = r1
        ranges[p, 2] = c0
        ranges[p, 3] = c1
        for r in range(r0, r1 + 1):
            for c in range(c0, c1 + 1):
                room[r * ncols + c] += 1
    return ranges, room


@njit(cache=True)
def _build_bands(seg, seg_ring, seg_part, part_r0, band_base, band_pos, grid):
    """Copies of each polygon's segments per grid row they span (rows exact, no margin: a point of row
    r can only lie in the y-range of segments spanning r), each row in segment (= ring) order. Band
    (p, r) is number band_base[p] + r - part_r0[p], stored at place band_pos[that]."""
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    n_bands = band_pos.shape[0]
    off = np.zeros(n_bands + 1, np.int64)
    for s in range(seg.shape[0]):
        p = seg_part[s]
        ra = _clamped_index(min(seg[s, 1], seg[s, 3]), gy0, inv_h, nrows)
        rb = _clamped_index(max(seg[s, 1], seg[s, 3]), gy0, inv_h, nrows)
        for r in range(ra, rb + 1):
            off[band_pos[band_base[p] + r - part_r0[p]] + 1] += 1
    for k in range(n_bands):
        off[k + 1] += off[k]
    fill = off[:-1].copy()
    bands = np.empty(5 * off[n_bands], np.float64)
    for s in range(seg.shape[0]):
        p = seg_part[s]
        ra = _clamped_index(min(seg[s, 1], seg[s, 3]), gy0, inv_h, nrows)
        rb = _clamped_index(max(seg[s, 1], seg[s, 3]), gy0, inv_h, nrows)
        for r in range(ra, rb + 1):
            k = band_pos[band_base[p] + r - part_r0[p]]
            j = 5 * fill[k]
            bands[j] = seg[s, 0]
            bands[j + 1] = seg[s, 1]
            bands[j + 2] = seg[s, 2]
            bands[j + 3] = seg[s, 3]
            bands[j + 4] = seg_ring[s]
            fill[k] += 1
    return off, bands


@njit(cache=True)
def _fill_buckets(order, part_seg, seg, ranges, band_base, band_pos, band_off, bands, room_off, grid, eps):
    """Per bucket, in rank order: polygons whose boundary passes through it (entry p) and polygons
    covering it whole (entry -p-1). The status of a polygon is constant along a run of buckets of a row
    that none of its segments touches, so one exact test (at the first bucket's centre) serves the run."""
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    nb = nrows * ncols
    stamp = np.full(nb, -1, np.int32)
    fill = np.zeros(nb, np.int32)
    entries = np.empty(room_off[nb], np.int32)
    for p in order:
        for s in range(part_seg[p], part_seg[p + 1]):
            x1 = seg[s, 0]
            y1 = seg[s, 1]
            x2 = seg[s, 2]
            y2 = seg[s, 3]
            ra = _clamped_index(min(y1, y2) - eps, gy0, inv_h, nrows)
            rb = _clamped_index(max(y1, y2) + eps, gy0, inv_h, nrows)
            for r in range(ra, rb + 1):
                ca, cb = _row_columns(x1, y1, x2, y2, r, gx0, gy0, h, inv_w, ncols, eps)
                for c in range(ca, cb + 1):
                    b = r * ncols + c
                    if stamp[b] != p:
                        stamp[b] = p
                        entries[room_off[b] + fill[b]] = p
                        fill[b] += 1
        r0 = ranges[p, 0]
        for r in range(r0, ranges[p, 1] + 1):
            yc = gy0 + (r + 0.5) * h
            k = band_pos[band_base[p] + min(max(_clamped_index(yc, gy0, inv_h, nrows), r0), ranges[p, 1]) - r0]
            status = -1
            for c in range(ranges[p, 2], ranges[p, 3] + 1):
                b = r * ncols + c
                if stamp[b] == p:
                    status = -1
                    continue
                if status < 0:
                    status = _status(gx0 + (c + 0.5) * w, yc, 5 * band_off[k], band_off[k + 1] - band_off[k], bands)
                if status != _OUTSIDE:
                    entries[room_off[b] + fill[b]] = -p - 1
                    fill[b] += 1
    return entries, fill


@njit(cache=True)
def _finalize(entries, fill, room_off, part_key, part_r0, band_base, band_pos, band_off, bands, grid, eps):
    """Buckets with no boundary and at most one label become a direct code (the label's key, or -1);
    the others get their block (code -2 - offset). Returns (codes, blocks, False if too big for int32)."""
    gx0, gy0, w, h, inv_w, inv_h, nrows, ncols = grid
    nb = fill.shape[0]
    codes = np.empty(nb, np.int32)
    blocks = np.empty(0, np.float64)
    total = 0
    for walk in range(2):
        if walk == 1:
            blocks = np.empty(total, np.float64)
        for b in range(nb):
            if walk == 1 and codes[b] > -2:
                continue
            r = b // ncols
            west = gx0 + (b - r * ncols) * w - eps     # segments wholly west of this cannot matter
            key = -1
            direct = True
            size = 1
            q = -2 - codes[b] + 1 if walk == 1 else 0
            m = 0
            for j in range(room_off[b], room_off[b] + fill[b]):
                e = entries[j]
                if e < 0:
                    k = part_key[-e - 1]
                    if key == -1:
                        key = k
                    elif k != key:
                        direct = False
                    size += 2
                    if walk == 1:
                        blocks[q] = k
                        blocks[q + 1] = -1
                        q += 2
                        m += 1
                    continue
                kb = band_pos[band_base[e] + r - part_r0[e]]
                n = 0
                for jj in range(5 * band_off[kb], 5 * band_off[kb + 1], 5):
                    if bands[jj] >= west or bands[jj + 2] >= west:
                        if walk == 1:
                            for t in range(5):
                                blocks[q + 2 + 5 * n + t] = bands[jj + t]
                        n += 1
                if n == 0:
                    continue
                direct = False
                size += 2 + 5 * n
                if walk == 1:
                    blocks[q] = part_key[e]
                    blocks[q + 1] = n
                    q += 2 + 5 * n
                    m += 1
            if walk == 0:
                if direct:
                    codes[b] = key
                else:
                    if total + size > 2**31 - 3:
                        return codes, blocks, False
                    codes[b] = -2 - total
                    total += size
            else:
                blocks[-2 - codes[b]] = m
    return codes, blocks, True


# --- the index -------------------------------------------------------------------------------------------

def _geometry_array(polygons):
    try:
        geoms = np.asarray(getattr(polygons, "values", polygons), dtype=object)
    except Exception as exc:  # pragma: no cover - exotic containers
        raise BadInput(f"polygons must be a sequence of shapely geometries: {exc}") from exc
    if geoms.ndim == 0:
        raise BadInput("polygons must be a sequence of shapely Polygons or MultiPolygons, not a single object")
    return geoms.ravel()


def _int_array(values, what):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise BadInput(f"{what} must be a one-dimensional array of integers")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_):
        raise BadInput(f"{what} must be integers, not {arr.dtype}")
    return arr.astype(np.int64)


def _points(x, y):
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise BadInput(f"x and y must be one-dimensional arrays of the same length (got {x.shape} and {y.shape})")
    return np.ascontiguousarray(x), np.ascontiguousarray(y)


def _checked_layer(polygons, labels, rank):
    geoms = _geometry_array(polygons)
    n = len(geoms)
    if n == 0:
        raise BadInput("no polygons to index")
    try:
        kinds = shapely.get_type_id(geoms)
    except (TypeError, shapely.errors.ShapelyError) as exc:
        raise BadInput(f"polygons must be shapely geometries: {exc}") from exc
    bad = np.flatnonzero((kinds != _POLYGON) & (kinds != _MULTIPOLYGON))
    if len(bad):
        i = int(bad[0])
        raise BadInput(f"geometry #{i} is {_TYPE_NAMES.get(int(kinds[i]), 'not a polygon')}, "
                       f"not a Polygon or MultiPolygon ({len(bad)} such)")
    labels = _int_array(labels, "labels")
    if len(labels) != n:
        raise BadInput(f"{n} polygons but {len(labels)} labels")
    if labels.min() < 0:
        raise BadInput("labels must be non-negative")
    if rank is not None:
        rank = _int_array(rank, "rank")
        if len(rank) <= labels.max():
            raise BadInput(f"rank has {len(rank)} entries but the labels go up to {labels.max()}")
    return geoms, labels, rank


def _segments(geoms, labels):
    """All ring segments, part by part, ring by ring (exterior first), in vertex order, without the
    zero-length ones (PostGIS skips them): (seg (n, 4) x1 y1 x2 y2, ring number within its polygon,
    polygon (part) number, label of each part). Parts without a segment (empty) are left out."""
    parts, part_geom = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    if not np.isfinite(coords).all():
        raise BadInput("polygon coordinates must be finite numbers")
    ring_local = np.arange(len(rings)) - np.searchsorted(ring_part, ring_part, side="left")
    same = coord_ring[1:] == coord_ring[:-1]
    x1, y1 = coords[:-1, 0][same], coords[:-1, 1][same]
    x2, y2 = coords[1:, 0][same], coords[1:, 1][same]
    seg_ring = coord_ring[:-1][same]
    keep = ~((x1 == x2) & (y1 == y2))
    seg = np.ascontiguousarray(np.stack([x1[keep], y1[keep], x2[keep], y2[keep]], axis=1))
    seg_ring = seg_ring[keep]
    used_parts, seg_part = np.unique(ring_part[seg_ring], return_inverse=True)
    part_label = labels[part_geom[used_parts]]
    return seg, ring_local[seg_ring].astype(np.int32), seg_part.astype(np.int64), part_label


def _choose_grid(bounds, n_segments, buckets_per_segment):
    """(grid tuple (x0, y0, width, height, 1/width, 1/height, rows, columns), margin eps)."""
    minx, miny, maxx, maxy = bounds
    big = max(abs(minx), abs(miny), abs(maxx), abs(maxy), 1.0)
    width, height = maxx - minx, maxy - miny
    floor_size = max(width, height) * 1e-3 + big * 1e-9
    target = min(max(buckets_per_segment * max(n_segments, 1), MIN_BUCKETS), MAX_BUCKETS)
    size = math.sqrt(max(width, floor_size) * max(height, floor_size) / target)
    size = max(size, big * 1e-9)
    # the margin: far above any rounding error of coordinates this large, far below a bucket
    eps = max(size * 1e-6, float(np.spacing(big)) * 64)
    pad = 4 * eps
    gx0, gy0 = minx - pad, miny - pad
    while True:
        ncols = int((maxx + pad - gx0) / size) + 1
        nrows = int((maxy + pad - gy0) / size) + 1
        if ncols * nrows <= 2 * MAX_BUCKETS:           # else a very elongated layer
            break
        size *= 1.25
    inv = 1.0 / size
    return (float(gx0), float(gy0), float(size), float(size), float(inv), float(inv), int(nrows), int(ncols)), eps


class PointIndex:
    """Exact point-in-polygon index answering like PostGIS ``ST_Covers(polygon, point)``.

    ``polygons``: shapely Polygons / MultiPolygons (lon/lat degrees, taken as planar x/y);
    ``labels``: for each polygon the (non-negative) id it stands for; several polygons may share one;
    ``rank``: optional int array indexed by label, lower rank wins a tie (default: the label itself;
    equal ranks fall back on the lower label).

    Read-only attributes: ``n_polygons``, ``n_parts`` (polygons of the MultiPolygons counted one by one),
    ``n_segments``, ``n_labels``, ``bounds`` (minx, miny, maxx, maxy), ``grid_shape`` (rows, columns),
    ``bucket_size`` (width, height in degrees), ``grid_origin``, ``listed_fraction`` (share of buckets
    that need exact tests or hold several labels), ``nbytes``.
    """

    def __init__(self, polygons, labels, rank=None, *, buckets_per_segment=BUCKETS_PER_SEGMENT):
        geoms, labels, rank = _checked_layer(polygons, labels, rank)
        seg, seg_ring, seg_part, part_label = _segments(geoms, labels)
        n_parts = len(part_label)
        self._n_polygons = len(geoms)
        self._n_parts = n_parts
        self._n_segments = len(seg)

        # label keys: 0, 1, ... in (rank, label) order
        key_label = np.unique(part_label)
        key_rank = key_label if rank is None else rank[key_label]
        key_label = key_label[np.lexsort((key_label, key_rank))]
        sorter = np.argsort(key_label)
        part_key = sorter[np.searchsorted(key_label, part_label, sorter=sorter)].astype(np.int32)
        self._key_label = key_label.astype(np.int64)

        part_seg = np.searchsorted(seg_part, np.arange(n_parts + 1)).astype(np.int64)
        if n_parts:
            starts = part_seg[:-1]
            part_box = np.ascontiguousarray(np.stack([
                np.minimum.reduceat(np.minimum(seg[:, 0], seg[:, 2]), starts),
                np.minimum.reduceat(np.minimum(seg[:, 1], seg[:, 3]), starts),
                np.maximum.reduceat(np.maximum(seg[:, 0], seg[:, 2]), starts),
                np.maximum.reduceat(np.maximum(seg[:, 1], seg[:, 3]), starts)], axis=1))
            bounds = (float(part_box[:, 0].min()), float(part_box[:, 1].min()),
                      float(part_box[:, 2].max()), float(part_box[:, 3].max()))
            self._bounds = bounds
        else:
            part_box = np.empty((0, 4), np.float64)
            bounds = (0.0, 0.0, 1.0, 1.0)
            self._bounds = (np.nan,) * 4
        grid, eps = _choose_grid(bounds, len(seg), buckets_per_segment)
        self._grid = grid
        nrows, ncols = grid[6], grid[7]

        # each polygon's segments per grid row ("bands"), stored row by row, west to east
        ranges, room = _bucket_ranges(part_box, grid, eps)
        part_r0 = np.ascontiguousarray(ranges[:, 0])
        band_count = ranges[:, 1] - part_r0 + 1
        band_base = np.zeros(n_parts, np.int64)
        if n_parts:
            band_base[1:] = np.cumsum(band_count)[:-1]
        band_part = np.repeat(np.arange(n_parts), band_count)
        band_row = part_r0[band_part] + np.arange(len(band_part)) - band_base[band_part]
        band_pos = np.empty(len(band_part), np.int64)
        band_pos[np.lexsort((band_part, ranges[band_part, 2], band_row))] = np.arange(len(band_part))
        del band_part, band_row
        band_off, bands = _build_bands(seg, seg_ring, seg_part, part_r0, band_base, band_pos, grid)

        # per bucket, polygons crossing it or covering it whole, in rank order; then codes and blocks
        room_off = np.zeros(nrows * ncols + 1, np.int64)
        np.cumsum(room, out=room_off[1:])
        del room
        if room_off[-1] > MAX_ROOM:
            raise BadInput(f"the polygons overlap too much to index ({room_off[-1]:,} bucket-polygon pairs)")
        order = np.argsort(part_key, kind="stable").astype(np.int64)
        entries, fill = _fill_buckets(order, part_seg, seg, ranges, band_base, band_pos, band_off, bands, room_off,
                                      grid, eps)
        codes, blocks, fits = _finalize(entries, fill, room_off, part_key, part_r0, band_base, band_pos, band_off,
                                        bands, grid, eps)
        if not fits:
            raise BadInput("too many polygon segments to index")
        self._index = (codes, blocks)
        self._n_lists = int((codes <= -2).sum())

    # --- read-only facts ---------------------------------------------------------------------------------

    @property
    def n_polygons(self):
        return self._n_polygons

    @property
    def n_parts(self):
        return self._n_parts

    @property
    def n_segments(self):
        return self._n_segments

    @property
    def n_labels(self):
        return len(self._key_label)

    @property
    def bounds(self):
        return self._bounds

    @property
    def grid_shape(self):
        return self._grid[6], self._grid[7]

    @property
    def bucket_size(self):
        return self._grid[2], self._grid[3]

    @property
    def grid_origin(self):
        """South-west corner of bucket (0, 0): a point is in column int((x - x0) / width), etc."""
        return self._grid[0], self._grid[1]

    @property
    def listed_fraction(self):
        return self._n_lists / (self._grid[6] * self._grid[7])

    @property
    def nbytes(self):
        """Memory held by the index arrays."""
        return int(sum(a.nbytes for a in self._index)) + self._key_label.nbytes

    def __repr__(self):
        return (f"PointIndex({self.n_polygons} polygons, {self.n_labels} labels, {self.n_segments} segments, "
                f"grid {self.grid_shape[0]}x{self.grid_shape[1]})")

    # --- queries -------------------------------------------------------------------------------------------

    def _order(self, x, y):
        """(order, x, y in that order): tile by tile for many points. Call under _kernels()."""
        if len(x) < TILE_MIN_POINTS:
            return np.arange(len(x), dtype=np.int64), x, y
        return _tile_order(x, y, self._grid, TILE_SHIFT, numba.get_num_threads())

    def locate(self, x, y):
        """For each point (x[i], y[i]): the covering label with the lowest rank, how many distinct labels
        cover it and whether the chosen one covers it only on boundaries. NaN/inf points: -1, 0."""
        x, y = _points(x, y)
        n = len(x)
        label = np.empty(n, np.int64)
        count = np.empty(n, np.int32)
        boundary = np.empty(n, np.bool_)
        if n:
            with _kernels(n):
                perm, xs, ys = self._order(x, y)
                _query_kernel(xs, ys, perm, 0, self._index, self._grid, self._key_label, label, count, boundary,
                              _NO_I64, _NO_I32, _NO_BOOL)
        return Located(label, count, boundary)

    def covering(self, x, y):
        """Every (point, label) pair with the label covering the point, once per pair, sorted by point
        and then rank: arrays (point index int64, label int64, boundary bool), ``boundary`` as in
        :meth:`locate` for that label."""
        x, y = _points(x, y)
        n = len(x)
        counts = np.zeros(n, np.int64)
        keys = np.empty(0, np.int32)
        boundary = np.empty(0, np.bool_)
        if n:
            with _kernels(n):
                perm, xs, ys = self._order(x, y)
                _query_kernel(xs, ys, perm, 1, self._index, self._grid, self._key_label, _NO_I64, _NO_I32,
                              _NO_BOOL, counts, _NO_I32, _NO_BOOL)
                offsets = np.zeros(n, np.int64)
                np.cumsum(counts[:-1], out=offsets[1:])
                total = int(offsets[-1] + counts[-1])
                keys = np.empty(total, np.int32)
                boundary = np.empty(total, np.bool_)
                if total:
                    _query_kernel(xs, ys, perm, 2, self._index, self._grid, self._key_label, _NO_I64, _NO_I32,
                                  _NO_BOOL, offsets, keys, boundary)
        point = np.repeat(np.arange(n, dtype=np.int64), counts)
        return point, self._key_label[keys], boundary

    def nearest(self, x, y, max_distance_m):
        """For each point, the label of the nearest polygon within ``max_distance_m`` metres and the
        distance: 0 when covered (the label is then :meth:`locate`'s), ties go to the lowest rank; -1 and
        inf when none is that near (and for NaN/inf points or latitudes beyond +-90).

        The metric is planar around the point itself: a vertex (vx, vy) maps to ((vx - px) * kx,
        (vy - py) * ky) with kx = cos(radians(py)) * R * pi / 180, ky = R * pi / 180, R = 6371008.8 m,
        and the distance is from the origin to the mapped polygon's boundary.
        """
        x, y = _points(x, y)
        try:
            max_d = float(max_distance_m)
        except (TypeError, ValueError) as exc:
            raise BadInput(f"max_distance_m must be a number, not {max_distance_m!r}") from exc
        if not max_d >= 0:
            raise BadInput(f"max_distance_m must be a non-negative number, not {max_distance_m!r}")
        label = self.locate(x, y).label
        dist = np.where(label >= 0, 0.0, np.inf)
        with np.errstate(invalid="ignore"):
            todo = np.flatnonzero((label < 0) & np.isfinite(x) & (np.abs(y) <= 90.0))
        if len(todo):
            xo, yo = np.ascontiguousarray(x[todo]), np.ascontiguousarray(y[todo])
            lab_o = np.full(len(todo), -1, np.int64)
            dist_o = np.full(len(todo), np.inf)
            with _kernels(len(todo)):
                perm, xs, ys = self._order(xo, yo)
                _nearest_kernel(xs, ys, perm, max_d, self._index, self._grid, self._key_label, lab_o, dist_o)
            label[todo] = lab_o
            dist[todo] = dist_o
        return label, dist
