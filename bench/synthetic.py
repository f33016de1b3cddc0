"""A synthetic partition for benchmarks: a jittered lattice of Voronoi cells in metres, with defects
injected where we know them, so that a check can be held to finding every one."""
from dataclasses import dataclass

import numpy as np
import shapely

ORIGIN = (480_000.0, 3_830_000.0)  # EPSG:4547 near Zhengzhou


@dataclass
class Partition:
    codes: np.ndarray
    geoms: np.ndarray
    outline: object
    injected: dict      # type -> list of codes that carry that defect


def lattice_partition(n_cells, *, spacing=100.0, seed=7):
    """About ``n_cells`` Voronoi cells of ~spacing² m² tiling a square outline exactly."""
    side = int(np.ceil(np.sqrt(n_cells)))
    rng = np.random.default_rng(seed)
    ix, iy = np.meshgrid(np.arange(side), np.arange(side))
    x = ORIGIN[0] + (ix.ravel() + 0.5 + rng.uniform(-0.3, 0.3, side * side)) * spacing
    y = ORIGIN[1] + (iy.ravel() + 0.5 + rng.uniform(-0.3, 0.3, side * side)) * spacing
    outline = shapely.box(ORIGIN[0], ORIGIN[1], ORIGIN[0] + side * spacing, ORIGIN[1] + side * spacing)
    regions = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(np.c_[x, y]), extend_to=outline,
                                                         ordered=True))
    cells = shapely.intersection(regions, outline)
    codes = np.array([f"{100000 + i}" for i in range(len(cells))], dtype=object)
    return Partition(codes, cells, outline, {})


def inject_defects(part, *, count=20, seed=11):
    """``count`` each of overlaps (a cell grown by 2 m), gaps (a cell shrunk by 2 m) and sliver cells
    (a 0.5 m strip cut off a cell as a cell of its own), on cells far apart."""
    rng = np.random.default_rng(seed)
    n = len(part.geoms)
    picks = rng.choice(np.arange(n // 10, n - n // 10), size=3 * count, replace=False)
    geoms, codes = part.geoms.copy(), list(part.codes)
    injected = {"overlap": [], "gap": [], "sliver": []}
    for i in picks[:count]:
        geoms[i] = shapely.buffer(geoms[i], 2.0, join_style="mitre")
        injected["overlap"].append(codes[i])
    for i in picks[count:2 * count]:
        geoms[i] = shapely.buffer(geoms[i], -2.0, join_style="mitre")
        injected["gap"].append(codes[i])
    slivers = []
    for k, i in enumerate(picks[2 * count:]):
        x0, y0, x1, y1 = shapely.bounds(geoms[i])
        strip = shapely.intersection(geoms[i], shapely.box(x0, y0, x0 + 0.5, y1))
        geoms[i] = shapely.difference(geoms[i], strip)
        slivers.append(strip)
        codes.append(f"{900000 + k}")
        injected["sliver"].append(codes[-1])
    return Partition(np.array(codes, dtype=object), np.concatenate([geoms, np.array(slivers, dtype=object)]),
                     part.outline, injected)
