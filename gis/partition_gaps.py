"""Gaps and spills of a level: against its parents, or against an outline (or none) when it has no parents.

Used by :func:`gis.partition_checks.check_level` once the edges are matched; see its module for the plan.
"""
from __future__ import annotations

import numpy as np
import shapely

from gis import partition_edges as edges
from gis import partition_geometry as geo
from gis.partition_records import Problem

__all__ = ["level_gaps", "parent_gaps_and_spills", "spill_problems", "bordering"]


def bordering(tree, work, pieces, tol):
    """For each piece, the indices of the cells sharing a stretch of border with it (not just a corner).

    Returns ``(piece_index, cell_index)`` pairs.
    """
    if len(pieces) == 0:
        return np.array([], dtype=np.intp), np.array([], dtype=np.intp)
    reach = max(tol.noise_m, 1e-6)
    q, t = tree.query(pieces, predicate="dwithin", distance=reach)
    if len(q):
        with np.errstate(all="ignore"):
            shared = geo.shared_length(pieces[q], work[t], reach)
        keep = shared > 2 * reach
        q, t = q[keep], t[keep]
    return q, t


def level_gaps(codes, work, tree, border, examined, outline, level, tol):
    """Gaps (and spills over the outline) of a level checked without parents.

    Without overlaying the cells: the boundary of every gap is made of lone edges with nothing beyond them
    (``border``), or of edges of the suspect cells (``examined``), which are taken whole because a
    neighbour may cover part of an edge and leave the rest open. Those lines, with the outline, are noded
    and polygonised; a face with no cell over it (and inside the outline) is a gap.
    """
    present = ~shapely.is_missing(work)
    if not present.any():
        return []
    lines = [shapely.linestrings(border.xy.reshape(-1, 2, 2))]
    if examined:
        lines.append(shapely.boundary(work[sorted(examined)]))
    with np.errstate(all="ignore"):
        if outline is not None:
            outline = geo.polygonal(shapely.make_valid(outline))
        if outline is not None:
            lines.append(np.array([shapely.boundary(outline)], dtype=object))
        noded = _node(np.concatenate(lines))
        faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    inside = shapely.point_on_surface(faces)
    open_ = np.ones(len(faces), dtype=bool)
    open_[tree.query(inside, predicate="intersects")[0]] = False
    if outline is not None:
        open_ &= shapely.contains(outline, inside)
    problems = []
    pieces, _ = geo.polygon_pieces(faces[open_], tol.noise_m)
    q, t = bordering(tree, work, pieces, tol)
    for k, piece in enumerate(pieces):
        near = tuple(sorted(set(codes[t[q == k]])))
        problems.append(Problem("gap", level, near, float(piece.area), None, piece,
                                "gap {size}" + (f" next to {', '.join(near[:6])}" if near else "")
                                + (" …" if len(near) > 6 else "")))
    if outline is not None:
        idx = np.flatnonzero(present)
        with geo.prepared([outline]):
            out = idx[~shapely.covers(outline, work[idx])]
        if len(out):
            pieces, owner = geo.polygon_pieces(geo.overlay("difference", work[out], outline), tol.noise_m)
            problems += spill_problems(codes, out, pieces, owner, None, level)
    return problems


def spill_problems(codes, cell_idx, pieces, owner, parent_code, level):
    problems = []
    for k in np.unique(owner):
        i = cell_idx[k]
        mine = pieces[owner == k]
        geom = mine[0] if len(mine) == 1 else shapely.multipolygons(mine)
        where = f"its parent {parent_code[k]}" if parent_code is not None else "the outline"
        problems.append(Problem("spill", level, (codes[i],), float(shapely.area(mine).sum()), None, geom,
                                f"{codes[i]} spills over {where}: {{size}}",
                                None if parent_code is None else parent_code[k]))
    return problems


def parent_gaps_and_spills(codes, work, tree, seg, owner_parent, parent_codes, parent_work, level, tol):
    """Gaps inside each parent and spills over it, overlaying only the parents whose edges do not match
    the outer edges of their children."""
    has_parent = owner_parent[seg.owner] >= 0
    child_seg = seg.take(has_parent)
    group = owner_parent[child_seg.owner]
    pseg = edges.segments(parent_work)
    # a parent's edge stands for "outside": it must meet a child's edge with the child on the other side
    pseg.side = -pseg.side
    both = edges.Segments.concat([child_seg, pseg])
    matched, _ = edges.match(both, np.r_[group, pseg.owner])
    flagged = set(np.r_[group, pseg.owner][~matched].tolist())
    n_parents = len(parent_work)
    with_children = np.zeros(n_parents, dtype=bool)
    with_children[owner_parent[owner_parent >= 0]] = True
    flagged |= set(np.flatnonzero(~with_children).tolist())
    flagged = sorted(g for g in flagged if parent_work[g] is not None)
    if not flagged:
        return []
    problems = []
    children = {g: [] for g in flagged}
    for i in np.flatnonzero(np.isin(owner_parent, flagged)):
        if work[i] is not None:
            children[owner_parent[i]].append(i)
    # Children whose outer vertices their parent lacks have borders that nearly coincide with the parent's,
    # where exact overlays are slow. A gap or spill wider than the noise survives against the parent eroded,
    # or grown, by half the noise, whose border keeps apart from the children's: only where something
    # survives are the exact differences taken.
    half = tol.noise_m / 2.0
    outlines = parent_work[flagged]
    with np.errstate(all="ignore"):
        unions = np.array([shapely.union_all(work[children[g]]) if children[g] else shapely.Polygon()
                           for g in flagged], dtype=object)
        eroded = shapely.buffer(outlines, -half, join_style="mitre") if half > 0 else outlines
        grown = shapely.buffer(outlines, half, quad_segs=2) if half > 0 else outlines
        try:   # a gap w wide along the parent's border leaves w - noise/2 > noise/2 here; the hair-thin slits
               # in unions of children with nearly coincident borders are far thinner
            open_ = np.unique(geo.polygon_pieces(shapely.difference(eroded, unions), half)[1])
        except shapely.errors.GEOSException:
            open_ = np.arange(len(flagged))
    pieces, owner = _group_gaps([flagged[k] for k in open_], unions[open_], children, work, parent_work, tree, tol)
    q, t = bordering(tree, work, pieces, tol)
    for k, piece in enumerate(pieces):
        g = flagged[open_[owner[k]]]
        near = tuple(sorted({codes[c] for c in t[q == k] if owner_parent[c] == g}))
        problems.append(Problem("gap", level, near, float(piece.area), None, piece,
                                f"gap {{size}} inside {parent_codes[g]}"
                                + (f" next to {', '.join(near[:6])}" if near else ", which has no children here")
                                + (" …" if len(near) > 6 else ""), parent_codes[g]))
    grown_of = dict(zip(flagged, grown))
    kids = np.array([i for g in flagged for i in children[g]], dtype=np.intp)
    if len(kids):
        out = kids[~shapely.covers(parent_work[owner_parent[kids]], work[kids])]
        with geo.prepared(grown):
            out = out[~shapely.covers(np.array([grown_of[owner_parent[i]] for i in out], dtype=object), work[out])]
        if len(out):
            outside = geo.overlay("difference", work[out], parent_work[owner_parent[out]])
            pieces, owner = geo.polygon_pieces(outside, tol.noise_m)
            problems += spill_problems(codes, out, pieces, owner, parent_codes[owner_parent[out]], level)
    return problems


def _group_gaps(groups, unions, children, work, parent_work, tree, tol, grid=None):
    """Gap pieces of some parents: each parent minus the union of its children (``unions``).

    Each piece is checked against the children themselves (a point inside it must lie in none of them);
    a parent whose pieces fail is done again with snap-rounding on the micrometre grid.
    Returns ``(pieces, owner)``, owner indexing ``groups``.
    """
    if not len(groups):
        return np.array([], dtype=object), np.array([], dtype=np.intp)
    with np.errstate(all="ignore"):
        if grid is not None:
            unions = np.array([shapely.union_all(work[children[g]], grid_size=grid) if children[g]
                               else shapely.Polygon() for g in groups], dtype=object)
        gaps = shapely.difference(parent_work[groups], unions, grid_size=grid)
    pieces, owner = geo.polygon_pieces(gaps, tol.noise_m)
    if grid is None and len(pieces):
        pts = shapely.point_on_surface(pieces)
        q, t = tree.query(pts, predicate="within")
        bad = {owner[k] for k, c in zip(q, t) if c in children[groups[owner[k]]]}
        bad |= set(owner[~shapely.covers(parent_work[np.asarray(groups)[owner]], pts)].tolist())
        if bad:
            redo = sorted(bad)
            again, again_owner = _group_gaps([groups[k] for k in redo], None, children, work, parent_work, tree,
                                             tol, grid=geo.GRID_M)
            keep = ~np.isin(owner, redo)
            pieces = np.r_[pieces[keep], again]
            owner = np.r_[owner[keep], np.asarray(redo, dtype=np.intp)[again_owner]]
    return pieces, owner


def _node(lines):
    """Lines noded together (every crossing a vertex), for polygonising."""
    with np.errstate(all="ignore"):
        try:
            return shapely.union_all(lines)
        except shapely.errors.GEOSException:
            return shapely.union_all(lines, grid_size=geo.GRID_M)
