"""Proposed repairs of gaps, overlaps, slivers (and spills) found by :mod:`gis.partition_checks`.

The rules, applied in this order, each on top of the results of the ones before:

1. **Spill** (only if such problems are passed): the part of a cell outside its parent is cut from it.
2. **Overlap** of cells A and B: the overlapping piece is cut from one of them.

   * If A and B have different parents, the part of the piece inside A's parent is cut from B and the
     part inside B's parent from A: each parent's territory goes to its own child.
   * The rest (all of it when A and B share a parent) is cut from the cell whose own boundary makes up
     the larger part of the piece's boundary: the one that pokes into the other (a bump drawn into a
     neighbour is cut off again).
     Ties (e.g. two identical cells) go against the higher code. A cell cut down to nothing is deleted.
   * Only what the other cell still covers is cut, so that when three cells overlap in one place the
     last of them keeps it.

3. **Sliver** cell: merged into the neighbour with the same parent that shares the longest border with it
   (cells that are not slivers themselves first; ties: the lower code). A sliver *part* of a multi-part
   cell is given to such a neighbour, and the rest of the cell stays.
4. **Gap**: given to the neighbour with the same parent (the gap's parent) that shares the longest border
   with it, after slivers are merged (a gap next to a merged sliver goes to its heir). Cells of other
   parents that spill into the gap are cut back from it, so the gap is not turned into an overlap.
5. **Slivers the repairs leave** (a neighbour cut back at a sharp corner can keep a crumb of itself) are
   merged by rule 3 in another round, up to four rounds.

Repairs compose: each is proposed on the results of the ones before it, and records its steps;
:func:`apply_repairs` replays the steps of the repairs it is given on the current geometries, so any subset,
in the proposed order, gives a consistent partition. Pieces that overlays leave no wider than the noise are
dropped from the results; a cell cut down to nothing of that width is deleted.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from gis import partition_geometry as geo
from gis.partition_checks import sliver_problems
from gis.partition_codes import as_codes
from gis.partition_records import Cells, Problem, Tolerances, finish_problems

__all__ = ["Repair", "propose_repairs", "apply_repairs"]

_ORDER = {"spill": 0, "overlap": 1, "sliver": 2, "gap": 3}
_ROUNDS = 4   # of merging the slivers that repairs leave behind


@dataclass
class Repair:
    """One proposed repair.

    Attributes
    ----------
    problem : Problem
    action : str
        e.g. "give gap to 410105001002", "cut overlap from 410105001001".
    changes : dict
        code -> new geometry (None: the cell is deleted, merged away), as this repair leaves them on top
        of the repairs proposed before it.
    steps : tuple
        The edits, replayed by :func:`apply_repairs` (an addition to the published interface):
        ``("add", code, piece)``, ``("cut", code, piece, keeper or None)``, ``("merge", code, heir)``,
        ``("move", code, part, heir)``.
    """

    problem: Problem
    action: str
    changes: dict
    steps: tuple = field(default=())


class _State:
    """Current geometry of each code while repairs are proposed or replayed."""

    def __init__(self, cells: Cells, noise_m):
        codes = as_codes(cells.codes)
        work, _ = geo.check_geometries(cells.geoms)
        self.geom = {}
        for code, g in zip(codes, work):
            self.geom.setdefault(code, g)   # a duplicated code: the first cell (codes must be fixed first)
        self.merged = {}
        self.changed = set()
        self.noise_m = noise_m

    def heir_of(self, code):
        seen = set()
        while code in self.merged and code not in seen:
            seen.add(code)
            code = self.merged[code]
        return code

    def get(self, code):
        return self.geom.get(self.heir_of(code))

    def set(self, code, geom):
        if geom is not None and not shapely.is_empty(geom):
            geom = _tidy(geom, self.noise_m)
        else:
            geom = None
        self.geom[code] = geom
        self.changed.add(code)

    def apply(self, step):
        """Apply one step; return the codes it changed."""
        kind, code = step[0], self.heir_of(step[1])
        current = self.geom.get(code)
        if kind == "add":
            self.set(code, _union(current, step[2]))
            return {code}
        if current is None:
            return set()
        if kind == "cut":
            piece = step[2]
            if step[3] is not None:
                piece = _intersection(piece, self.get(step[3]))
            self.set(code, _difference(current, piece))
            return {code}
        heir = self.heir_of(step[-1])
        if heir == code or self.geom.get(heir) is None:
            return set()
        if kind == "merge":
            self.set(heir, _union(self.geom[heir], current))
            self.set(code, None)
            self.merged[code] = heir
            return {code, heir}
        if kind == "move":
            part = _intersection(step[2], current)
            self.set(code, _difference(current, part))
            self.set(heir, _union(self.geom[heir], part))
            return {code, heir}
        raise ValueError(f"unknown repair step {kind!r}")


# Overlays of polygonal geometries (None: nothing).

def _overlay(kind, a, b):
    a, b = geo.polygonal(a), geo.polygonal(b)
    if a is None or b is None:
        return {"union": a if b is None else b, "intersection": None, "difference": a}[kind]
    return geo.polygonal(geo.overlay(kind, a, b)[0])


def _union(a, b):
    return b if a is None else a if b is None else _overlay("union", a, b)


def _intersection(a, b):
    return None if a is None or b is None else _overlay("intersection", a, b)


def _difference(a, b):
    return a if a is None or b is None else _overlay("difference", a, b)


def _tidy(geom, noise_m):
    """Valid, polygonal, without the hair-thin parts that overlays leave where borders almost coincide;
    None if nothing wider than the noise is left."""
    geom = geo.polygonal(geom if shapely.is_valid(geom) else shapely.make_valid(geom))
    if geom is None:
        return None
    parts = shapely.get_parts(geom)
    keep = geo.wider_than(parts, noise_m)
    if not keep.any():
        return None
    if not keep.all():
        parts = parts[keep]
        geom = parts[0] if len(parts) == 1 else shapely.multipolygons(parts)
    return geom


def propose_repairs(cells: Cells, parents: Cells | None, problems, *, tol: Tolerances = Tolerances()):
    """Repairs for the gap, overlap, sliver (and spill) problems among ``problems``.

    Parameters
    ----------
    cells : Cells
        The level the problems were found in.
    parents : Cells or None
        The level above (for the parents' outlines: which side of a parent border an overlap lies on).
    problems : list of Problem
        Others types are ignored.

    Returns
    -------
    list of Repair, in the order they must be applied. A problem with nothing to give it to (a gap no
    sibling borders) gets no repair and remains.
    """
    state = _State(cells, tol.noise_m)
    codes = as_codes(cells.codes)
    parent_of = dict(zip(codes, as_codes(cells.parent_codes))) if cells.parent_codes is not None else {}
    parent_geom = {}
    if parents is not None:
        pwork, _ = geo.check_geometries(parents.geoms)
        parent_geom = {c: g for c, g in zip(as_codes(parents.codes), pwork) if g is not None}
    ctx = _Context(state, codes, parent_of, parent_geom, tol)
    ctx.slivers = {p.codes[0] for p in problems if p.type == "sliver"}
    repairs = []
    todo = sorted((p for p in problems if p.type in _ORDER), key=lambda p: _ORDER[p.type])
    for _ in range(_ROUNDS):
        start = len(repairs)
        for problem in todo:
            if problem.geometry is None:
                continue
            proposal = getattr(ctx, problem.type)(problem)
            if proposal is None:
                continue
            action, steps = proposal
            touched = set()
            for step in steps:
                touched |= state.apply(step)
            repairs.append(Repair(problem, action, {c: state.geom.get(c) for c in sorted(touched)}, tuple(steps)))
        # cutting an overlap can leave a neighbour with a sliver of itself (at a sharp corner, between two
        # cuts): those are merged in another round, and so on
        todo = _left_slivers(state, repairs[start:], cells.level, tol)
        ctx.slivers |= {p.codes[0] for p in todo}
        if not todo:
            break
    return repairs


def _left_slivers(state, recent, level, tol):
    changed = sorted({c for r in recent for c, g in r.changes.items() if g is not None})
    if not changed:
        return []
    geoms = np.empty(len(changed), dtype=object)
    geoms[:] = [state.geom.get(c) for c in changed]
    found = sliver_problems(np.array(changed, dtype=object), geoms, level, tol)
    for p in found:
        p.detail = p.detail.replace("sliver", "sliver left by the repairs above:", 1)
    return finish_problems(found)


def apply_repairs(cells: Cells, repairs, *, tol: Tolerances = Tolerances()) -> dict:
    """Replay the repairs' steps on ``cells``; return ``{code: final geometry}`` of every changed cell
    (None: deleted, merged into a neighbour). ``tol.noise_m``: hair-thin parts left by the overlays
    are dropped."""
    state = _State(cells, tol.noise_m)
    for repair in repairs:
        for step in repair.steps:
            state.apply(step)
    return {code: state.geom.get(code) for code in sorted(state.changed)}


class _Context:
    """What the rules need: current geometries, the original cells (to find neighbours), parents."""

    def __init__(self, state, codes, parent_of, parent_geom, tol):
        self.state, self.codes, self.tol = state, codes, tol
        self.parent_of, self.parent_geom = parent_of, parent_geom
        self.tree = shapely.STRtree(np.array([state.geom.get(c) for c in codes], dtype=object))
        self.reach = max(tol.noise_m, 1e-6)
        self.slivers = set()

    def neighbours(self, piece, *, parent=None, exclude=()):
        """``[(shared border length, code)]`` of the cells bordering ``piece`` now, longest first."""
        idx = self.tree.query(piece, predicate="dwithin", distance=self.reach * 10)
        found = {self.state.heir_of(self.codes[i]) for i in idx} - set(exclude)
        if parent and self.parent_of:
            found = {c for c in found if self.parent_of.get(c, parent) in (parent, "")}
        found = sorted(c for c in found if self.state.geom.get(c) is not None)
        if not found:
            return []
        lengths = geo.shared_length(np.array([piece] * len(found), dtype=object),
                                    np.array([self.state.geom[c] for c in found], dtype=object), self.reach)
        return sorted(((float(n), c) for n, c in zip(lengths, found) if n > 2 * self.reach),
                      key=lambda t: (-t[0], t[1]))

    def heir(self, piece, *, parent=None, exclude=()):
        """The bordering cell with the longest shared border, non-slivers first."""
        near = self.neighbours(piece, parent=parent, exclude=exclude)
        solid = [c for _, c in near if c not in self.slivers]
        return (solid or [c for _, c in near] or [None])[0]

    def spill(self, problem):
        code = problem.codes[0]
        return f"cut from {code} what lies outside its parent", [("cut", code, problem.geometry, None)]

    def overlap(self, problem):
        a, b = problem.codes[0], problem.codes[-1]
        ga, gb = self.state.get(a), self.state.get(b)
        if ga is None or gb is None or a == b:
            return None
        piece = _intersection(_intersection(problem.geometry, ga), gb)
        if piece is None or not geo.wider_than(np.array([piece], dtype=object), self.tol.noise_m)[0]:
            return None   # an earlier repair has already taken care of it
        steps = []
        for part, loser in self._split_by_parents(piece, a, b):
            if loser is None:
                la, lb = geo.shared_length(np.array([part, part], dtype=object), np.array([ga, gb], dtype=object),
                                           self.reach)
                if abs(la - lb) <= 1e-9 * max(la, lb, 1.0):
                    loser = max(a, b)
                else:
                    loser = a if la > lb else b
            steps.append(("cut", loser, part, b if loser == a else a))
        losers = sorted({step[1] for step in steps})
        return f"cut overlap from {' and '.join(losers)}", steps

    def _split_by_parents(self, piece, a, b):
        """``[(part, loser)]``: where A and B have different parents, the part of the piece inside one's
        parent is cut from the other; the rest (or all, with one parent) is left to the boundary rule."""
        pa, pb = self.parent_of.get(a), self.parent_of.get(b)
        if not pa or not pb or pa == pb or pa not in self.parent_geom or pb not in self.parent_geom:
            return [(piece, None)]
        both = _union(self.parent_geom[pa], self.parent_geom[pb])
        parts = [(_intersection(piece, self.parent_geom[pa]), b), (_intersection(piece, self.parent_geom[pb]), a),
                 (_difference(piece, both), None)]
        return [(g, loser) for g, loser in parts
                if g is not None and geo.wider_than(np.array([g], dtype=object), self.tol.noise_m)[0]]

    def sliver(self, problem):
        code = problem.codes[0]
        current = self.state.geom.get(code)
        if current is None or code in self.state.merged:
            return None   # deleted or merged by an earlier repair
        parent = self.parent_of.get(code)
        rest = _difference(current, problem.geometry)
        if rest is None or not geo.wider_than(np.array([rest], dtype=object), self.tol.noise_m)[0]:
            heir = self.heir(current, parent=parent, exclude={code})
            if heir is None:
                return None
            return f"merge sliver {code} into {heir}", [("merge", code, heir)]
        heir = self.heir(problem.geometry, parent=parent, exclude={code})
        if heir is None:
            return None
        return f"give sliver part of {code} to {heir}", [("move", code, problem.geometry, heir)]

    def gap(self, problem):
        piece = problem.geometry
        heir = self.heir(piece, parent=problem.parent_code)
        if heir is None:
            return None
        steps = []
        if problem.parent_code and self.parent_of:
            # cells of other parents lying in the gap spill into it: they give it up
            for i in self.tree.query(piece, predicate="intersects"):
                other = self.state.heir_of(self.codes[i])
                if self.parent_of.get(other, problem.parent_code) not in (problem.parent_code, ""):
                    steps.append(("cut", other, piece, None))
        steps.append(("add", heir, piece))
        return f"give gap to {heir}", steps
