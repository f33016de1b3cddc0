"""The records of the partition checks: tolerances, the cells of a level, and the problems found.

They are defined here and used through :mod:`gis.partition_checks`, which re-exports them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis import partition_geometry as geo
from gis.errors import BadInput

__all__ = ["PROBLEM_TYPES", "Tolerances", "Cells", "Problem", "finish_problems"]

PROBLEM_TYPES = ("invalid", "empty", "multipart", "overlap", "gap", "spill", "orphan", "wrong_parent_level",
                 "sliver", "duplicate_code", "code_layout", "code_prefix")
_RANK = {t: i for i, t in enumerate(PROBLEM_TYPES)}


@dataclass(frozen=True)
class Tolerances:
    """What counts as a problem.

    Attributes
    ----------
    noise_m : float
        Overlaps, gaps and spills no wider than this anywhere (metres) are noise and never reported.
    sliver_area_m2 : float
        A cell, or a part of a multi-part cell, smaller than this is a sliver.
    sliver_width_m : float
        ... or no wider than this (diameter of its largest inscribed circle).
    """

    noise_m: float = 0.01
    sliver_area_m2: float = 100.0
    sliver_width_m: float = 1.0

    def __post_init__(self):
        for name in ("noise_m", "sliver_area_m2", "sliver_width_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and value >= 0 and np.isfinite(value)):
                raise BadInput(f"{name} must be a number ≥ 0; got {value!r}")


@dataclass
class Cells:
    """One level of a partition.

    Attributes
    ----------
    codes : ndarray of str
    geoms : ndarray of shapely geometries (object), metric CRS; may hold invalid, empty or None entries
    level : int or None
        0 district … 3 unit grid; None for a file of unknown level.
    parent_codes : ndarray of str/None, or None
        None: no parents known (with ``parents`` given, each cell's parent is then found spatially).
    """

    codes: np.ndarray
    geoms: np.ndarray
    level: int | None = None
    parent_codes: np.ndarray | None = None


@dataclass
class Problem:
    """One problem; ``codes`` are the cells involved, sorted.

    ``parent_code`` (an addition to the published interface, optional) is the parent a gap lies in, or the
    one a cell spills over; repairs use it to keep a gap among its parent's children.
    """

    type: str
    level: int | None
    codes: tuple
    area_m2: float | None
    width_m: float | None
    geometry: object
    detail: str
    parent_code: str | None = None


def _size(area, width):
    """"2.00 m wide, 250.0 m²" (small figures with three significant digits)."""
    wide = f"{width:,.2f}" if width >= 0.1 else f"{width:.3g}"
    return f"{wide} m wide, " + (f"{area:,.1f} m²" if area >= 10 else f"{area:.3g} m²")


def finish_problems(problems):
    """Measure the widths still missing (one vectorised pass) and order the list."""
    todo = [p for p in problems if p.width_m is None and p.type in ("overlap", "gap", "spill", "sliver")
            and p.geometry is not None]
    if todo:
        parts, owner = shapely.get_parts([p.geometry for p in todo], return_index=True)
        w = np.zeros(len(todo))
        np.maximum.at(w, owner, geo.widths(parts))
        for p, width in zip(todo, w):
            p.width_m = float(width)
            p.detail = p.detail.replace("{size}", _size(p.area_m2, p.width_m))
    problems.sort(key=lambda p: (_RANK.get(p.type, 99), p.codes, -(p.area_m2 or 0.0)))
    return problems
