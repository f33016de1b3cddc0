"""Nested Voronoi partitions that are exact coverages: the geometry engine of the demo.

Each level is cut from the previous one by Voronoi diagrams of seed points, one
diagram per parent. Clipping each diagram to its parent on its own leaves the
vertices on either side of a parent border out of step (where a Voronoi edge of
one parent meets the border, the neighbour has no vertex), so
``shapely.coverage_is_valid`` would fail city-wide. Instead a level is built as a
single planar arrangement: the parents' boundaries and every parent's clipped
Voronoi edges are noded together with snap-rounding (``union_all`` with a 1 mm
grid, so an edge ending a hair short of a border still meets it), polygonised into
faces, and each face is given to the nearest seed of the parent it lies in — which
is exactly that seed's Voronoi cell. Every cell of a level is a union of faces of
one arrangement, hence the cells share identical vertices along every edge.

At the end :func:`dissolve` rebuilds coarser levels from the finest one with
``coverage_union_all``, so each level is a union of the same faces and tiles its
parent exactly.

All coordinates are in a metric CRS (EPSG:4547 for Zhengzhou).
"""
from __future__ import annotations

import numpy as np
import shapely

GRID_SIZE_M = 0.001  # snap-rounding grid of the noding: far below anything visible, far above float noise


def sample_points(poly, n: int, rng: np.random.Generator, density=None) -> np.ndarray:
    """Draw ``n`` random points inside a polygon (rejection sampling in its bounding box).

    Parameters
    ----------
    poly : Polygon
    n : int
    rng : numpy.random.Generator
    density : callable, optional
        Maps an (m, 2) array of coordinates to relative densities in (0, 1]; a
        point is kept with that probability. Uniform if omitted.

    Returns
    -------
    ndarray of shape (n, 2)
    """
    xmin, ymin, xmax, ymax = poly.bounds
    fill = max(poly.area / ((xmax - xmin) * (ymax - ymin)), 0.02)
    found = []
    count = 0
    while count < n:
        batch = int((n - count) / fill * 1.3) + 16
        xy = rng.uniform((xmin, ymin), (xmax, ymax), size=(batch, 2))
        keep = rng.uniform(size=batch)  # drawn even when uniform, so the stream does not depend on it
        xy = xy[shapely.contains_xy(poly, xy[:, 0], xy[:, 1]) & (density is None or keep < density(xy))]
        found.append(xy)
        count += len(xy)
    return np.concatenate(found)[:n]


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances between the rows of ``a`` and ``b``.

    Elementwise on purpose: a matrix product would be faster still, but BLAS may
    round differently from one CPU to the next, and a flipped tie would change the
    layout.
    """
    dx = a[:, 0, None] - b[None, :, 0]
    dy = a[:, 1, None] - b[None, :, 1]
    return dx * dx + dy * dy


def kmeans_medoids(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 20) -> np.ndarray:
    """Spread ``k`` seeds evenly over a cloud of points (Lloyd's k-means).

    Each seed is then moved to the cloud point nearest its centroid: a centroid of
    a non-convex cluster may lie outside the parent polygon, a cloud point never does.

    Returns
    -------
    ndarray of shape (k, 2), distinct points of ``points``
    """
    if k == 1:
        centre = points.mean(axis=0)
        return points[[int(np.argmin(((points - centre) ** 2).sum(axis=1)))]]
    centres = points[rng.choice(len(points), size=k, replace=False)]
    for _ in range(iterations):
        label = _sq_dist(points, centres).argmin(axis=1)
        counts = np.bincount(label, minlength=k)
        filled = counts > 0  # an emptied cluster keeps its old centre
        for axis in (0, 1):
            sums = np.bincount(label, weights=points[:, axis], minlength=k)
            centres[filled, axis] = sums[filled] / counts[filled]
    d2 = _sq_dist(points, centres)
    label = d2.argmin(axis=1)
    masked = np.where(label[:, None] == np.arange(k)[None, :], d2, np.inf)
    chosen = masked.argmin(axis=0)
    taken = set()
    for j in range(k):
        if np.isinf(masked[chosen[j], j]) or chosen[j] in taken:
            # Empty cluster: take the free point farthest from every chosen seed.
            free = np.setdiff1d(np.arange(len(points)), list(taken))
            far = ((points[free, None, :] - points[list(taken) or [0]][None, :, :]) ** 2).sum(axis=2).min(axis=1)
            chosen[j] = free[int(np.argmax(far))]
        taken.add(int(chosen[j]))
    return points[chosen]


def claim_seeds(poly, groups, rng: np.random.Generator, density=None, points_per_seed: int = 40) -> list[np.ndarray]:
    """Place the seeds of several groups of children inside one parent.

    A cloud of points is drawn uniformly in the parent; groups, in the order given,
    claim the still-free points nearest their anchor, each a share proportional to
    ``count * weight`` (the last group takes what is left); k-means then spreads each
    group's seeds over its claim. So the first groups sit close to their anchors in
    small cells, later groups around them in larger ones. A ``density`` makes the
    cloud, and so the seeds, denser where it is high: cells shrink there.

    Parameters
    ----------
    poly : Polygon
        The parent.
    groups : sequence of (anchor_xy, count, weight)
        ``anchor_xy`` a pair of coordinates, ``count`` children, ``weight`` the
        relative area one child of the group should get.
    rng : numpy.random.Generator
    density : callable, optional
        Relative seed density, see :func:`sample_points`.

    Returns
    -------
    list of ndarray (count, 2), one per group
    """
    total = sum(n for _, n, _ in groups)
    if total == 1:
        rep = np.array(shapely.get_coordinates(shapely.point_on_surface(poly)))
        return [rep if n else np.empty((0, 2)) for _, n, _ in groups]
    cloud = sample_points(poly, max(points_per_seed * total, 400), rng, density)
    free = np.ones(len(cloud), bool)
    weight_left = float(sum(n * w for _, n, w in groups))
    last = max(i for i, (_, n, _) in enumerate(groups) if n)
    seeds = []
    for i, (anchor, n, w) in enumerate(groups):
        if n == 0:
            seeds.append(np.empty((0, 2)))
            continue
        idx = np.flatnonzero(free)
        share = len(idx) if i == last else round(len(idx) * n * w / weight_left)
        share = min(max(share, 8 * n), len(idx))
        dist = ((cloud[idx] - np.asarray(anchor)) ** 2).sum(axis=1)
        mine = idx[np.argsort(dist, kind="stable")[:share]]
        free[mine] = False
        weight_left -= n * w
        seeds.append(kmeans_medoids(cloud[mine], n, rng))
    return seeds


def lattice_seeds(poly, spacing: float, angle: float, rng: np.random.Generator, jitter: float = 0.18):
    """Seeds on a jittered square lattice inside a polygon, with their row and column.

    The Voronoi cells of a lattice are block-like quadrilaterals, which is what
    unit grids drawn along streets look like. Rows are counted from the north (in
    the lattice's frame, rotated by ``angle``), columns from the west, so sorting by
    (row, column) numbers the cells west→east, north→south.

    Returns
    -------
    xy : ndarray (n, 2)
    rowcol : ndarray (n, 2) of int
        At least one seed: a polygon too small for the lattice gets its representative point.
    """
    cx, cy = shapely.get_coordinates(shapely.centroid(poly))[0]
    cos, sin = np.cos(angle), np.sin(angle)
    local = shapely.get_coordinates(shapely.get_exterior_ring(poly)) - (cx, cy)
    u = local[:, 0] * cos + local[:, 1] * sin
    v = -local[:, 0] * sin + local[:, 1] * cos
    off = rng.uniform(0, spacing, size=2)
    cols = np.arange(np.floor((u.min() - off[0]) / spacing), np.ceil((u.max() - off[0]) / spacing) + 1)
    rows = np.arange(np.floor((v.min() - off[1]) / spacing), np.ceil((v.max() - off[1]) / spacing) + 1)
    cc, rr = np.meshgrid(cols, rows)
    cc, rr = cc.ravel(), rr.ravel()
    shake = rng.uniform(-jitter, jitter, size=(len(cc), 2)) * spacing
    gu = off[0] + cc * spacing + shake[:, 0]
    gv = off[1] + rr * spacing + shake[:, 1]
    xy = np.column_stack((cx + gu * cos - gv * sin, cy + gu * sin + gv * cos))
    inside = shapely.contains_xy(poly, xy[:, 0], xy[:, 1])
    if not inside.any():
        rep = shapely.get_coordinates(shapely.point_on_surface(poly))
        return rep, np.zeros((1, 2), int)
    rowcol = np.column_stack((rows.max() - rr[inside], cc[inside] - cols.min())).astype(int)
    return xy[inside], rowcol


def _shared_border(geom, others) -> np.ndarray:
    """Length of the border ``geom`` shares with each of ``others`` (exact on a coverage)."""
    return shapely.length(shapely.intersection(shapely.boundary(geom), shapely.boundary(others)))


def _union(faces):
    return faces[0] if len(faces) == 1 else shapely.coverage_union_all(faces)


def subdivide(parents: np.ndarray, seeds: np.ndarray, seed_parent: np.ndarray):
    """Cut every parent into the Voronoi cells of its seeds, as one exact coverage.

    Parameters
    ----------
    parents : ndarray of Polygon
        A valid coverage, every parent a single polygon.
    seeds : ndarray (n, 2)
        Seed coordinates, each strictly inside its parent; every parent has one at least.
    seed_parent : ndarray (n,) of int
        Index of each seed's parent.

    Returns
    -------
    cells : ndarray of Polygon, one per seed
        Cell ``i`` is the Voronoi cell of seed ``i`` within its parent; a part cut
        off from the seed by the parent's outline goes to the sibling sharing the
        longest border with it (or, if none touches it along a line, the
        neighbour that does), so every cell is a single polygon.
    """
    order = np.argsort(seed_parent, kind="stable")
    bounds = np.searchsorted(seed_parent[order], np.arange(len(parents) + 1))
    lines = [shapely.boundary(parents)]
    multi = [p for p in range(len(parents)) if bounds[p + 1] - bounds[p] > 1]
    if multi:
        pick = np.concatenate([order[bounds[p]:bounds[p + 1]] for p in multi])
        which = np.repeat(np.arange(len(multi)), [bounds[p + 1] - bounds[p] for p in multi])
        clouds = shapely.multipoints(shapely.points(seeds[pick]), indices=which)
        edges = shapely.voronoi_polygons(clouds, only_edges=True, extend_to=parents[multi])
        lines.append(shapely.intersection(edges, parents[multi]))
    parts = shapely.get_parts(np.concatenate(lines))
    parts = parts[np.isin(shapely.get_type_id(parts), (1, 2))]  # drop touch points of the clipping
    noded = shapely.union_all(parts, grid_size=GRID_SIZE_M)
    faces = np.asarray(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    probe = shapely.get_coordinates(shapely.point_on_surface(faces))

    # The parent of a face: the one containing its interior point (lowest index on a tie).
    tree = shapely.STRtree(parents)
    fi, pi = tree.query(shapely.points(probe), predicate="within")
    face_parent = np.full(len(faces), len(parents))
    np.minimum.at(face_parent, fi, pi)
    lost = np.flatnonzero(face_parent == len(parents))
    if lost.size:  # only sub-millimetre faces can miss every parent
        face_parent[lost] = tree.query_nearest(shapely.points(probe[lost]), all_matches=False)[1]

    # The owner of a face: the nearest seed of its parent, i.e. the Voronoi cell it lies in.
    owner = np.empty(len(faces), int)
    forder = np.argsort(face_parent, kind="stable")
    fbounds = np.searchsorted(face_parent[forder], np.arange(len(parents) + 1))
    for p in range(len(parents)):
        f = forder[fbounds[p]:fbounds[p + 1]]
        s = order[bounds[p]:bounds[p + 1]]
        if len(f) == 0:
            continue
        if len(s) == 1:
            owner[f] = s[0]
            continue
        d2 = ((probe[f, None, :] - seeds[None, s, :]) ** 2).sum(axis=2)
        owner[f] = s[d2.argmin(axis=1)]
    return _cells_from_faces(faces, probe, owner, seeds, seed_parent)


def _cells_from_faces(faces, probe, owner, seeds, seed_parent):
    n = len(seeds)
    members = [[] for _ in range(n)]
    for f, o in enumerate(owner):
        members[o].append(f)
    if any(not m for m in members):
        raise RuntimeError("a seed got no face: seeds must lie strictly inside their parents")
    cells = np.array([_union(faces[m]) for m in members])
    # A Voronoi cell clipped to a non-convex parent can fall apart: give away the parts
    # that do not hold the seed. One move can unblock another, hence the rounds.
    for _ in range(10):
        split = np.flatnonzero(shapely.get_num_geometries(cells) > 1)
        if not split.size:
            return cells
        tree = shapely.STRtree(cells)
        changed = set()
        for c in split:
            parts = shapely.get_parts(cells[c])
            holds = shapely.contains_xy(parts, *seeds[c])
            keep = int(np.argmax(holds)) if holds.any() else int(np.argmax(shapely.area(parts)))
            for j, part in enumerate(parts):
                if j == keep:
                    continue
                near = tree.query(part)
                near = near[near != c]
                shared = _shared_border(part, cells[near])
                sibling = seed_parent[near] == seed_parent[c]
                pick = np.where(sibling, shared, 0.0)
                if pick.max(initial=0) == 0:
                    pick = shared  # no sibling along a line: any neighbour rather than a split cell
                if pick.max(initial=0) == 0:
                    continue
                dest = int(near[int(np.argmax(pick))])
                moved = {f for f in members[c] if shapely.contains_xy(part, *probe[f])}
                members[c] = [f for f in members[c] if f not in moved]
                members[dest] = sorted(members[dest] + sorted(moved))
                changed.update((c, dest))
        for c in changed:
            cells[c] = _union(faces[members[c]])
    raise RuntimeError("could not make every cell a single polygon")


def merge_small(cells: np.ndarray, cell_parent: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge each flagged cell into the sibling sharing the longest border with it.

    Parameters
    ----------
    cells : ndarray of Polygon
        A valid coverage.
    cell_parent : ndarray of int
    keep : ndarray of bool
        False for the cells to merge away (e.g. slivers left at a parent's outline).
        A flagged cell with no sibling along a line is kept.

    Returns
    -------
    cells : ndarray of Polygon
        The surviving cells (a union of a survivor and the cells merged into it).
    alive : ndarray of bool
        Which of the input cells survive.
    """
    cells = cells.copy()
    alive = np.ones(len(cells), bool)
    tree = shapely.STRtree(cells)
    for c in np.flatnonzero(~keep):
        near = tree.query(cells[c])
        near = near[(near != c) & alive[near] & keep[near] & (cell_parent[near] == cell_parent[c])]
        if not near.size:
            continue
        shared = _shared_border(cells[c], cells[near])
        if shared.max(initial=0) == 0:
            continue
        dest = int(near[int(np.argmax(shared))])
        merged = shapely.coverage_union_all([cells[dest], cells[c]])
        if shapely.get_num_geometries(merged) != 1:
            continue
        cells[dest] = merged
        alive[c] = False
    return cells, alive


def dissolve(cells: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Union the cells of each group (``coverage_union_all``: exact on a valid coverage).

    Returns
    -------
    ndarray of geometry, one per group (empty polygon for a group without cells)
    """
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(n_groups + 1))
    out = np.empty(n_groups, dtype=object)
    for g in range(n_groups):
        members = cells[order[bounds[g]:bounds[g + 1]]]
        out[g] = _union(members) if len(members) else shapely.Polygon()
    return out
