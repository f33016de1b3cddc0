"""The incremental check of one edited cell (:func:`gis.partition_checks.check_cell`).

It runs on every save in the boundary editor, so it only looks at the cell and the few neighbours the
caller fetched near it: tens of polygons, a few milliseconds.
"""
from __future__ import annotations

import numpy as np
import shapely

from gis import partition_geometry as geo
from gis.partition_checks import geometry_problems, sliver_problems
from gis.partition_gaps import spill_problems
from gis.partition_records import Problem
from gis.partition_codes import as_codes

__all__ = ["check_one"]


def check_one(code, geom, cells, parents, *, tol, old_geom=None):
    """Problems the edited cell takes part in; widths are filled in by the caller."""
    level = cells.level
    code = as_codes([code])[0]
    work, problems = geometry_problems(np.array([code], dtype=object), [geom], level)
    new = work[0]
    if new is None:
        return problems
    codes = as_codes(cells.codes)
    near, _ = geo.check_geometries(cells.geoms)
    parent_of = as_codes(cells.parent_codes) if cells.parent_codes is not None else None
    mine = codes == code
    olds = [g for g in near[mine] if g is not None]
    if old_geom is not None:
        olds += [g for g in [geo.polygonal(shapely.make_valid(old_geom))] if g is not None]
    with np.errstate(all="ignore"):
        old = shapely.union_all(olds) if olds else None
    own_parent = next((p for p in parent_of[mine] if p), None) if parent_of is not None else None

    others = ~mine & np.array([g is not None for g in near], dtype=bool)
    n_codes, n_geoms = codes[others], near[others]
    n_parents = parent_of[others] if parent_of is not None else None
    with geo.prepared([new]), np.errstate(all="ignore"):
        problems += _overlaps(code, new, n_codes, n_geoms, level, tol)
        parent, parent_code = _parent(new, own_parent, parents)
        if parent is not None and not shapely.covers(parent, new):
            pieces, owner = geo.polygon_pieces(geo.overlay("difference", new, parent), tol.noise_m)
            problems += spill_problems(np.array([code], dtype=object), np.array([0]), pieces, owner,
                                       np.array([parent_code], dtype=object), level)
        problems += _gaps(code, new, old, parent, parent_code, n_codes, n_geoms, n_parents, level, tol)
    problems += sliver_problems(np.array([code], dtype=object), work, level, tol)
    return problems


def _overlaps(code, new, n_codes, n_geoms, level, tol):
    hit = np.flatnonzero(shapely.intersects(new, n_geoms))
    if not len(hit):
        return []
    pieces, owner = geo.polygon_pieces(geo.overlay("intersection", new, n_geoms[hit]), tol.noise_m)
    problems = []
    for k in np.unique(owner):
        other = n_codes[hit[k]]
        mine = pieces[owner == k]
        problems.append(Problem("overlap", level, tuple(sorted((code, other))), float(shapely.area(mine).sum()),
                                None, mine[0] if len(mine) == 1 else shapely.multipolygons(mine),
                                f"{code} and {other} overlap: {{size}}"))
    return problems


def _parent(new, own_parent, parents):
    """The parent the cell's old entry names; else the only parent given; else the one it overlaps most."""
    if parents is None or len(parents.codes) == 0:
        return None, own_parent
    codes = as_codes(parents.codes)
    geoms, _ = geo.check_geometries(parents.geoms)
    present = np.array([g is not None for g in geoms], dtype=bool)
    if own_parent is not None:
        idx = np.flatnonzero((codes == own_parent) & present)
        if len(idx):
            return geoms[idx[0]], own_parent
    idx = np.flatnonzero(present)
    if not len(idx):
        return None, own_parent
    if len(idx) > 1:
        idx = idx[[int(np.argmax(shapely.area(shapely.intersection(new, geoms[idx]))))]]
    return geoms[idx[0]], codes[idx[0]]


def _gaps(code, new, old, parent, parent_code, n_codes, n_geoms, n_parents, level, tol):
    """Gaps next to the cell, or left where it used to be, inside its parent and the box around its old and
    new outlines (the neighbours the caller fetched cover that box; beyond it we cannot tell a gap)."""
    if parent is not None:
        box = shapely.bounds(new if old is None else shapely.union(new, old))
        region = shapely.clip_by_rect(parent, *box)
    else:
        region = old          # without a parent, only what the cell gave up must stay covered
    if region is None or region.is_empty:
        return []
    siblings = np.ones(len(n_codes), dtype=bool)
    if n_parents is not None and parent_code:
        siblings = (n_parents == parent_code) | (n_parents == "")
    siblings &= shapely.intersects(region, n_geoms)
    mine = np.r_[np.array([new], dtype=object), n_geoms[siblings]]
    pieces = _open_pieces(region, mine, tol)
    reach = max(tol.noise_m, 1e-6)
    keep = shapely.dwithin(pieces, new, reach)
    if old is not None:
        keep |= shapely.area(shapely.intersection(pieces, old)) > 0
    problems = []
    for piece in pieces[keep]:
        touching = np.flatnonzero(siblings)
        touching = touching[shapely.dwithin(n_geoms[touching], piece, reach)]
        shared = geo.shared_length(np.array([piece] * len(touching), dtype=object), n_geoms[touching], reach)
        near = n_codes[touching[shared > 2 * reach]]
        involved = tuple(sorted({code, *near.tolist()}))
        where = f" inside {parent_code}" if parent_code else ""
        problems.append(Problem("gap", level, involved, float(piece.area), None, piece,
                                f"gap {{size}}{where} next to {', '.join(involved)}", parent_code))
    return problems


def _open_pieces(region, cells, tol):
    """The parts of ``region`` no cell covers, wider than the noise; snapped to the grid if a floating
    overlay gave a piece that a cell does cover."""
    for grid in (None, geo.GRID_M):
        with np.errstate(all="ignore"):
            covered = shapely.union_all(cells, grid_size=grid)
            pieces, _ = geo.polygon_pieces([shapely.difference(region, covered, grid_size=grid)], tol.noise_m)
        if not len(pieces) or grid is not None:
            return pieces
        pts = shapely.point_on_surface(pieces)
        if not shapely.within(pts[:, None], cells[None, :]).any():
            return pieces
    return pieces
