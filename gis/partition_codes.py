"""Code and nesting checks of a partition level: duplicate codes, the national code layout, parents.

Codes follow the national statistical layout: a district (level 0) has 6 digits, a street unit (1) 9, a
community (2) 12 and a unit grid (3) 15, and a child's code starts with its parent's. The exception is
a street unit of a development zone (county digits 5–6 in 71–79, e.g. 410171001 in 郑州经济技术开发区):
such zones have no outline of their own, so their units lie in an ordinary district of the same city
(``data/README.md``).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import shapely

from gis.grid_store import CODE_LENGTH

__all__ = ["as_codes", "code_problems", "parent_problems", "is_dev_zone_unit"]


def as_codes(codes):
    """Codes as an object array of stripped strings ('' where missing)."""
    return np.array(["" if c is None else str(c).strip() for c in np.asarray(codes, dtype=object).ravel()],
                    dtype=object)


def _digits(code):
    return code.isascii() and code.isdigit()


def is_dev_zone_unit(code, level):
    """True for a street unit (level 1, or unknown level; a 9-digit code) of a development zone."""
    if level not in (1, None) or len(code) != CODE_LENGTH[1]:
        return False
    return len(code) >= 6 and _digits(code[4:6]) and 71 <= int(code[4:6]) <= 79


def code_problems(codes, work, level, *, layout=True):
    """duplicate_code and code_layout problems (a missing code is always a layout problem).

    Returns a list of ``(type, code, geometry, detail)``; the caller makes them Problems.
    """
    problems = []
    counts = Counter(codes.tolist())
    duplicated = {c for c, n in counts.items() if n > 1 and c}
    if duplicated:
        where = {}
        for i, c in enumerate(codes):
            if c in duplicated:
                where.setdefault(c, []).append(i)
        for c, idx in sorted(where.items()):
            geoms = [work[i] for i in idx if work[i] is not None]
            problems.append(("duplicate_code", c,
                                     shapely.union_all(geoms) if geoms else None,
                                     f"code {c} is used by {len(idx)} cells"))
    lengths = {CODE_LENGTH[level]} if level in CODE_LENGTH else set(CODE_LENGTH.values())
    wanted = " or ".join(str(n) for n in sorted(lengths))
    text = codes.astype(str)  # fixed-width unicode: the tests below run in C, not per code in Python
    length = np.char.str_len(text)
    ascii_digits = np.char.isdigit(text) & (text.view(np.uint32).reshape(len(text), -1).max(axis=1, initial=0) < 128
                                            if len(text) else np.zeros(0, dtype=bool))
    missing = length == 0
    wrong = ~missing & ~(ascii_digits & np.isin(length, sorted(lengths))) if layout else np.zeros(len(codes), bool)
    for i in np.flatnonzero(missing | wrong):
        c = codes[i]
        if not c:
            problems.append(("code_layout", c, work[i], "the cell has no code"))
            continue
        what = "digits only" if not _digits(c) else f"{wanted} digits, not {len(c)}"
        problems.append(("code_layout", c, work[i], f"code {c!r} should have {what}"))
    return problems


def parent_problems(codes, cell_parent_codes, work, level, parent_codes, parent_work, other_levels, *,
                    prefix=True):
    """Find each cell's parent; report orphans, parents of the wrong level and codes off their parent's.

    Parameters
    ----------
    cell_parent_codes : array or None
        The parent code of each cell; None: find the parent spatially (the one holding a point on the
        cell's surface), which needs ``parent_codes``/``parent_work``.
    parent_codes, parent_work : arrays or None
        The level above (None when not given).
    other_levels : dict of int to set of str, or None

    Returns
    -------
    owner : ndarray of int
        Index of each cell's parent in ``parent_codes``, -1 where unknown.
    problems : list of ``(type, code, geometry, detail)``
    """
    n = len(codes)
    owner = np.full(n, -1, dtype=np.intp)
    problems = []
    if level == 0:
        return owner, problems
    if cell_parent_codes is None:
        if parent_codes is None:
            return owner, problems
        pcs = _spatial_parents(owner, work, parent_codes, parent_work)
        for i in np.flatnonzero((owner < 0) & ~shapely.is_missing(work)):
            problems.append(("orphan", codes[i], work[i],
                                     f"{codes[i]} lies in no parent"))
    else:
        pcs = as_codes(cell_parent_codes)
        index = {}
        if parent_codes is not None:
            for j, c in enumerate(parent_codes):
                index.setdefault(c, j)
        expected = None if level is None else level - 1
        for i, pc in enumerate(pcs):
            if not pc:
                if level is not None or parent_codes is not None:
                    problems.append(("orphan", codes[i], work[i],
                                             f"{codes[i]} has no parent"))
                continue
            if pc in index:
                owner[i] = index[pc]
                continue
            elsewhere = sorted(k for k, s in (other_levels or {}).items() if pc in s and k != expected)
            if elsewhere and (parent_codes is not None or pc not in (other_levels or {}).get(expected, ())):
                problems.append(("wrong_parent_level", codes[i], work[i],
                                         f"parent {pc} of {codes[i]} is a level-{elsewhere[0]} cell"
                                         + ("" if expected is None else f", not level {expected}")))
            elif parent_codes is not None:
                problems.append(("orphan", codes[i], work[i],
                                         f"parent {pc} of {codes[i]} does not exist"))
    if prefix:
        for i, (c, pc) in enumerate(zip(codes, pcs)):
            if c and pc and not c.startswith(pc) and not (is_dev_zone_unit(c, level) and c[:4] == pc[:4]):
                problems.append(("code_prefix", c, work[i],
                                         f"code {c} does not start with its parent's code {pc}"))
    return owner, problems


def _spatial_parents(owner, work, parent_codes, parent_work):
    """Fill ``owner`` with the parent holding a point on each cell's surface; return the parent codes."""
    idx = np.flatnonzero(~shapely.is_missing(work))
    pcs = np.full(len(work), "", dtype=object)
    if len(idx) == 0:
        return pcs
    tree = shapely.STRtree(parent_work)
    q, t = tree.query(shapely.point_on_surface(work[idx]), predicate="intersects")
    order = np.lexsort((t, q))          # the first parent (lowest index) when a point is on a shared border
    q, t = q[order], t[order]
    first = np.r_[True, q[1:] != q[:-1]]
    owner[idx[q[first]]] = t[first]
    pcs[owner >= 0] = parent_codes[owner[owner >= 0]]
    return pcs
