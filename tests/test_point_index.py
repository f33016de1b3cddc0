"""gis.point_index: exact point location like PostGIS ST_Covers, checked by hand, against a brute-force
transcription of PostGIS's winding-number test and against shapely; nearest() against brute force."""
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gis import point_index
from gis.errors import BadInput
from gis.point_index import EARTH_RADIUS_M, Located, PointIndex

HOLE = [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]


def squares():
    """Four unit squares around (1, 1): 0 south-west, 1 south-east, 2 north-west, 3 north-east."""
    return [box(0, 0, 1, 1), box(1, 0, 2, 1), box(0, 1, 1, 2), box(1, 1, 2, 2)]


def locate_one(index, x, y):
    got = index.locate([x], [y])
    return int(got.label[0]), int(got.count[0]), bool(got.boundary[0])


# --- a brute-force reference: PostGIS's test, written out plainly over every segment ------------------

def ring_status(ring, px, py):
    """0 outside, 1 on the ring, 2 inside (winding number not zero), for arrays of points."""
    c = shapely.get_coordinates(ring)
    x1, y1, x2, y2 = c[:-1, 0][:, None], c[:-1, 1][:, None], c[1:, 0][:, None], c[1:, 1][:, None]
    real = ~((x1 == x2) & (y1 == y2))
    side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
    on = real & (side == 0) & (np.minimum(x1, x2) <= px) & (px <= np.maximum(x1, x2)) \
        & (np.minimum(y1, y2) <= py) & (py <= np.maximum(y1, y2))
    up = real & (y1 <= py) & (py < y2) & (side > 0)
    down = real & (y2 <= py) & (py < y1) & (side < 0)
    wn = up.sum(axis=0) - down.sum(axis=0)
    return np.where(on.any(axis=0), 1, np.where(wn != 0, 2, 0))


def polygon_status(geom, px, py):
    """Per point: 0 not covered, 1 covered only on boundaries, 2 inside some part."""
    best = np.zeros(len(px), int)
    for part in shapely.get_parts(geom):
        if part.is_empty:
            continue
        ext = ring_status(part.exterior, px, py)
        status = np.where(ext == 1, 1, np.where(ext == 2, 2, 0))
        alive = ext == 2                         # inside the exterior: the holes decide, in order
        for hole in part.interiors:
            h = ring_status(hole, px, py)
            status = np.where(alive & (h == 2), 0, np.where(alive & (h == 1), 1, status))
            alive &= h == 0
        best = np.maximum(best, status)
    return best


def expected(polygons, labels, rank, px, py, status_of):
    """(label, count, boundary) per point from a per-polygon status function."""
    per_label = {}
    for geom, lab in zip(polygons, np.asarray(labels).tolist()):
        s = status_of(geom, px, py)
        per_label[lab] = np.maximum(per_label.get(lab, 0), s)
    order = sorted(per_label, key=lambda lab: (lab if rank is None else rank[lab], lab))
    label = np.full(len(px), -1)
    boundary = np.zeros(len(px), bool)
    count = np.zeros(len(px), int)
    for lab in order:
        s = per_label[lab]
        new = (s > 0) & (label < 0)
        label[new] = lab
        boundary[new] = s[new] == 1
        count += s > 0
    return label, count, boundary


def shapely_status(geom, px, py):
    pts = shapely.points(px, py)
    return np.where(shapely.contains_properly(geom, pts), 2, np.where(shapely.covers(geom, pts), 1, 0))


def check_against(index, polygons, labels, rank, px, py, status_of):
    got = index.locate(px, py)
    label, count, boundary = expected(polygons, labels, rank, px, py, status_of)
    bad = np.flatnonzero((got.label != label) | (got.count != count) | (got.boundary != boundary))
    assert len(bad) == 0, [(px[i], py[i], got.label[i], label[i], got.count[i], count[i], got.boundary[i], boundary[i])
                           for i in bad[:5]]
    return got


# --- fixed cases -----------------------------------------------------------------------------------------

def test_a_point_inside_a_square():
    index = PointIndex(squares(), [0, 1, 2, 3])
    assert locate_one(index, 0.5, 0.5) == (0, 1, False)
    assert locate_one(index, 1.7, 1.2) == (3, 1, False)
    got = index.locate(np.array([0.5]), np.array([0.5]))
    assert isinstance(got, Located)
    assert got.label.dtype == np.int64 and got.count.dtype == np.int32 and got.boundary.dtype == np.bool_


def test_a_point_on_a_shared_edge_goes_to_the_lower_rank_and_says_so():
    index = PointIndex(squares(), [0, 1, 2, 3])
    assert locate_one(index, 1.0, 0.5) == (0, 2, True)
    # rank indexed by label: now square 1 wins
    index = PointIndex(squares(), [0, 1, 2, 3], rank=[5, 1, 7, 9])
    assert locate_one(index, 1.0, 0.5) == (1, 2, True)
    point, label, boundary = index.covering([1.0], [0.5])
    assert point.tolist() == [0, 0] and label.tolist() == [1, 0] and boundary.tolist() == [True, True]


def test_a_vertex_shared_by_four_squares():
    index = PointIndex(squares(), [10, 11, 12, 13], rank=np.arange(14)[::-1])
    assert locate_one(index, 1.0, 1.0) == (13, 4, True)
    point, label, boundary = index.covering([1.0], [1.0])
    assert label.tolist() == [13, 12, 11, 10] and boundary.all()


def test_the_outline_is_covered_and_just_outside_is_not():
    index = PointIndex(squares(), [0, 1, 2, 3])
    assert locate_one(index, 2.0, 0.5) == (1, 1, True)
    assert locate_one(index, 0.0, 0.0) == (0, 1, True)
    assert locate_one(index, 2.0 + 1e-12, 0.5) == (-1, 0, False)
    assert locate_one(index, np.nextafter(2.0, 3.0), 0.5) == (-1, 0, False)
    assert locate_one(index, 0.5, np.nextafter(0.0, -1.0)) == (-1, 0, False)


def test_holes_and_an_island_in_one():
    ring = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)], [HOLE])
    island = Polygon(HOLE)
    index = PointIndex([ring, box(5, 5, 6, 6)], [0, 1])
    assert locate_one(index, 0.5, 0.5) == (-1, 0, False)        # strictly inside the hole
    assert locate_one(index, 0.25, 0.5) == (0, 1, True)         # on the hole's ring
    assert locate_one(index, 0.75, 0.75) == (0, 1, True)        # on a corner of the hole
    assert locate_one(index, 0.1, 0.5) == (0, 1, False)
    index = PointIndex([ring, island], [0, 1])
    assert locate_one(index, 0.5, 0.5) == (1, 1, False)
    assert locate_one(index, 0.25, 0.5) == (0, 2, True)
    # two holes: the point in the first, in the second, between them
    two = Polygon([(0, 0), (3, 0), (3, 1), (0, 1)], [[(0.5, 0.25), (1, 0.25), (1, 0.75), (0.5, 0.75)],
                                                     [(2, 0.25), (2.5, 0.25), (2.5, 0.75), (2, 0.75)]])
    index = PointIndex([two], [0])
    got = index.locate([0.75, 2.25, 1.5, 2.0, 0.2], [0.5, 0.5, 0.5, 0.5, 0.5])
    assert got.label.tolist() == [-1, -1, 0, 0, 0] and got.boundary.tolist() == [False, False, False, True, False]


def test_two_overlapping_polygons():
    index = PointIndex([box(0, 0, 2, 2), box(1, 1, 3, 3)], [4, 2])
    assert locate_one(index, 1.5, 1.5) == (2, 2, False)
    assert locate_one(index, 0.5, 0.5) == (4, 1, False)
    # on 2's edge and inside 4: 2 wins, and 2 covers it only on its boundary
    assert locate_one(index, 1.0, 1.5) == (2, 2, True)
    point, label, boundary = index.covering([1.0, 1.5], [1.5, 1.5])
    assert point.tolist() == [0, 0, 1, 1] and label.tolist() == [2, 4, 2, 4]
    assert boundary.tolist() == [True, False, False, False]


def test_a_multipolygon_covers_with_any_of_its_parts():
    holed = Polygon([(3, 0), (5, 0), (5, 2), (3, 2)], [[(3.5, 0.5), (4.5, 0.5), (4.5, 1.5), (3.5, 1.5)]])
    multi = MultiPolygon([box(0, 0, 1, 1), holed])
    index = PointIndex([multi, box(1, 0, 3, 1)], [7, 3])
    assert locate_one(index, 0.5, 0.5) == (7, 1, False)
    assert locate_one(index, 3.2, 1.5) == (7, 1, False)
    assert locate_one(index, 4.0, 1.0) == (-1, 0, False)        # in the hole of the second part
    assert locate_one(index, 3.0, 0.5) == (3, 2, True)
    assert locate_one(index, 1.0, 0.5) == (3, 2, True)


def test_pieces_of_one_label_count_once():
    # one cell cut in two along x = 1 (ST_Subdivide), beside another cell
    pieces = [box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)]
    index = PointIndex(pieces, [5, 5, 6])
    assert locate_one(index, 0.5, 0.5) == (5, 1, False)
    # on the cut: one label; boundary is True iff no piece of that label holds the point strictly inside
    assert locate_one(index, 1.0, 0.5) == (5, 1, True)
    assert locate_one(index, 2.0, 0.5) == (5, 2, True)
    point, label, boundary = index.covering([1.0, 2.0], [0.5, 0.5])
    assert point.tolist() == [0, 1, 1] and label.tolist() == [5, 5, 6]
    # overlapping pieces: on the boundary of one, inside the other, so not on the label's boundary
    index = PointIndex([box(0, 0, 2, 1), box(1, 0, 3, 1)], [5, 5])
    assert locate_one(index, 1.0, 0.5) == (5, 1, False)
    assert locate_one(index, 2.0, 0.5) == (5, 1, False)
    assert locate_one(index, 2.0, 1.0) == (5, 1, True)


def test_points_that_are_not_numbers_or_far_away_are_not_covered():
    index = PointIndex(squares(), [0, 1, 2, 3])
    x = np.array([np.nan, 0.5, np.inf, -np.inf, 1e300, -1e300, 0.5])
    y = np.array([0.5, np.nan, 0.5, 0.5, 0.5, 1e300, 0.5])
    got = index.locate(x, y)
    assert got.label.tolist() == [-1] * 6 + [0] and got.count.tolist() == [0] * 6 + [1]
    point, label, boundary = index.covering(x, y)
    assert point.tolist() == [6]
    lab, dist = index.nearest(x, y, 1e9)
    assert lab[:4].tolist() == [-1] * 4 and np.isinf(dist[:4]).all() and lab[6] == 0 and dist[6] == 0
    empty = index.locate([], [])
    assert len(empty) == 0 and empty.label.dtype == np.int64


def test_empty_polygons_cover_nothing():
    index = PointIndex([Polygon(), box(0, 0, 1, 1), MultiPolygon()], [3, 1, 2])
    assert locate_one(index, 0.5, 0.5) == (1, 1, False)
    assert index.n_polygons == 3 and index.n_labels == 1


def test_points_on_the_bucket_lines():
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(np.random.default_rng(3).random((60, 2))),
                                                       extend_to=box(0, 0, 1, 1)))
    cells = shapely.intersection(cells, box(0, 0, 1, 1))
    index = PointIndex(cells, np.arange(len(cells)))
    (x0, y0), (w, h) = index.grid_origin, index.bucket_size
    rows, cols = index.grid_shape
    gx = x0 + np.arange(cols + 1) * w
    gy = y0 + np.arange(rows + 1) * h
    xs = np.concatenate([gx, np.nextafter(gx, -np.inf), np.nextafter(gx, np.inf)])
    ys = np.concatenate([gy, np.nextafter(gy, -np.inf), np.nextafter(gy, np.inf)])
    px, py = (a.ravel() for a in np.meshgrid(xs, ys))
    check_against(index, cells, np.arange(len(cells)), None, px, py, polygon_status)


def test_many_random_points_agree_with_shapely():
    rng = np.random.default_rng(11)
    x0, y0 = 113.6, 34.7
    seeds = shapely.multipoints(np.c_[rng.uniform(x0, x0 + 0.3, 400), rng.uniform(y0, y0 + 0.15, 400)])
    frame = box(x0, y0, x0 + 0.3, y0 + 0.15)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame)
    labels = rng.permutation(len(cells))
    index = PointIndex(cells, labels)
    n = 30_000                                   # many points: the tile-ordered, parallel path
    px = rng.uniform(x0 - 0.01, x0 + 0.31, n)
    py = rng.uniform(y0 - 0.01, y0 + 0.16, n)
    vertices = shapely.get_coordinates(cells)
    px, py = np.r_[px, vertices[:, 0]], np.r_[py, vertices[:, 1]]
    got = index.locate(px, py)
    points = shapely.points(px, py)
    tree = shapely.STRtree(cells)
    covered = tree.query(points, predicate="covered_by")           # (point, cell) pairs
    inside = set(map(tuple, tree.query(points, predicate="within").T.tolist()))
    count = np.bincount(covered[0], minlength=len(px))
    assert np.array_equal(got.count, count)
    assert (got.count[n:] >= 1).all()
    best = np.full(len(px), len(cells))
    np.minimum.at(best, covered[0], labels[covered[1]])
    assert np.array_equal(got.label, np.where(count > 0, best, -1))
    cell_of = np.argsort(labels)
    for i in np.flatnonzero(count):
        assert got.boundary[i] == ((i, cell_of[got.label[i]]) not in inside)
    point, label, boundary = index.covering(px, py)
    assert np.array_equal(np.bincount(point, minlength=len(px)), count)
    assert np.array_equal(label[np.r_[0, np.flatnonzero(np.diff(point)) + 1]], got.label[count > 0])


# --- property: the index reproduces PostGIS's test exactly -------------------------------------------

@st.composite
def layers(draw):
    """A jittered lattice of cells around some origin, with axis-parallel lines here and there, a hole
    (sometimes filled by an island), pieces sharing a label, a MultiPolygon and shuffled ranks."""
    nx, ny = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    size = draw(st.sampled_from([1.0, 0.01, 0.003, 1e-4]))
    x0 = draw(st.sampled_from([0.0, -3.0, 113.65, -71.1]))
    y0 = draw(st.sampled_from([0.0, 34.75, -33.9]))
    seed = draw(st.integers(0, 2**32 - 1))
    jitter = draw(st.sampled_from([0.0, 0.1, 0.25]))
    straight_x = draw(st.lists(st.booleans(), min_size=nx + 1, max_size=nx + 1))
    straight_y = draw(st.lists(st.booleans(), min_size=ny + 1, max_size=ny + 1))
    rng = np.random.default_rng(seed)
    gx = x0 + np.arange(nx + 1) * size + rng.uniform(-jitter, jitter, (ny + 1, nx + 1)) * size * ~np.array(straight_x)
    gy = y0 + (np.arange(ny + 1) * size)[:, None] \
        + rng.uniform(-jitter, jitter, (ny + 1, nx + 1)) * size * ~np.array(straight_y)[:, None]
    cells = []
    for j in range(ny):
        for i in range(nx):
            corners = [(gx[j, i], gy[j, i]), (gx[j, i + 1], gy[j, i + 1]), (gx[j + 1, i + 1], gy[j + 1, i + 1]),
                       (gx[j + 1, i], gy[j + 1, i])]
            cells.append(Polygon(corners))
    holed = draw(st.integers(0, len(cells) - 1))
    cx, cy = x0 + (holed % nx + 0.5) * size, y0 + (holed // nx + 0.5) * size
    if draw(st.booleans()):
        holes = [box(cx - 0.15 * size, cy - 0.15 * size, cx + 0.15 * size, cy + 0.15 * size)]
    else:
        holes = [box(cx - 0.2 * size, cy - 0.15 * size, cx - 0.02 * size, cy + 0.15 * size),
                 box(cx + 0.02 * size, cy - 0.15 * size, cx + 0.2 * size, cy + 0.15 * size)]
    cells[holed] = Polygon(cells[holed].exterior, [h.exterior for h in holes])
    for hole in holes:
        if draw(st.booleans()):
            cells.append(hole)                               # an island filling the hole
    if len(cells) >= 3 and draw(st.booleans()):
        cells[0] = MultiPolygon([cells[0], cells.pop()])     # a MultiPolygon of two parts
    labels = np.array([draw(st.integers(0, len(cells))) for _ in cells])   # pieces share labels
    rank = rng.permutation(len(cells) + 1) if draw(st.booleans()) else None
    return cells, labels, rank, rng


def probe_points(cells, rng, n_random=300):
    """Random points, vertices, points on axis-parallel edges, midpoints of slanted edges (on or off the
    line by rounding) and vertices nudged by one unit in the last place."""
    coords = shapely.get_coordinates(cells)
    x0, y0, x1, y1 = shapely.total_bounds(cells)
    dx, dy = (x1 - x0) * 0.1 + 1e-9, (y1 - y0) * 0.1 + 1e-9
    random = np.c_[rng.uniform(x0 - dx, x1 + dx, n_random), rng.uniform(y0 - dy, y1 + dy, n_random)]
    rings = shapely.get_rings(shapely.get_parts(cells))
    seg = []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        seg.append(np.c_[c[:-1], c[1:]])
    seg = np.concatenate(seg)
    t = rng.random(len(seg))
    v, h = seg[:, 0] == seg[:, 2], seg[:, 1] == seg[:, 3]          # vertical and horizontal edges
    on_axis = np.r_[np.c_[seg[v, 0], seg[v, 1] + t[v] * (seg[v, 3] - seg[v, 1])],
                    np.c_[seg[h, 0] + t[h] * (seg[h, 2] - seg[h, 0]), seg[h, 1]]]
    mid = (seg[:, :2] + seg[:, 2:]) / 2
    nudged = np.concatenate([np.c_[np.nextafter(coords[:, 0], s * np.inf), np.nextafter(coords[:, 1], u * np.inf)]
                             for s in (-1, 1) for u in (-1, 1)])
    exact = np.r_[coords, on_axis]
    return random, exact, np.r_[mid, nudged]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers())
def test_the_index_reproduces_postgis_and_shapely(layer):
    cells, labels, rank, rng = layer
    index = PointIndex(cells, labels, rank=rank)
    random, exact, delicate = probe_points(cells, rng)
    # shapely's robust predicates agree with PostGIS's formula for generic points, vertices and points on
    # axis-parallel edges
    agreeing = np.r_[random, exact]
    check_against(index, cells, labels, rank, agreeing[:, 0], agreeing[:, 1], shapely_status)
    # near slanted edges only PostGIS's own formula decides
    everything = np.r_[agreeing, delicate]
    got = check_against(index, cells, labels, rank, everything[:, 0], everything[:, 1], polygon_status)
    point, label, boundary = index.covering(everything[:, 0], everything[:, 1])
    assert np.array_equal(np.bincount(point, minlength=len(everything)), got.count)
    first = np.r_[0, np.flatnonzero(np.diff(point)) + 1] if len(point) else np.array([], int)
    assert np.array_equal(label[first], got.label[got.count > 0])
    assert np.array_equal(boundary[first], got.boundary[got.count > 0])
    assert len(set(zip(point.tolist(), label.tolist()))) == len(point)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 40, 300]))
def test_slivers_and_long_edges(seed, n_vertices):
    """Thin triangles and long nearly horizontal or vertical edges crossing many buckets."""
    rng = np.random.default_rng(seed)
    polys = []
    for _ in range(6):
        cx, cy = rng.uniform(0, 10, 2)
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(0.5, 8)
        a = np.array([cx, cy])
        b = a + length * np.array([np.cos(angle), np.sin(angle)])
        c = a + rng.uniform(0.1, 0.9) * (b - a) + rng.uniform(1e-6, 1e-2) * np.array([-np.sin(angle), np.cos(angle)])
        polys.append(Polygon([a, b, c]))
    ring = np.c_[np.cos(np.linspace(0, 2 * np.pi, n_vertices, endpoint=False)),
                 np.sin(np.linspace(0, 2 * np.pi, n_vertices, endpoint=False))] * rng.uniform(1, 4) + 5
    polys.append(Polygon(ring))
    labels = np.arange(len(polys))
    index = PointIndex(polys, labels)
    random, exact, delicate = probe_points(polys, rng, 2000)
    pts = np.r_[random, exact, delicate]
    check_against(index, polys, labels, None, pts[:, 0], pts[:, 1], polygon_status)


# --- nearest ---------------------------------------------------------------------------------------------

def brute_nearest(polygons, labels, rank, px, py):
    """(distance to each label's nearest polygon, per point) with the documented metric."""
    labels = np.asarray(labels)
    keys = sorted(set(labels.tolist()), key=lambda lab: (lab if rank is None else rank[lab], lab))
    dist = np.full((len(px), len(keys)), np.inf)
    origin = Point(0, 0)
    for i, (x, y) in enumerate(zip(px, py)):
        kx = math.cos(math.radians(y)) * EARTH_RADIUS_M * math.pi / 180
        ky = EARTH_RADIUS_M * math.pi / 180
        moved = shapely.transform(list(polygons), lambda c: (c - [x, y]) * [kx, ky])
        d = np.where(shapely.covers(moved, origin), 0.0, shapely.distance(origin, shapely.boundary(moved)))
        for geom_d, lab in zip(d, labels):
            k = keys.index(lab)
            dist[i, k] = min(dist[i, k], geom_d)
    return keys, dist


def test_nearest_agrees_with_brute_force():
    rng = np.random.default_rng(5)
    x0, y0 = 113.6, 34.7
    frame = box(x0, y0, x0 + 0.05, y0 + 0.03)
    seeds = shapely.multipoints(np.c_[rng.uniform(x0, x0 + 0.05, 40), rng.uniform(y0, y0 + 0.03, 40)])
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame)
    cells = [c for k, c in enumerate(cells) if k % 7 != 3]          # gaps inside the layer
    labels = rng.permutation(len(cells))
    rank = rng.permutation(len(cells))
    index = PointIndex(cells, labels, rank=rank)
    n = 300
    px = rng.uniform(x0 - 0.01, x0 + 0.06, n)
    py = rng.uniform(y0 - 0.01, y0 + 0.04, n)
    keys, dist = brute_nearest(cells, labels, rank, px, py)
    for max_d in (30.0, 400.0, 5000.0):
        label, got = index.nearest(px, py, max_d)
        best = dist.min(axis=1)
        within = best <= max_d
        clear = np.abs(best - max_d) > 1e-6
        assert np.array_equal((label >= 0)[clear], within[clear])
        assert np.isinf(got[~within & clear]).all() and (label[~within & clear] == -1).all()
        ok = within & clear
        np.testing.assert_allclose(got[ok], best[ok], rtol=1e-9, atol=1e-7)
        # the label: the lowest rank among those (nearly) at the best distance
        for i in np.flatnonzero(ok):
            tied = [keys[k] for k in np.flatnonzero(dist[i] <= best[i] + 1e-7)]
            if len(tied) == 1:
                assert label[i] == tied[0]
            else:
                assert label[i] in tied
        assert (got[index.locate(px, py).label >= 0] == 0).all()


def test_nearest_ties_go_to_the_lowest_rank():
    a, b = box(0, 0, 1, 1), box(2, 0, 3, 1)
    for rank, winner in (([0, 1], 0), ([1, 0], 1)):
        index = PointIndex([a, b], [0, 1], rank=rank)
        label, dist = index.nearest([1.5, 1.5, 0.5], [0.5, 3.0, 0.5], 1e7)
        assert label.tolist() == [winner, winner, 0]
        assert dist[0] == pytest.approx(0.5 * EARTH_RADIUS_M * math.pi / 180 * math.cos(math.radians(0.5)), rel=1e-12)
        assert dist[2] == 0
    # a vertex shared by two cells, the point beyond it
    index = PointIndex([box(0, 0, 1, 1), box(1, 0, 2, 1)], [4, 3])
    label, dist = index.nearest([1.0], [1.5], 1e7)
    assert label.tolist() == [3] and dist[0] == pytest.approx(0.5 * EARTH_RADIUS_M * math.pi / 180, rel=1e-12)


def test_nearest_respects_the_maximum_distance():
    index = PointIndex([box(0, 0, 0.01, 0.01)], [0])
    metres = EARTH_RADIUS_M * math.pi / 180 * 0.001                # 0.001 degree of latitude
    label, dist = index.nearest([0.005, 0.005], [0.011, 0.012], metres * 1.5)
    assert label.tolist() == [0, -1] and dist[0] == pytest.approx(metres, rel=1e-9) and np.isinf(dist[1])
    label, dist = index.nearest([0.005], [0.011], 0.0)
    assert label.tolist() == [-1]
    label, dist = index.nearest([0.005], [0.01], 0.0)               # on the boundary: covered
    assert label.tolist() == [0] and dist[0] == 0


# --- bad input -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("polygons, labels, rank", [
    ([], [], None),
    ([box(0, 0, 1, 1)], [0, 1], None),
    ([box(0, 0, 1, 1), LineString([(0, 0), (1, 1)])], [0, 1], None),
    ([box(0, 0, 1, 1), Point(0, 0)], [0, 1], None),
    ([box(0, 0, 1, 1), None], [0, 1], None),
    ([box(0, 0, 1, 1)], [-1], None),
    ([box(0, 0, 1, 1)], [0.5], None),
    ([box(0, 0, 1, 1), box(1, 0, 2, 1)], [0, 3], [0, 1]),
    ([shapely.polygons([[0, 0], [1, np.inf], [1, 1], [0, 0]])], [0], None),
    ("not polygons", [0], None),
])
def test_bad_layers_are_refused(polygons, labels, rank):
    with pytest.raises(BadInput):
        PointIndex(polygons, labels, rank=rank)


def test_bad_points_are_refused():
    index = PointIndex(squares(), [0, 1, 2, 3])
    with pytest.raises(BadInput):
        index.locate([0.5, 0.5], [0.5])
    with pytest.raises(BadInput):
        index.covering(np.zeros((2, 2)), np.zeros((2, 2)))
    for bad in (-1.0, np.nan, "far"):
        with pytest.raises(BadInput):
            index.nearest([0.5], [0.5], bad)


def test_threads_may_share_an_index():
    index = PointIndex(squares(), [0, 1, 2, 3])
    rng = np.random.default_rng(2)
    batches = [(rng.uniform(-0.5, 2.5, n), rng.uniform(-0.5, 2.5, n)) for n in (10, 5000, 20000) * 4]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda xy: index.locate(*xy).label, batches))
    for (x, y), label in zip(batches, results):
        assert np.array_equal(label, index.locate(x, y).label)


def test_layers_piled_too_high_are_refused(monkeypatch):
    monkeypatch.setattr(point_index, "MAX_ROOM", 10)
    with pytest.raises(BadInput, match="overlap"):
        PointIndex([box(0, 0, 1, 1)] * 50, np.arange(50))
