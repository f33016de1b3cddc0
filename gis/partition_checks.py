"""Partition integrity: find the overlaps, gaps, slivers, spills and code errors of a grid partition.

"全覆盖、无缝隙": at every level each point of the city belongs to exactly one grid. This module is the
pure spatial core (no database, no files): it takes the cells of a level as arrays of codes and shapely
geometries in a planar CRS in metres (project first, with :mod:`gis.crs`; densify lines drawn in degrees
before projecting them, or their straight edges bend apart by up to a metre over 10 km) and returns
:class:`Problem` records (:mod:`gis.partition_records`), each with its cells, size, width, a geometry to
show and one readable sentence. Gaps and spills are in :mod:`gis.partition_gaps`, the incremental check of
one cell in :mod:`gis.partition_cell`, the code checks in :mod:`gis.partition_codes`.

How it stays fast (100,000 cells in about a second):

* Cells that share their borders vertex for vertex are recognised by matching edge segments in numpy
  (:mod:`gis.partition_edges`). Only a cell with an edge that has no twin on the other side, where a
  point just outside that edge lies in another cell, or an edge that two cells have on the same side, is
  intersected with its neighbours (and the partners of a real overlap in turn).
* Gaps without parents: the edges with nothing beyond them, and the suspects' outlines, are noded and
  polygonised; a face no cell covers is a gap. No union of all cells is built.
* Children are matched against their parent's edges the same way; only the parents whose edges do not
  match their children's outer edges are overlaid (union of the children, differences) for gaps and spills.
* Widths are bounded cheaply (2A/P <= width <= 2 sqrt(A/pi)); erosions or inscribed circles are computed
  only for the pieces the bounds cannot decide, and for the reported ones.
* Overlays run in floating point and are redone snapped to a micrometre grid where a result is implausible.

Noise: an overlap, gap or spill piece no wider than ``Tolerances.noise_m`` (1 cm) anywhere - one exactly
1 cm wide included - is never reported; real boundary data is full of them. So is a part of a multi-part
cell that thin; a whole cell that thin is a sliver.
"""
from __future__ import annotations

import numpy as np
import shapely

from gis import partition_edges as edges
from gis import partition_geometry as geo
from gis.partition_codes import as_codes, code_problems, parent_problems
from gis.partition_gaps import level_gaps, parent_gaps_and_spills
from gis.partition_records import PROBLEM_TYPES, Cells, Problem, Tolerances, finish_problems

__all__ = ["Tolerances", "Cells", "Problem", "PROBLEM_TYPES", "check_level", "check_partition", "check_cell",
           "summarize"]


def geometry_problems(codes, geoms, level):
    """invalid, empty and multipart Problems, and the working geometries (see ``check_geometries``)."""
    work, findings = geo.check_geometries(geoms)
    return work, [Problem(kind, level, (codes[i],), area, None, geom, detail)
                  for i, kind, geom, detail, area in findings]


def _records(found, level):
    return [Problem(kind, level, (code,), None, None, geom, detail) for kind, code, geom, detail in found]


# --- one level ---------------------------------------------------------------------------------------------

def check_level(cells: Cells, parents: Cells | None = None, *, outline=None, tol: Tolerances = Tolerances(),
                other_levels: dict | None = None, code_layout: bool = True, code_prefix: bool = True):
    """Every problem of one level.

    Parameters
    ----------
    cells : Cells
    parents : Cells, optional
        The level above. Gaps are the parts of a parent not covered by its children, spills the parts of
        a child outside its parent; a child whose parent is missing is an orphan.
    outline : polygon, optional
        What the level must cover when there are no parents (e.g. the district outline). With neither,
        gaps are the holes inside the union of the cells (a file alone has no parent).
    tol : Tolerances
    other_levels : dict of int to set of str, optional
        Codes of the other levels: a parent code found only there is a ``wrong_parent_level``.
    code_layout, code_prefix : bool
        Check codes against the national layout (digits, 6/9/12/15 long) and that a child's code starts
        with its parent's. Turn off for non-Chinese codes.

    Returns
    -------
    list of Problem, ordered by type then codes.
    """
    level = cells.level
    codes = as_codes(cells.codes)
    work, problems = geometry_problems(codes, cells.geoms, level)
    problems += _records(code_problems(codes, work, level, layout=code_layout), level)
    parent_work = parent_codes = None
    if parents is not None:
        parent_codes = as_codes(parents.codes)
        parent_work, _ = geo.check_geometries(parents.geoms)
    owner_parent, found = parent_problems(codes, cells.parent_codes, work, level, parent_codes, parent_work,
                                          other_levels, prefix=code_prefix)
    problems += _records(found, level)
    with geo.prepared(work), geo.prepared(parent_work if parent_work is not None else []):
        problems += _spatial(codes, work, parent_codes, parent_work, owner_parent, outline, level, tol)
    return finish_problems(problems)


def _spatial(codes, work, parent_codes, parent_work, owner_parent, outline, level, tol):
    """Overlaps, gaps, spills and slivers (the cells and parents are prepared)."""
    tree = shapely.STRtree(work)
    seg = edges.segments(work)
    matched, bad = edges.match(seg)
    # A lone edge (no twin on the other side) either borders the union - nothing lies beyond it - or
    # meets a neighbour whose vertices differ or which overlaps: a point just outside it tells which.
    lone = seg.take(~matched & ~bad)
    points = edges.outside_points(lone)
    hit_pt, hit_cell = tree.query(points)
    # the owner is left out: the point is outside it by construction (and testing a comb-shaped cell
    # against the points off its own teeth costs minutes)
    other = hit_cell != lone.owner[hit_pt]
    hit_pt, hit_cell = hit_pt[other], hit_cell[other]
    inside = shapely.intersects(work[hit_cell], points[hit_pt])
    hit_pt, hit_cell = hit_pt[inside], hit_cell[inside]
    beyond_covered = np.zeros(len(lone.owner), dtype=bool)
    beyond_covered[hit_pt] = True
    suspects = np.unique(np.r_[lone.owner[hit_pt], hit_cell, seg.owner[bad]])
    examined, problems = _overlaps(codes, work, tree, suspects, level, tol)
    if parent_work is not None:
        problems += parent_gaps_and_spills(codes, work, tree, seg, owner_parent, parent_codes, parent_work,
                                            level, tol)
    else:
        problems += level_gaps(codes, work, tree, lone.take(~beyond_covered), examined, outline, level, tol)
    return problems + sliver_problems(codes, work, level, tol)


def _overlaps(codes, work, tree, suspects, level, tol):
    """Overlapping pairs, looked for only around edges that do not match.

    A lone edge whose outside lies in another cell, or an edge that two cells have on the same side, marks
    both cells as suspects; every suspect is intersected with the cells it touches, and the partners of a
    real overlap become suspects in turn (so that a doubly-tiled area is found in full).
    """
    examined, done, problems = set(), set(), []
    frontier = np.asarray(suspects, dtype=np.intp)
    while len(frontier):
        examined.update(frontier.tolist())
        q, t = tree.query(work[frontier], predicate="intersects")
        a, b = frontier[q], t
        a, b = np.minimum(a, b), np.maximum(a, b)
        keep = a != b
        pairs = np.unique(np.c_[a[keep], b[keep]], axis=0) if keep.any() else np.zeros((0, 2), dtype=np.intp)
        pairs = np.array([p for p in pairs.tolist() if tuple(p) not in done], dtype=np.intp).reshape(-1, 2)
        done.update(map(tuple, pairs.tolist()))
        if not len(pairs):
            break
        inter = geo.overlay("intersection", work[pairs[:, 0]], work[pairs[:, 1]])
        pieces, owner = geo.polygon_pieces(inter, tol.noise_m)
        new = set()
        for k in np.unique(owner):
            i, j = pairs[k]
            mine = pieces[owner == k]
            geom = mine[0] if len(mine) == 1 else shapely.multipolygons(mine)
            area = float(shapely.area(mine).sum())
            problems.append(Problem("overlap", level, tuple(sorted((codes[i], codes[j]))), area, None, geom,
                                    f"{codes[i]} and {codes[j]} overlap: {{size}}"))
            new.update((int(i), int(j)))
        frontier = np.array(sorted(new - examined), dtype=np.intp)
    return examined, problems


def sliver_problems(codes, work, level, tol):
    """Cells, and parts of multi-part cells, smaller or thinner than the sliver tolerances."""
    idx = np.flatnonzero(~shapely.is_missing(work))
    if not len(idx):
        return []
    if (shapely.get_type_id(work[idx]) == 3).all():
        parts, owner = work[idx], np.arange(len(idx))
    else:
        parts, owner = shapely.get_parts(work[idx], return_index=True)
    area = shapely.area(parts)
    thin = area < tol.sliver_area_m2
    thin[~thin] = ~geo.wider_than(parts[~thin], tol.sliver_width_m)
    # a part no wider than the noise, beside others, is dust (quantised or overlaid coordinates); a whole
    # cell that thin is still a sliver cell
    dust = thin & (np.bincount(owner, minlength=len(idx))[owner] > 1)
    dust[dust] = ~geo.wider_than(parts[dust], tol.noise_m)
    thin &= ~dust
    n_parts_of = np.bincount(owner[~dust], minlength=len(idx))
    problems = []
    for k in np.unique(owner[thin]):
        i = idx[k]
        n_parts = int(n_parts_of[k])
        mine = np.flatnonzero((owner == k) & thin)
        if len(mine) == n_parts:
            problems.append(Problem("sliver", level, (codes[i],), float(area[mine].sum()), None, work[i],
                                    f"sliver cell {codes[i]}: {{size}}"))
            continue
        for m in mine:
            problems.append(Problem("sliver", level, (codes[i],), float(area[m]), None, parts[m],
                                    f"sliver part of {codes[i]} (1 of {n_parts} parts): {{size}}"))
    return problems


# --- all levels, one cell, a summary ---------------------------------------------------------------------------

def check_partition(levels: dict, *, tol: Tolerances = Tolerances(), **options):
    """Every level against the level above it (level 0, or the top level given, on its own).

    Parameters
    ----------
    levels : dict of int to Cells
    options
        Passed to :func:`check_level` (``code_layout``, ``code_prefix``).
    """
    codes = {lvl: set(as_codes(c.codes).tolist()) for lvl, c in levels.items()}
    problems = []
    for lvl in sorted(levels):
        problems += check_level(levels[lvl], levels.get(lvl - 1), tol=tol, other_levels=codes, **options)
    return problems


def summarize(problems):
    """``{type: {"count": n, "area_m2": total}}`` for the types present, in the order of PROBLEM_TYPES."""
    out = {}
    rank = {t: i for i, t in enumerate(PROBLEM_TYPES)}
    for p in sorted(problems, key=lambda p: rank.get(p.type, len(rank))):
        entry = out.setdefault(p.type, {"count": 0, "area_m2": 0.0})
        entry["count"] += 1
        entry["area_m2"] += float(p.area_m2 or 0.0)
    return out



def check_cell(code, geom, cells: Cells, parents: Cells | None = None, *, tol: Tolerances = Tolerances(),
               old_geom=None):
    """Incremental check of one edited (or new) cell, for the boundary editor.

    Parameters
    ----------
    code : str
    geom : shapely geometry
        The new outline, metric CRS.
    cells : Cells
        Same-level cells near it; an entry with the same code is its old outline (replaced by ``geom``).
    parents : Cells, optional
        Its parent, or the parents near it (the one its old entry names, else the one it overlaps most).
    old_geom : shapely geometry, optional
        The old outline, if ``cells`` does not hold it.

    Returns
    -------
    list of Problem
        Only those the cell takes part in: its validity, overlaps with its neighbours, gaps it leaves
        against its siblings inside its parent (near it), its spill over the parent, sliver.
    """
    from gis.partition_cell import check_one  # its own module; imported here to keep the import graph a tree

    return finish_problems(check_one(code, geom, cells, parents, tol=tol, old_geom=old_geom))
